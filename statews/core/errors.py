"""The one exception hierarchy of statews, and the one map from failures to close codes.

Every error statews raises derives from :class:`WebSocketError`::

    WebSocketError
    ├── OptionsError (also ValueError)         invalid options, raised before any I/O
    ├── InvalidStateError                      operation not allowed in the current lifecycle state
    ├── ProtocolError                          an RFC 6455 / RFC 7692 violation; carries .code
    │   ├── LocalProtocolError                 *we* were asked to break the protocol
    │   └── RemoteProtocolError                the *peer* broke the protocol
    │       └── PayloadTooBig                  a frame or message over a configured limit (1009)
    ├── HandshakeError                         the opening handshake did not complete
    │   ├── InvalidHandshake                   the server's answer is not a valid upgrade
    │   ├── HandshakeRejected                  the server answered with a non-101 status
    │   ├── RedirectError                      a redirect of the upgrade was not followed
    │   ├── ConnectError (also OSError)        the TCP connection could not be made
    │   ├── ConnectTimeout (also TimeoutError) TCP/TLS connect and upgrade took too long
    │   ├── TLSError                           the TLS handshake failed (the ssl error is kept)
    │   └── ProxyError                         the proxy did not open the tunnel
    ├── ConnectionClosed                       the connection is closed; carries .code/.reason
    │   ├── ConnectionClosedOK                 ... after a normal closing handshake (1000/1001)
    │   └── ConnectionClosedError              ... after an error or an abnormal end
    ├── RecvTimeout (also TimeoutError)        recv(timeout=...) expired; the connection is usable
    └── ActiveModeError                        recv() called while active mode delivers to the owner

A protocol error never looks like a peer's close: the peer's own Close is reported as
:class:`ConnectionClosed` with ``rcvd`` set, while a violation we detected is reported
with ``rcvd`` unset and the violation chained as ``__cause__``.

:func:`close_code_for` is the single place that decides which close code a failure
sends on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import Close

__all__ = [
    "ActiveModeError",
    "CloseCode",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "HandshakeRejected",
    "InvalidHandshake",
    "InvalidStateError",
    "LocalProtocolError",
    "OptionsError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "RecvTimeout",
    "RedirectError",
    "RemoteProtocolError",
    "TLSError",
    "WebSocketError",
    "close_code_for",
]


class CloseCode(IntEnum):
    """Close status codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    #: 1000: the purpose of the connection has been fulfilled.
    NORMAL_CLOSURE = 1000
    #: 1001: the endpoint is going away (server shutdown, page navigation).
    GOING_AWAY = 1001
    #: 1002: the endpoint received a frame that breaks the protocol.
    PROTOCOL_ERROR = 1002
    #: 1003: the endpoint received a type of data it cannot accept.
    UNSUPPORTED_DATA = 1003
    #: 1005: reserved; stands for "no status code was present". Never sent on the wire.
    NO_STATUS_RCVD = 1005
    #: 1006: reserved; stands for "closed without a Close frame". Never sent on the wire.
    ABNORMAL_CLOSURE = 1006
    #: 1007: a text message (or close reason) was not valid UTF-8.
    INVALID_FRAME_PAYLOAD_DATA = 1007
    #: 1008: a message violates the endpoint's policy.
    POLICY_VIOLATION = 1008
    #: 1009: a frame or message is too big to process.
    MESSAGE_TOO_BIG = 1009
    #: 1010: the client expected the server to negotiate an extension.
    MANDATORY_EXTENSION = 1010
    #: 1011: the endpoint met an unexpected condition.
    INTERNAL_ERROR = 1011
    #: 1012: the service is restarting (IANA).
    SERVICE_RESTART = 1012
    #: 1013: try again later (IANA).
    TRY_AGAIN_LATER = 1013
    #: 1014: the gateway received an invalid response (IANA).
    BAD_GATEWAY = 1014
    #: 1015: reserved; stands for "TLS handshake failed". Never sent on the wire.
    TLS_HANDSHAKE = 1015


#: Codes that stand for a local condition and must never appear in a Close frame.
NEVER_ON_WIRE = frozenset({1005, 1006, 1015})


def is_valid_wire_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame (RFC 6455 section 7.4).

    Allowed: the codes 1000-1014 that are defined and not reserved, and the ranges
    3000-3999 (registered) and 4000-4999 (private use). Everything else - below
    1000, 1004, 1005, 1006, 1015, the unassigned 1016-2999, 5000 and above - is not.
    """
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1014 and code != 1004 and code not in NEVER_ON_WIRE


class WebSocketError(Exception):
    """Base class of every error statews raises."""


class OptionsError(WebSocketError, ValueError):
    """Invalid options; raised before any connection is attempted.

    ``option`` names the offending option (a dotted path such as ``ssl_options.cafile``),
    or is ``None`` when the problem is not tied to a single option.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class InvalidStateError(WebSocketError):
    """An operation that the lifecycle does not allow in the current state.

    ``operation`` is what was attempted (``"send"``, ``"recv"``, ...), ``state`` the
    lifecycle state the connection was in.
    """

    def __init__(self, operation: str, state: str, detail: str = "") -> None:
        message = f"cannot {operation} while the connection is {state!r}"
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)
        self.operation = operation
        self.state = state


class ProtocolError(WebSocketError):
    """A violation of RFC 6455 or RFC 7692.

    ``code`` is the close code that reports the violation on the wire.
    """

    def __init__(self, message: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = int(code)


class LocalProtocolError(ProtocolError):
    """The application asked statews to do something the protocol forbids.

    Examples: a control frame payload over 125 bytes, a close code that may not be
    sent, data after a Close. Nothing was sent; the connection is unchanged.
    """


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol. The connection fails with ``code``."""


class PayloadTooBig(RemoteProtocolError):
    """A frame or message from the peer exceeds ``max_frame_size`` or ``max_message_size``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CloseCode.MESSAGE_TOO_BIG)


class HandshakeError(WebSocketError):
    """The opening handshake did not complete."""


class InvalidHandshake(HandshakeError):
    """The server's response is not a valid WebSocket upgrade (RFC 6455 section 4.2.2).

    Examples: a missing ``Upgrade`` header, a wrong ``Sec-WebSocket-Accept``, a
    subprotocol or extension that was not offered, a header block over the limit.
    """


class HandshakeRejected(HandshakeError):
    """The server answered the upgrade request with a status other than 101.

    ``status`` and ``reason`` are the status line, ``headers`` the response headers as
    (name, value) pairs in arrival order, ``body`` at most the bounded start of the body,
    ``retry_after`` the parsed ``Retry-After`` in seconds when present and valid.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"server rejected the WebSocket upgrade: HTTP {status} {reason}".rstrip())
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.body = body
        self.retry_after = retry_after


class RedirectError(HandshakeError):
    """The server redirected the upgrade request and the redirect was not followed.

    The ``Location`` is missing, not a ws/wss/http/https URL, carries credentials, would
    downgrade ``wss`` to ``ws`` or leave the origin of a ``unix_path`` connection, or
    following it would exceed ``max_redirects``.
    ``chain`` holds the URLs requested, first to last, then the refused target when it
    is known; ``status`` is the redirect's status. The redirect itself
    (:class:`HandshakeRejected`) is ``__cause__``.
    """

    def __init__(self, message: str, *, chain: Sequence[str] = (), status: int = 0) -> None:
        super().__init__(message)
        self.chain = tuple(chain)
        self.status = status


class ConnectError(HandshakeError, OSError):
    """The TCP (or proxy) connection could not be made; the OS error is ``__cause__``."""


class ConnectTimeout(HandshakeError, TimeoutError):
    """TCP/TLS connect plus the opening handshake did not finish within ``connect_timeout``."""


class TLSError(HandshakeError):
    """The TLS handshake failed; the underlying :class:`ssl.SSLError` is ``__cause__``."""


class ProxyError(HandshakeError):
    """The proxy did not open a tunnel to the server.

    An HTTP proxy answered CONNECT with a non-2xx status (``status``, ``reason`` and
    ``headers`` are its response; 407 means proxy authentication is required or was
    refused), a SOCKS5 proxy sent a failure reply (``reply`` is its code), refused our
    authentication, or broke its handshake (closed, malformed or oversized answer).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        headers: Sequence[tuple[str, str]] = (),
        reply: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.reply = reply


class ConnectionClosed(WebSocketError):
    """The connection is closed; raised by operations that need an open connection.

    ``code`` and ``reason`` are *the WebSocket connection close code and reason* of
    RFC 6455 section 7.1.5-7.1.6: those of the peer's Close frame when one was received
    (``rcvd``), else 1006 and ``""``. ``sent`` is the Close frame we sent, if any: after a
    violation we detected it carries the code we failed the connection with, and the
    violation itself (a :class:`ProtocolError`, a lost TCP connection, a timeout) is
    ``__cause__``.

    ``dropped_messages`` and ``dropped_bytes`` count the data messages the peer sent
    while we were closing that went past ``closing_buffer_size`` and were discarded
    (0 when nothing was lost); the message says so when they are not 0.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        detail: str = "",
        *,
        dropped_messages: int = 0,
        dropped_bytes: int = 0,
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.dropped_messages = dropped_messages
        self.dropped_bytes = dropped_bytes
        if rcvd is not None:
            self.code, self.reason = rcvd.code, rcvd.reason
        else:
            self.code, self.reason = int(CloseCode.ABNORMAL_CLOSURE), ""
        message = f"connection closed: code {self.code}"
        if self.reason:
            message += f" ({self.reason})"
        if rcvd is None:
            message += ", no close frame received"
            if sent is not None:
                message += f" (we sent {sent.code})"
        if detail:
            message += f": {detail}"
        if dropped_messages:
            message += (
                f"; {dropped_messages} message(s), {dropped_bytes} bytes, received while"
                " closing were dropped past closing_buffer_size"
            )
        super().__init__(message)


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed after a complete closing handshake with code 1000 or 1001
    (or no status code)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed after an error, or without a complete closing handshake."""


def connection_closed(
    rcvd: Close | None,
    sent: Close | None,
    detail: str = "",
    *,
    dropped_messages: int = 0,
    dropped_bytes: int = 0,
) -> ConnectionClosed:
    """Build the right :class:`ConnectionClosed` subclass for how the connection ended."""
    ok_codes = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD)
    clean = (
        rcvd is not None and sent is not None and rcvd.code in ok_codes and sent.code in ok_codes
    )
    cls = ConnectionClosedOK if clean else ConnectionClosedError
    return cls(rcvd, sent, detail, dropped_messages=dropped_messages, dropped_bytes=dropped_bytes)


class RecvTimeout(WebSocketError, TimeoutError):
    """``recv(timeout=...)`` expired before a message arrived; the connection is usable."""


class ActiveModeError(WebSocketError):
    """``recv()`` is for passive mode; in active mode messages go to the owner's channel."""


def close_code_for(error: BaseException) -> int:
    """The close code to send when the connection fails because of ``error``.

    The single place where failures map to close codes: protocol errors carry their
    own (1002, 1007, 1009, ...); any other failure is an internal error (1011).
    """
    if isinstance(error, ProtocolError):
        return error.code
    return int(CloseCode.INTERNAL_ERROR)
