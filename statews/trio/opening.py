"""The opening handshake over an open stream, and extension negotiation (trio layer).

Sends the upgrade request built by :mod:`statews.core.handshake`, reads the answer with its
bounded incremental parser, checks it, and instantiates the negotiated extensions.
Time bounds are the caller's (``connect_timeout`` covers connect and upgrade together).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ..core import deflate
from ..core.errors import InvalidHandshake
from ..core.extensions import Extension
from ..core.handshake import (
    Accepted,
    Response,
    ResponseParser,
    build_request,
    check_response,
    generate_key,
)
from ..options.model import Options

__all__ = ["Upgrade", "agreed_extensions", "extension_offers", "upgrade"]

#: Read size during the handshake; the header block is capped at 64 KiB by the parser.
_RECEIVE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A completed upgrade: the server's answer and what it agreed to."""

    response: Response
    subprotocol: str | None
    extensions: tuple[Extension, ...]
    #: Bytes that followed the 101 header block: the first frames.
    trailing: bytes
    #: The HTTP version the handshake used: ``"1.1"``, or ``"2"`` (RFC 8441).
    http_version: str = "1.1"


async def upgrade(stream: trio.abc.Stream, options: Options) -> Upgrade:
    """Run the opening handshake of RFC 6455 section 4.1 over ``stream``.

    Raises:
        OptionsError: a header, path or subprotocol cannot be sent (nothing was sent).
        HandshakeRejected: the server answered with a status other than 101.
        InvalidHandshake: the answer is not a valid upgrade, or it accepted extension
            parameters we cannot honour.
        trio.BrokenResourceError, OSError: the stream broke.
    """
    key = generate_key()
    offers = extension_offers(options)
    request = build_request(
        host=options.host,
        port=options.effective_port,
        secure=options.secure,
        resource=options.path,
        key=key,
        protocols=options.protocols,
        extensions=", ".join(offers.values()) or None,
        headers=options.headers,
    )
    await stream.send_all(request)
    parser = ResponseParser()
    response = None
    while response is None:
        data = await stream.receive_some(_RECEIVE_SIZE)
        if data:
            response = parser.feed(data)
            continue
        try:
            response = parser.feed_eof()
        except InvalidHandshake as exc:
            # Kept as the cause so that callers (reconnection) can tell a hang-up
            # from a malformed answer.
            raise exc from EOFError("the server closed the connection")
    accepted = check_response(
        response, key=key, protocols=options.protocols, offered_extensions=tuple(offers)
    )
    extensions = agreed_extensions(accepted, options)
    return Upgrade(response, accepted.subprotocol, extensions, parser.trailing)


def agreed_extensions(accepted: Accepted, options: Options) -> tuple[Extension, ...]:
    """The extensions the server agreed to, instantiated (HTTP/1.1 and HTTP/2 alike).

    Raises:
        InvalidHandshake: an extension accepted twice, or with parameters we cannot honour.
    """
    extensions: list[Extension] = []
    for agreed in accepted.extensions:
        if any(ext.name == agreed.name for ext in extensions):
            raise InvalidHandshake(f"the server accepted {agreed.name} twice")
        # Only permessage-deflate can be offered today, so every agreed name is it.
        extensions.append(deflate.accept(options.deflate.settings(), agreed.params))
    return tuple(extensions)


def extension_offers(options: Options) -> dict[str, str]:
    """Extension name -> the offer's header value, in preference order."""
    if options.compression == "deflate":
        return {deflate.EXTENSION_NAME: deflate.offer(options.deflate.settings())}
    return {}
