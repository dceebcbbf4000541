"""The client side of the RFC 8441 opening handshake (WebSockets over HTTP/2), sans I/O.

:func:`connect_headers` turns the same arguments as :func:`~statews.handshake.build_request`
into the header list of an extended CONNECT request (RFC 8441 section 4): ``:method
CONNECT``, ``:protocol websocket``, ``:scheme``, ``:path``, ``:authority``, then
``sec-websocket-version: 13``, the subprotocols and extensions offered, ``user-agent`` and
the caller's headers, names in lower case. There is no ``Sec-WebSocket-Key``, no
``Upgrade`` and no ``Connection``. :func:`check_connect_response` checks the answer: a
``200`` (not ``101``) and the same subprotocol and extension rules as HTTP/1.1.

Invariants: every argument is validated as :func:`build_request` validates it (the
header list is derived from the request it builds, so both openings send the same
values in the same order, and a value that HTTP/1.1 refuses is refused here with the same
:class:`~statews.errors.OptionsError`); connection-specific headers, which HTTP/2 forbids
(RFC 9113 8.2.2), are refused too. Every violation by the server raises
:class:`~statews.errors.InvalidHandshake`, a non-200 answer
:class:`~statews.errors.HandshakeRejected`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidHandshake, OptionsError, WebSocketError
from .handshake import (
    DEFAULT_USER_AGENT,
    Accepted,
    Response,
    build_request,
    check_agreement,
    generate_key,
    rejection,
)

__all__ = ["CONNECTION_SPECIFIC_HEADERS", "HTTP2Error", "check_connect_response", "connect_headers"]

#: RFC 9113 8.2.2: header fields that only mean something for one HTTP/1.1 connection.
#: ``te`` is allowed with the value ``trailers`` only; a WebSocket has no use for it.
CONNECTION_SPECIFIC_HEADERS = frozenset(
    {"keep-alive", "proxy-connection", "te", "upgrade", "connection", "transfer-encoding"}
)

#: The HTTP/1.1 handshake's own headers, which RFC 8441 replaces with pseudo-headers.
_HTTP11_ONLY = frozenset({"host", "upgrade", "connection", "sec-websocket-key"})


def connect_headers(
    *,
    host: str,
    port: int,
    secure: bool,
    resource: str,
    protocols: Sequence[str] = (),
    extensions: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str | None = DEFAULT_USER_AGENT,
) -> list[tuple[str, str]]:
    """The header list of the extended CONNECT request (RFC 8441 section 4).

    ``:authority`` is the ``Host`` value :func:`build_request` would send (a ``Host`` in
    ``headers`` replaces it); ``:path`` its request target, percent-encoded alike.

    Raises:
        OptionsError: whatever :func:`build_request` raises for these arguments, or a
            connection-specific header (``Keep-Alive``, ``TE``...) in ``headers``.
    """
    for name, _ in headers:
        if name.lower() in CONNECTION_SPECIFIC_HEADERS:
            raise OptionsError(
                f"header {name!r} is specific to HTTP/1.1 connections and may not be sent "
                "over HTTP/2 (RFC 9113 8.2.2)",
                option="headers",
            )
    # The HTTP/1.1 request validates every argument; its lines are ours, free of CR/LF.
    request = build_request(
        host=host,
        port=port,
        secure=secure,
        resource=resource,
        key=generate_key(),
        protocols=protocols,
        extensions=extensions,
        headers=headers,
        user_agent=user_agent,
    )
    request_line, *lines = request.decode("utf-8").removesuffix("\r\n\r\n").split("\r\n")
    target = request_line.split(" ")[1]
    fields = [tuple(line.split(": ", 1)) for line in lines]
    authority = next(value for name, value in fields if name.lower() == "host")
    result = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https" if secure else "http"),
        (":path", target),
        (":authority", authority),
    ]
    result.extend(
        (name.lower(), value) for name, value in fields if name.lower() not in _HTTP11_ONLY
    )
    return result


def check_connect_response(
    status: int,
    headers: Sequence[tuple[str, str]],
    *,
    protocols: Sequence[str],
    offered_extensions: Sequence[str],
) -> tuple[Response, Accepted]:
    """Check the server's answer to the extended CONNECT (RFC 8441 section 5).

    ``headers`` are the response's regular headers (pseudo-headers removed), decoded as
    ISO-8859-1. Returns them as a :class:`Response` and what was agreed.

    Raises:
        HandshakeRejected: the status is not 200 (a 2xx other than 200 included: RFC 8441
            asks for 200; ``retry_after`` as for HTTP/1.1).
        InvalidHandshake: the subprotocol or the extensions break the rules of
            :func:`~statews.handshake.check_agreement`.
    """
    response = Response(status, "", tuple(headers))
    if status != 200:
        raise rejection(response)
    try:
        accepted = check_agreement(
            response, protocols=protocols, offered_extensions=offered_extensions
        )
    except InvalidHandshake as exc:
        raise InvalidHandshake(f"HTTP/2 extended CONNECT: {exc}") from None
    return response, accepted


class HTTP2Error(WebSocketError, ConnectionError):
    """The HTTP/2 layer under a WebSocket failed: the stream was reset (RST_STREAM), the
    connection went away (GOAWAY) or broke. ``error_code`` is the HTTP/2 error code
    (RFC 9113 7), or ``None`` when the connection simply ended.

    A :class:`ConnectionError`: a WebSocket that loses its stream this way closes with
    1006, this error as the ``__cause__`` of its :class:`ConnectionClosed`.
    """

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
