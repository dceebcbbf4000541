"""Tunnels through a proxy, sans I/O: the HTTP CONNECT and SOCKS5 handshakes as codecs.

* HTTP CONNECT (RFC 9110 section 9.3.6), for ``http://`` and ``https://`` proxies:
  :func:`connect_request` and :class:`ConnectResponseReader`.
* SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), for
  ``socks5://`` and ``socks5h://``: :class:`Socks5Handshake`.
* :mod:`statews.trio.proxy` drives them over a trio stream; which proxy to use is
  :mod:`statews.core.proxyconf`'s business, TLS (to an ``https://`` proxy, to the
  server) :mod:`statews.trio.transport`'s.

Invariants:

* Everything read from a proxy is bounded: a CONNECT answer by ``max_head_bytes``,
  SOCKS5 messages by their own size; a read adds at most :data:`READ_SIZE` bytes.
* The bytes a proxy sent after its answer belong to the tunnel: the stream
  :func:`open_tunnel` returns gives them back first (:class:`PrefixedStream`).
* A proxy that answers but does not open the tunnel raises :class:`ProxyError`, also
  when it closes, resets or talks nonsense; errors name the proxy without its password.
  Nothing here is bounded in time: the caller's ``connect_timeout`` covers the connect.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from enum import Enum, IntEnum, auto
from typing import cast

from .errors import InvalidHandshake, OptionsError, ProxyError
from .handshake import DEFAULT_USER_AGENT
from .http11 import parse_field, parse_status_line
from .proxyconf import ProxyURL, ip_literal

__all__ = [
    "MAX_CONNECT_HEAD",
    "READ_SIZE",
    "ConnectResponse",
    "ConnectResponseReader",
    "Socks5Handshake",
    "Socks5Reply",
    "check_connect_response",
    "connect_request",
]

#: Largest CONNECT answer head (status line and headers, interim answers included).
MAX_CONNECT_HEAD = 16 * 1024
#: Bytes read from the proxy at a time during its handshake.
READ_SIZE = 4096


def _ascii_host(host: str) -> str:
    """``host`` as it travels in a request: IDNA for a non-ASCII name, no IPv6 zone.

    Raises:
        OptionsError: a non-ASCII name that IDNA cannot encode.
    """
    if ":" in host:
        return host.partition("%")[0]  # RFC 6874 4: a zone identifier is local to us
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise OptionsError(f"host is not a valid IDNA name: {host!r}", option="host") from exc


# --- HTTP CONNECT (RFC 9110 section 9.3.6), sans I/O ------------------------------------


def connect_request(
    host: str, port: int, proxy: ProxyURL, user_agent: str = DEFAULT_USER_AGENT
) -> bytes:
    """The CONNECT request for a tunnel to ``host``:``port`` (IPv6 in brackets), with
    ``Proxy-Authorization: Basic`` when ``proxy`` has credentials.

    Raises:
        OptionsError: ``host`` is a non-ASCII name that IDNA cannot encode.
    """
    name = _ascii_host(host)
    authority = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {user_agent}"]
    if proxy.username is not None:
        pair = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    """The head of the proxy's final answer to CONNECT; ``headers`` in arrival order."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]


class ConnectResponseReader:
    """Reads the proxy's answer to CONNECT: the head of its final response, bounded.

    Interim 1xx answers are skipped. A 2xx answer has no body (RFC 9110 9.3.6): what
    follows its head is tunnel data, kept in :attr:`trailing`. The body of another
    status is not read: the connection is given up anyway.
    """

    def __init__(self, max_head_bytes: int = MAX_CONNECT_HEAD) -> None:
        self._max = max_head_bytes
        self._buffer = bytearray()
        self._used = 0  # head bytes of skipped interim answers
        self.trailing = b""

    def feed(self, data: bytes | bytearray) -> ConnectResponse | None:
        """Add bytes from the proxy; return the final answer's head once complete.

        Raises:
            ProxyError: the head is malformed or over ``max_head_bytes``.
        """
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            limit = self._max - self._used
            if end < 0 or end + 4 > limit:
                if len(self._buffer) >= limit:
                    raise ProxyError(f"the proxy's answer to CONNECT exceeds {self._max} bytes")
                return None
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            response = _parse_connect_head(head)
            if 100 <= response.status < 200:
                self._used += end + 4
                continue
            self.trailing = bytes(self._buffer)
            self._buffer.clear()
            return response

    def feed_eof(self) -> ProxyError:
        """The error to raise when the proxy closed before its answer was complete."""
        if self._buffer or self._used:
            return ProxyError("the proxy closed the connection in the middle of its answer")
        return ProxyError("the proxy closed the connection without answering CONNECT")


def _parse_connect_head(head: bytes) -> ConnectResponse:
    """The head of an answer to CONNECT, parsed as the opening handshake's answer is."""
    status_line, *lines = head.split(b"\r\n")
    try:
        status, reason = parse_status_line(status_line)
    except InvalidHandshake as exc:
        raise ProxyError(f"the proxy did not answer with HTTP: {exc}") from None
    try:
        headers = tuple(parse_field(line) for line in lines)
    except InvalidHandshake as exc:
        raise ProxyError(f"the proxy's answer to CONNECT: {exc}") from None
    return ConnectResponse(status, reason, headers)


def check_connect_response(response: ConnectResponse, proxy: ProxyURL) -> None:
    """Accept a 2xx answer.

    Raises:
        ProxyError: any other status, with ``status``, ``reason`` and ``headers``.
    """
    status = response.status
    if 200 <= status < 300:
        return
    message = f"proxy {proxy.redacted} refused CONNECT: HTTP {status} {response.reason}".rstrip()
    if status in (401, 407):  # 401: some proxies (tinyproxy 1.11) misuse it here
        sent = "it rejected the credentials" if proxy.username else "no credentials were given"
        message += f" (proxy authentication required; {sent})"
    raise ProxyError(message, status=status, reason=response.reason, headers=response.headers)


# --- SOCKS5 (RFC 1928, RFC 1929), sans I/O ----------------------------------------------


class Socks5Reply(IntEnum):
    """SOCKS5 reply codes (RFC 1928 section 6)."""

    #: X'00' succeeded.
    SUCCEEDED = 0x00
    #: X'01' general SOCKS server failure.
    GENERAL_FAILURE = 0x01
    #: X'02' connection not allowed by ruleset.
    NOT_ALLOWED = 0x02
    #: X'03' network unreachable.
    NETWORK_UNREACHABLE = 0x03
    #: X'04' host unreachable.
    HOST_UNREACHABLE = 0x04
    #: X'05' connection refused.
    CONNECTION_REFUSED = 0x05
    #: X'06' TTL expired.
    TTL_EXPIRED = 0x06
    #: X'07' command not supported.
    COMMAND_NOT_SUPPORTED = 0x07
    #: X'08' address type not supported.
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


_REPLY_TEXT = {
    Socks5Reply.GENERAL_FAILURE: "general SOCKS server failure",
    Socks5Reply.NOT_ALLOWED: "connection not allowed by the proxy's rules",
    Socks5Reply.NETWORK_UNREACHABLE: "network unreachable",
    Socks5Reply.HOST_UNREACHABLE: "host unreachable",
    Socks5Reply.CONNECTION_REFUSED: "connection refused by the target",
    Socks5Reply.TTL_EXPIRED: "TTL expired",
    Socks5Reply.COMMAND_NOT_SUPPORTED: "command not supported",
    Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED: "address type not supported",
}

_VERSION = 0x05  # RFC 1928 section 3
_AUTH_VERSION = 0x01  # RFC 1929 section 2
_NO_AUTH, _USER_PASSWORD, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF  # RFC 1928 section 3
_CONNECT = 0x01  # RFC 1928 section 4: CMD
_IPV4, _DOMAIN, _IPV6 = 0x01, 0x03, 0x04  # RFC 1928 section 5: ATYP


class _Socks5Phase(Enum):
    METHOD = auto()  # greeting sent, waiting for the chosen method
    AUTH = auto()  # username/password sent, waiting for the status
    REPLY = auto()  # CONNECT request sent, waiting for the reply
    DONE = auto()  # the tunnel is open
    FAILED = auto()  # an error was raised


class Socks5Handshake:
    """The client side of a SOCKS5 CONNECT with optional username/password auth.

    ``host`` is sent as an address when it is an IP literal, else as a domain name that
    the proxy resolves (``socks5h``; for ``socks5`` the caller resolves it first).
    Drive it with :meth:`data_to_send` (send it all) and :meth:`receive_data` until
    :attr:`done`; bytes after the proxy's reply are :attr:`trailing`. At most one
    message (262 bytes) plus one read is ever buffered.
    """

    def __init__(
        self, host: str, port: int, *, username: str | None = None, password: str | None = None
    ) -> None:
        """Raises :class:`OptionsError` for a name over 255 bytes or not IDNA-encodable."""
        self._credentials: tuple[bytes, bytes] | None = None
        if username is not None:
            self._credentials = (username.encode(), (password or "").encode())
        self._request = bytes([_VERSION, _CONNECT, 0]) + _address(host) + port.to_bytes(2, "big")
        self._phase = _Socks5Phase.METHOD
        self._buffer = bytearray()
        methods = [_NO_AUTH] if self._credentials is None else [_NO_AUTH, _USER_PASSWORD]
        self._outgoing = bytes([_VERSION, len(methods), *methods])
        self.trailing = b""

    @property
    def done(self) -> bool:
        """Whether the proxy reported the tunnel open."""
        return self._phase is _Socks5Phase.DONE

    def data_to_send(self) -> bytes:
        """The bytes to send to the proxy now (possibly none); each are returned once."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes | bytearray) -> None:
        """Process bytes from the proxy (until :attr:`done`; what follows is the tunnel's).

        Raises:
            ProxyError: the proxy is not SOCKS5, accepts none of our methods, rejected
                our credentials, replied with a failure (``reply`` is its code) or sent
                a malformed reply.
        """
        self._buffer += data
        try:
            while self._step():
                pass
        except ProxyError:
            self._phase = _Socks5Phase.FAILED
            raise

    def receive_eof(self) -> ProxyError:
        """The error to raise when the proxy closed before the tunnel was open."""
        what = {
            _Socks5Phase.METHOD: "before choosing an authentication method",
            _Socks5Phase.AUTH: "during authentication (wrong credentials?)",
        }.get(self._phase, "before replying to CONNECT")
        self._phase = _Socks5Phase.FAILED
        return ProxyError(f"the SOCKS5 proxy closed the connection {what}")

    def _step(self) -> bool:
        """Consume one complete message if buffered; return whether one was."""
        buffer = self._buffer
        phase = self._phase
        if phase is _Socks5Phase.METHOD:
            if len(buffer) < 2:
                return False
            version, method = buffer[0], buffer[1]
            if version != _VERSION:
                raise ProxyError(f"not a SOCKS5 proxy: it answered version {version}")
            if method == _NO_AUTH:
                self._send_request()
            elif method == _USER_PASSWORD and self._credentials is not None:
                user, password = self._credentials
                self._outgoing += bytes([_AUTH_VERSION, len(user), *user, len(password)])
                self._outgoing += password
                self._phase = _Socks5Phase.AUTH
            elif method == _NO_ACCEPTABLE:
                hint = "" if self._credentials else " (it may require a user name and password)"
                raise ProxyError(f"the SOCKS5 proxy accepts none of our auth methods{hint}")
            else:
                raise ProxyError(f"the SOCKS5 proxy chose auth method {method}, not offered")
            del buffer[:2]
            return True
        if phase is _Socks5Phase.AUTH:
            if len(buffer) < 2:
                return False
            # The version byte is not checked: servers send X'01' (RFC 1929) or X'05'.
            if buffer[1] != 0:
                raise ProxyError(
                    f"the SOCKS5 proxy rejected the user name and password (status {buffer[1]})"
                )
            del buffer[:2]
            self._send_request()
            return True
        if phase is _Socks5Phase.REPLY:
            if len(buffer) < 5:
                return False
            version, reply, _, kind = buffer[:4]
            if version != _VERSION:
                raise ProxyError(f"malformed SOCKS5 reply: version {version}")
            if reply != Socks5Reply.SUCCEEDED:
                text = _REPLY_TEXT.get(cast(Socks5Reply, reply), "unassigned reply code")
                raise ProxyError(
                    f"the SOCKS5 proxy could not connect: {text} (reply {reply})", reply=reply
                )
            sizes = {_IPV4: 4, _IPV6: 16, _DOMAIN: 1 + buffer[4]}
            if kind not in sizes:
                raise ProxyError(f"malformed SOCKS5 reply: address type {kind}")
            total = 4 + sizes[kind] + 2
            if len(buffer) < total:
                return False
            self.trailing = bytes(buffer[total:])
            buffer.clear()
            self._phase = _Socks5Phase.DONE
        return False

    def _send_request(self) -> None:
        self._outgoing += self._request
        self._phase = _Socks5Phase.REPLY


def _address(host: str) -> bytes:
    """ATYP and DST.ADDR for ``host`` (RFC 1928 section 5)."""
    ip = ip_literal(host)
    if isinstance(ip, ipaddress.IPv4Address):
        return bytes([_IPV4]) + ip.packed
    if isinstance(ip, ipaddress.IPv6Address):
        return bytes([_IPV6]) + ip.packed
    name = _ascii_host(host).encode("ascii")
    if not 1 <= len(name) <= 255:
        raise OptionsError(
            f"host is too long for SOCKS5 (255 bytes at most): {host!r}", option="host"
        )
    return bytes([_DOMAIN, len(name)]) + name
