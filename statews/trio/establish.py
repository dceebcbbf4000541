"""Getting an upgraded connection: the transport, the handshake, redirects, and their errors.

:func:`establish` is the ``upgrading`` state's work for :meth:`statews.WebSocket.connect`:
open the byte stream (:mod:`.transport`; or use the one the application gave), run the
opening handshake over it (HTTP/1.1 in :mod:`.opening`, or RFC 8441 on a pooled HTTP/2
connection in :mod:`.http2`), follow redirects (:func:`~.redirects.follow_redirect`
decides, each hop over a new connection), and build the sans-I/O protocol for what was
agreed. :func:`handshake_error` is the one place that turns what broke meanwhile into
the :class:`~statews.core.errors.HandshakeError` the application sees.

Invariants:

* On any exception, cancellation included, every stream this opened (or was given) is
  closed before the exception leaves: the caller has nothing to clean up.
* The HTTP/2 machinery (and the ``h2`` package) is imported only when the ``http2``
  option asks for it.
* Time bounds are the caller's: ``connect_timeout`` covers every hop as a whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from ..core.errors import (
    ConnectError,
    ConnectTimeout,
    HandshakeError,
    HandshakeRejected,
    InvalidHandshake,
)
from ..core.protocol import ClientProtocol
from ..options.model import Options
from .opening import Upgrade, upgrade
from .redirects import follow_redirect
from .transport import Transport, open_transport, socket_stream_of

__all__ = ["Established", "establish", "handshake_error"]

logger = logging.getLogger("statews.connection")


@dataclass(frozen=True, slots=True)
class Established:
    """An upgraded connection, ready for the reader and the writer."""

    transport: Transport
    upgrade: Upgrade
    #: The options of the URL finally connected to (another one after a redirect).
    options: Options
    #: The sans-I/O protocol, configured for the agreed extensions and the limits.
    proto: ClientProtocol


async def establish(
    nursery: trio.Nursery, options: Options, given: trio.abc.Stream | None = None
) -> Established:
    """Open a transport for ``options`` (or use ``given``) and upgrade over it.

    ``nursery`` holds the tasks of a pooled HTTP/2 connection (option ``http2``).

    Raises:
        HandshakeRejected: the server answered with another status than 101 (or 200
            over HTTP/2): a redirect when ``max_redirects`` is 0.
        RedirectError: a redirect was not followed.
        InvalidHandshake: the answer is not a valid upgrade.
        OptionsError: a header, path or subprotocol cannot be sent.
        and what the transport raises (``OSError``, ``TLSError``, ``trio.BrokenResourceError``).
    """
    if given is not None:
        transport = Transport(given, socket_stream_of(given))
        try:
            done = await upgrade(given, options)
        except BaseException:
            await trio.aclose_forcefully(given)
            raise
    else:
        transport, done, options = await _following_redirects(nursery, options)
    proto = ClientProtocol(
        max_frame_size=options.max_frame_size,
        max_message_size=options.max_message_size,
        fragment_size=options.fragment_size,
        extensions=done.extensions,
    )
    if done.http_version == "2":
        from .http2 import end_with_closing_handshake  # noqa: PLC0415 - only with HTTP/2

        end_with_closing_handshake(transport.stream, proto)  # HTTP/2 has no TCP FIN
    return Established(transport, done, options, proto)


async def _following_redirects(
    nursery: trio.Nursery, options: Options
) -> tuple[Transport, Upgrade, Options]:
    chain = [options.url]
    while True:
        transport: Transport | None = None
        try:
            if options.http2 == "never":
                transport = await open_transport(options)
            else:  # RFC 8441 on a pooled HTTP/2 connection, or a transport for HTTP/1.1
                from .http2 import http2_upgrade  # noqa: PLC0415 - h2 only when asked for

                transport, over_h2 = await http2_upgrade(nursery, options)
                if over_h2 is not None:
                    return transport, over_h2, options
            return transport, await upgrade(transport.stream, options), options
        except HandshakeRejected as rejected:
            if transport is not None:  # None: http2_upgrade released its stream itself
                await trio.aclose_forcefully(transport.stream)
            moved = follow_redirect(options, rejected, chain)
            logger.info("%s: HTTP %d redirect to %s", options.url, rejected.status, moved.url)
        except BaseException:
            if transport is not None:
                await trio.aclose_forcefully(transport.stream)
            raise
        options = moved
        chain.append(moved.url)


def handshake_error(exc: BaseException, limit: float | None, url: str) -> HandshakeError:
    """The :class:`HandshakeError` that reports ``exc``, raised while upgrading to ``url``
    within ``limit`` seconds: ``exc`` itself if it is one."""
    if isinstance(exc, HandshakeError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return ConnectTimeout(f"connect and upgrade took longer than {limit} s")
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {url}: {exc}")
    return InvalidHandshake(f"connection broke during the handshake: {exc}")
