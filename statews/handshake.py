"""The client side of the RFC 6455 section 4 opening handshake, sans I/O.

This module turns options into request bytes (:func:`build_request`), bytes from the
server into a :class:`Response` (:class:`ResponseParser`), and a response into the
negotiated result or an error (:func:`check_response`). It never touches a socket or
trio; it reads the clock only to turn a ``Retry-After`` date into seconds.

Invariants:

* :func:`build_request` validates everything before producing a byte: no CR, LF or
  NUL reaches the wire from any argument, so no argument can inject a header or a
  second request. It raises :class:`~statews.errors.OptionsError` and nothing else.
* The request is ``GET`` over HTTP/1.1 with the handshake headers in a fixed order;
  the handshake headers come only from the named arguments, never from ``headers``.
* :class:`ResponseParser` holds at most ``max_header_bytes`` of header data (all
  interim responses included) and ``max_body_bytes`` of body, whatever the peer sends;
  it scans each byte for the end of a line or block a bounded number of times.
* Header values are encoded as UTF-8 when sent and decoded as ISO-8859-1 when
  received, so that no received byte is lost or makes decoding fail.
* Every violation by the server raises :class:`~statews.errors.InvalidHandshake`,
  a non-101 answer :class:`~statews.errors.HandshakeRejected`; messages say what was
  expected and what came.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import ipaddress
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import Enum, auto
from importlib import metadata

from .errors import HandshakeRejected, InvalidHandshake, InvalidStateError, OptionsError

__all__ = [
    "DEFAULT_USER_AGENT",
    "Accepted",
    "ExtensionOffer",
    "Response",
    "ResponseParser",
    "accept_key",
    "build_request",
    "check_response",
    "format_extensions",
    "generate_key",
    "parse_extensions",
    "parse_retry_after",
]


def _package_version() -> str:
    try:
        return metadata.version("statews")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1.0"


_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
#: Sent as ``User-Agent`` unless the caller passes another value, ``None``, or its own header.
DEFAULT_USER_AGENT = f"statews/{_package_version()} Python/{_PYTHON}"

#: RFC 6455 section 1.3: appended to the key before hashing.
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 7230 section 3.2.6: token = 1*tchar.
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(_TCHARS)
_TOKEN_BYTES = re.compile(_TCHARS.encode("ascii"))

#: Headers whose value the handshake itself decides (RFC 6455 section 4.1).
#: Content-Length and Transfer-Encoding too: the request has no body, they would make the
#: server wait for one.
_RESERVED = frozenset(
    {"upgrade", "connection", "content-length", "transfer-encoding"}
    | {f"sec-websocket-{n}" for n in ("key", "version", "accept", "extensions", "protocol")}
)

#: Characters that may never appear in anything we send: they end lines or strings.
_FORBIDDEN = {"\r": "CR", "\n": "LF", "\0": "NUL"}


def generate_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- request


def _check_chars(value: str, option: str, what: str) -> None:
    """Raise OptionsError if ``value`` holds CR, LF, NUL or another control character."""
    for char in value:
        if char in _FORBIDDEN:
            raise OptionsError(f"{what} contains {_FORBIDDEN[char]}: {value!r}", option=option)
        if (char < " " and char != "\t") or char == "\x7f":
            raise OptionsError(f"{what} contains a control character: {value!r}", option=option)


def _host_header(host: str, port: int, secure: bool) -> str:
    _check_chars(host, "host", "host")
    if not host or " " in host or "\t" in host:
        raise OptionsError(f"host must be a non-empty name without spaces: {host!r}", option="host")
    if not host.isascii():
        try:  # RFC 3986 reg-name is ASCII; internationalised names travel as IDNA
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise OptionsError(f"host is not a valid IDNA name: {host!r}", option="host") from exc
    if ":" in host:
        literal = host.removeprefix("[").removesuffix("]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise OptionsError(
                f"host has ':' but is not an IPv6 address (give the port separately): {host!r}",
                option="host",
            ) from None
        # RFC 6874 4: a zone identifier is local to this host and is not sent.
        host = f"[{literal.partition('%')[0]}]"  # RFC 3986 IP-literal
    if not 0 < port < 65536:
        raise OptionsError(f"port must be in 1..65535, got {port}", option="port")
    default = 443 if secure else 80
    return host if port == default else f"{host}:{port}"


def _request_target(resource: str) -> str:
    _check_chars(resource, "resource", "resource")
    if not resource.startswith("/"):
        raise OptionsError(f"resource must start with '/': {resource!r}", option="resource")
    if " " in resource or "\t" in resource:
        raise OptionsError(f"resource contains whitespace: {resource!r}", option="resource")
    if "#" in resource:  # RFC 6455 3: fragments MUST NOT be used in WebSocket URIs
        raise OptionsError(f"resource contains a fragment: {resource!r}", option="resource")
    # A request-target is ASCII (RFC 3986); percent-encode the rest as UTF-8, like browsers.
    return "".join(
        c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in resource
    )


def build_request(
    *,
    host: str,
    port: int,
    secure: bool,
    resource: str,
    key: str,
    protocols: Sequence[str] = (),
    extensions: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str | None = DEFAULT_USER_AGENT,
) -> bytes:
    """The bytes of the opening handshake request (RFC 6455 section 4.1).

    ``GET resource HTTP/1.1``, then ``Host`` (with ``:port`` unless it is 80 for ws or
    443 for wss; IPv6 literals in brackets; non-ASCII names IDNA-encoded; a ``Host`` in
    ``headers`` replaces it in place), ``Upgrade``, ``Connection``, ``Sec-WebSocket-Key``,
    ``Sec-WebSocket-Version: 13``, ``Sec-WebSocket-Protocol`` when ``protocols`` is not
    empty, ``Sec-WebSocket-Extensions`` when ``extensions`` is given, ``User-Agent``
    unless ``user_agent`` is ``None`` or ``headers`` has one, then ``headers`` in order.
    Non-ASCII characters of ``resource`` are percent-encoded as UTF-8.

    Raises:
        OptionsError: before producing anything, with ``option`` naming the argument:
            CR, LF, NUL or another control character in any string; an empty host or
            one with spaces; a port outside 1..65535; a resource not starting with
            ``/`` or holding whitespace; a key that is not base64 of 16 bytes; a
            subprotocol that is not a token, or repeated (RFC 6455 4.1 wants unique
            ones); ``protocols`` given as a bare string; ``extensions`` that do not
            follow the RFC 6455 9.1 grammar; a header name that is not a token; a
            header the handshake owns (``Upgrade``, ``Connection``, ``Sec-WebSocket-*``)
            or that would announce a body (``Content-Length``, ``Transfer-Encoding``);
            two ``Host`` headers.
    """
    target = _request_target(resource)
    host_value = _host_header(host, port, secure)

    _check_chars(key, "key", "key")
    try:
        raw_key = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError):
        raw_key = b""
    if len(raw_key) != 16:
        raise OptionsError(f"key must be base64 of 16 bytes: {key!r}", option="key")

    if isinstance(protocols, str):  # a str is a Sequence[str]: "chat" would offer c, h, a, t
        raise OptionsError("protocols must be a list of names, not a string", option="protocols")
    for protocol in protocols:
        _check_chars(protocol, "protocols", "subprotocol")
        if not _TOKEN.fullmatch(protocol):
            raise OptionsError(f"subprotocol is not a token: {protocol!r}", option="protocols")
    if len(set(protocols)) != len(protocols):
        raise OptionsError(f"subprotocols repeat: {list(protocols)!r}", option="protocols")

    if extensions is not None:
        _check_chars(extensions, "extensions", "extensions")
        try:
            parse_extensions(extensions)
        except InvalidHandshake as exc:
            raise OptionsError(str(exc), option="extensions") from exc
    if user_agent is not None:
        _check_chars(user_agent, "user_agent", "user agent")

    extra: list[tuple[str, str]] = []
    has_user_agent = False
    host_given = False
    for name, value in headers:
        _check_chars(name, "headers", "header name")
        _check_chars(value, "headers", f"value of header {name!r}")
        if not _TOKEN.fullmatch(name):
            raise OptionsError(f"header name is not a token: {name!r}", option="headers")
        lowered = name.lower()
        if lowered in _RESERVED:
            raise OptionsError(
                f"header {name!r} is set by the handshake itself and may not be given in "
                "headers (subprotocols and extensions have their own options)",
                option="headers",
            )
        if lowered == "host":
            if host_given:
                raise OptionsError("headers give Host twice", option="headers")
            host_given = True
            host_value = value
            continue
        has_user_agent = has_user_agent or lowered == "user-agent"
        extra.append((name, value))

    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_value}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if user_agent is not None and not has_user_agent:
        lines.append(f"User-Agent: {user_agent}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


# -------------------------------------------------------------------------- response


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response to the upgrade request.

    ``headers`` are in arrival order with names as received and values stripped of
    surrounding whitespace; ``body`` is at most ``max_body_bytes`` of the body (``b""``
    for a 101).
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((v for n, v in self.headers if n.lower() == lowered), None)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in arrival order."""
        return _values(self.headers, name)


def _values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    lowered = name.lower()
    return [v for n, v in headers if n.lower() == lowered]


class _Phase(Enum):
    HEAD = auto()  # reading a header block (interim responses included)
    LENGTH = auto()  # body delimited by Content-Length
    CHUNK_SIZE = auto()  # chunked: expecting a chunk-size line
    CHUNK_DATA = auto()  # chunked: inside chunk-data
    CHUNK_END = auto()  # chunked: expecting the CRLF after chunk-data
    TRAILER = auto()  # chunked: trailer lines up to the empty line
    UNTIL_EOF = auto()  # body delimited by the end of the connection
    DONE = auto()  # the response was returned
    FAILED = auto()  # an error was raised; the parser is unusable


_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\x00\r\n]*))?")
#: A chunk-size line (size plus extensions) longer than this is an attack, not HTTP.
_MAX_CHUNK_LINE = 4096


def _parse_head(block: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """Parse a header block without its final CRLF CRLF (RFC 7230 sections 3.1.2, 3.2)."""
    status_line, *lines = block.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise InvalidHandshake(f"malformed HTTP status line: {status_line[:200]!r}")
    version = (int(match[1]), int(match[2]))
    status = int(match[3])
    if version not in ((1, 0), (1, 1)):
        raise InvalidHandshake(f"unsupported HTTP version in status line: {status_line[:200]!r}")
    if not 100 <= status <= 599:
        raise InvalidHandshake(f"status code out of range 100-599: {status_line[:200]!r}")
    if status == 101 and version != (1, 1):
        raise InvalidHandshake("101 Switching Protocols requires HTTP/1.1, got HTTP/1.0")
    reason = (match[4] or b"").decode("latin-1")
    return status, reason, tuple(_parse_field(line) for line in lines)


def _parse_field(line: bytes) -> tuple[str, str]:
    """Parse one ``name: value`` line (RFC 7230 section 3.2)."""
    if line[:1] in (b" ", b"\t"):
        raise InvalidHandshake(f"obsolete header line folding (RFC 7230 3.2.4): {line[:200]!r}")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN_BYTES.fullmatch(name):
        raise InvalidHandshake(f"malformed header line: {line[:200]!r}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise InvalidHandshake(f"header {name.decode()!r} value contains CR, LF or NUL")
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


def _split_list(values: Sequence[str]) -> list[str]:
    """The elements of a comma-separated header list, empty elements dropped (RFC 7230 7)."""
    return [item.strip(" \t") for value in values for item in value.split(",") if item.strip()]


class ResponseParser:
    """Incremental parser for the HTTP/1.1 response to the upgrade request.

    Interim 1xx responses other than 101 are skipped (RFC 7231 6.2). A 101 is complete
    at the end of its header block; the bytes after it are :attr:`trailing`. Any other
    final status is complete at the end of its body, delimited as RFC 7230 3.3.3 says
    (none for 204 and 304, else chunked, Content-Length, or the end of the
    connection), or as soon as ``max_body_bytes`` of it have arrived: the rest is not
    waited for. The parser is single-use; once it returned a response, it is done.
    """

    def __init__(
        self, *, max_header_bytes: int = 64 * 1024, max_body_bytes: int = 1024 * 1024
    ) -> None:
        """Raises :class:`OptionsError` if ``max_header_bytes < 1`` or ``max_body_bytes < 0``."""
        if max_header_bytes < 1:
            raise OptionsError("max_header_bytes must be >= 1", option="max_header_bytes")
        if max_body_bytes < 0:
            raise OptionsError("max_body_bytes must be >= 0", option="max_body_bytes")
        self._max_head = max_header_bytes
        self._max_body = max_body_bytes
        self._buffer = bytearray()
        self._scan_from = 0  # where the search for a terminator resumes in _buffer
        self._head_used = 0  # header bytes of skipped interim responses and trailers
        self._phase = _Phase.HEAD
        self._head: tuple[int, str, tuple[tuple[str, str], ...]] = (0, "", ())
        self._body = bytearray()
        self._remaining = 0  # bytes left in the Content-Length body or the current chunk
        self._trailing = b""

    @property
    def trailing(self) -> bytes:
        """After a 101: the bytes that followed its header block (WebSocket frames)."""
        return self._trailing

    def feed(self, data: bytes | bytearray | memoryview) -> Response | None:
        """Add bytes from the server; return the response once complete, else ``None``.

        ``feed(b"")`` is a no-op, not the end of the connection: call :meth:`feed_eof`.

        Raises:
            InvalidHandshake: the header block (with any interim ones) exceeds
                ``max_header_bytes``, even before a line ends; a malformed status or
                header line; obsolete line folding; a 101 over HTTP/1.0; an invalid or
                conflicting Content-Length; invalid chunked encoding.
            InvalidStateError: a response was already returned, or an error raised.
        """
        self._check_usable("feed")
        self._buffer += data
        try:
            return self._advance()
        except InvalidHandshake:
            self._phase = _Phase.FAILED
            raise

    def feed_eof(self) -> Response:
        """The server closed the connection; return the response if that completes it.

        Raises:
            InvalidHandshake: the response was not close-delimited, so it is incomplete.
            InvalidStateError: a response was already returned, or an error raised.
        """
        self._check_usable("feed_eof")
        phase = self._phase
        if phase is _Phase.UNTIL_EOF:
            return self._finish()
        self._phase = _Phase.FAILED
        if phase is _Phase.HEAD and not self._buffer and not self._head_used:
            detail = "no response received"
        elif phase is _Phase.HEAD:
            detail = f"incomplete response header block ({len(self._buffer)} bytes)"
        elif phase is _Phase.LENGTH:
            detail = f"{self._remaining} bytes of the Content-Length body missing"
        else:
            detail = "the chunked body is incomplete"
        raise InvalidHandshake(f"connection closed during the opening handshake: {detail}")

    def _check_usable(self, operation: str) -> None:
        if self._phase is _Phase.DONE:
            raise InvalidStateError(operation, "complete", "the response was already returned")
        if self._phase is _Phase.FAILED:
            raise InvalidStateError(operation, "failed", "the response was invalid")

    def _finish(self) -> Response:
        self._phase = _Phase.DONE
        status, reason, headers = self._head
        return Response(status, reason, headers, bytes(self._body))

    def _take(self, terminator: bytes, limit: int, what: str) -> bytes | None:
        """Remove and return the buffer up to ``terminator`` (exclusive), or ``None``.

        Raises InvalidHandshake ``what`` when the bytes up to the end of the terminator
        would exceed ``limit``; this is known as soon as ``limit`` bytes are buffered.
        """
        end = self._buffer.find(terminator, max(self._scan_from - len(terminator) + 1, 0), limit)
        if end < 0:
            if len(self._buffer) >= limit:
                raise InvalidHandshake(what)
            self._scan_from = len(self._buffer)
            return None
        taken = bytes(self._buffer[:end])
        del self._buffer[: end + len(terminator)]
        self._scan_from = 0
        return taken

    def _take_body(self, count: int) -> int:
        """Move up to ``count`` buffered bytes into the body (beyond the cap: dropped)."""
        chunk = self._buffer[:count]
        del self._buffer[:count]
        self._body += chunk[: self._max_body - len(self._body)]
        return len(chunk)

    def _advance(self) -> Response | None:
        while True:
            phase = self._phase
            if phase is not _Phase.HEAD and len(self._body) >= self._max_body:
                return self._finish()  # the cap is reached: report, don't wait for more
            if phase is _Phase.HEAD:
                allowed = self._max_head - self._head_used
                error = f"response header block exceeds max_header_bytes={self._max_head}"
                if self._head_used:
                    error += f" ({self._head_used} used by interim responses)"
                block = self._take(b"\r\n\r\n", allowed, error)
                if block is None:
                    return None
                status, reason, headers = _parse_head(block)
                if 100 <= status < 200 and status != 101:
                    self._head_used += len(block) + 4  # interim: skip it (RFC 7231 6.2)
                    continue
                self._head = (status, reason, headers)
                self._head_used = 0  # the trailer section gets a budget of its own
                if status == 101:
                    self._trailing = bytes(self._buffer)
                    self._buffer.clear()
                    return self._finish()
                self._frame_body(headers, status)
            elif phase is _Phase.LENGTH:
                if self._remaining == 0:
                    return self._finish()
                if not self._buffer:
                    return None
                self._remaining -= self._take_body(self._remaining)
            elif phase is _Phase.CHUNK_SIZE:
                error = f"invalid chunked encoding: chunk-size line over {_MAX_CHUNK_LINE} bytes"
                line = self._take(b"\r\n", _MAX_CHUNK_LINE, error)
                if line is None:
                    return None
                self._remaining = _chunk_size(line)
                self._phase = _Phase.CHUNK_DATA if self._remaining else _Phase.TRAILER
            elif phase is _Phase.CHUNK_DATA:
                if not self._buffer:
                    return None
                self._remaining -= self._take_body(self._remaining)
                if self._remaining == 0:
                    self._phase = _Phase.CHUNK_END
            elif phase is _Phase.CHUNK_END:
                if len(self._buffer) < 2:
                    return None
                if self._buffer[:2] != b"\r\n":
                    got = bytes(self._buffer[:2])
                    raise InvalidHandshake(f"invalid chunked encoding: expected CRLF, got {got!r}")
                del self._buffer[:2]
                self._phase = _Phase.CHUNK_SIZE
            elif phase is _Phase.TRAILER:
                error = f"chunked trailer section exceeds max_header_bytes={self._max_head}"
                line = self._take(b"\r\n", self._max_head - self._head_used, error)
                if line is None:
                    return None
                if not line:
                    return self._finish()
                self._head_used += len(line) + 2
                _parse_field(line)  # trailers are checked, then dropped
            else:  # UNTIL_EOF: everything is body until feed_eof()
                self._take_body(len(self._buffer))
                if len(self._body) < self._max_body:
                    return None

    def _frame_body(self, headers: tuple[tuple[str, str], ...], status: int) -> None:
        """Choose how the body of a final non-101 response ends (RFC 7230 3.3.3)."""
        codings = _split_list(_values(headers, "Transfer-Encoding"))
        raw_lengths = _values(headers, "Content-Length")
        lengths = _split_list(raw_lengths)
        if status in (204, 304):
            self._phase, self._remaining = _Phase.LENGTH, 0
        elif codings:  # Transfer-Encoding overrides Content-Length
            chunked = codings[-1].lower() == "chunked"
            self._phase = _Phase.CHUNK_SIZE if chunked else _Phase.UNTIL_EOF
        elif raw_lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
                raise InvalidHandshake(f"invalid Content-Length: {', '.join(raw_lengths)!r}")
            self._phase, self._remaining = _Phase.LENGTH, int(lengths[0])
        else:
            self._phase = _Phase.UNTIL_EOF


def _chunk_size(line: bytes) -> int:
    """The size from a chunk-size line, ignoring chunk extensions (RFC 7230 4.1)."""
    size = line.split(b";", 1)[0].rstrip(b" \t")
    if not size or len(size) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size):
        raise InvalidHandshake(f"invalid chunked encoding: bad chunk-size line {line[:100]!r}")
    return int(size, 16)


# ------------------------------------------------------------------------ extensions


@dataclass(frozen=True, slots=True)
class ExtensionOffer:
    """One element of a ``Sec-WebSocket-Extensions`` header: a name and its parameters.

    A parameter without ``=value`` has the value ``None``; quoted values are unquoted.
    """

    name: str
    params: tuple[tuple[str, str | None], ...] = ()


#: RFC 6455 9.1: a parameter value is a token or a quoted-string (RFC 7230 3.2.6).
_PARAM_VALUE = re.compile(rf'{_TCHARS}|"(?:[^"\\]|\\.)*"')


def parse_extensions(value: str) -> list[ExtensionOffer]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 section 9.1).

    ``extension *( "," extension )`` with ``extension = name *( ";" param [ "=" value ] )``,
    whitespace allowed around separators, empty list elements ignored (RFC 7230 7).
    Values are tokens or quoted-strings whose unescaped content is a token.

    Raises:
        InvalidHandshake: bad syntax, a quoted value that is not a token, or no extension;
            the message gives the position and what was expected there.
    """
    pos = 0

    def fail(expected: str, at: int) -> InvalidHandshake:
        got = repr(value[at]) if at < len(value) else "the end"
        return InvalidHandshake(
            f"invalid Sec-WebSocket-Extensions {value!r}: expected {expected} at "
            f"position {at}, got {got}"
        )

    def skip(chars: str) -> str:  # skip ``chars``, return the next character or ""
        nonlocal pos
        while pos < len(value) and value[pos] in chars:
            pos += 1
        return value[pos : pos + 1]

    def take(pattern: re.Pattern[str], expected: str) -> str:
        nonlocal pos
        match = pattern.match(value, pos)
        if match is None:
            raise fail(expected, pos)
        pos = match.end()
        return match[0]

    offers: list[ExtensionOffer] = []
    while skip(" \t,"):
        name = take(_TOKEN, "an extension name")
        params: list[tuple[str, str | None]] = []
        while skip(" \t") == ";":
            pos += 1
            skip(" \t")
            param = take(_TOKEN, "a parameter name")
            param_value: str | None = None
            if skip(" \t") == "=":
                pos += 1
                skip(" \t")
                start = pos
                param_value = take(_PARAM_VALUE, "a token or quoted-string value")
                if param_value.startswith('"'):
                    param_value = re.sub(r"\\(.)", r"\1", param_value[1:-1])
                    if not _TOKEN.fullmatch(param_value):
                        raise fail("a quoted value that is a token (RFC 6455 9.1)", start)
            params.append((param, param_value))
        offers.append(ExtensionOffer(name, tuple(params)))
        if skip(" \t") not in ("", ","):
            raise fail("',' or ';'", pos)
    if not offers:
        raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions {value!r}: no extension")
    return offers


def format_extensions(offers: Sequence[ExtensionOffer]) -> str:
    """The ``Sec-WebSocket-Extensions`` value for ``offers``, e.g. ``"a; x=1, b"``.

    Raises:
        OptionsError: no offer, or a name, parameter name or value that is not a token
            (RFC 6455 9.1 allows nothing else, even quoted).
    """
    if not offers:
        raise OptionsError("no extension to format", option="extensions")
    parts: list[str] = []
    for offer in offers:
        items = [offer.name]
        items.extend(name if value is None else f"{name}={value}" for name, value in offer.params)
        for text in (offer.name, *(t for p in offer.params for t in p if t is not None)):
            if not _TOKEN.fullmatch(text):
                raise OptionsError(f"extension item is not a token: {text!r}", option="extensions")
        parts.append("; ".join(items))
    return ", ".join(parts)


# ---------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the server agreed to: the subprotocol and the extensions, in its order."""

    subprotocol: str | None
    extensions: tuple[ExtensionOffer, ...]


def _parse_http_date(value: str) -> float | None:
    """An HTTP-date (RFC 7231 7.1.1.1, all three forms) as a POSIX timestamp, or ``None``."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # not a date, or no such day or time
        return None
    if moment.tzinfo is None:  # the asctime() form has no zone: HTTP dates are in GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 7231 7.1.3), or ``None``.

    ``value`` is delta-seconds or an HTTP-date; a date is counted from ``now`` (a POSIX
    timestamp) and a date in the past gives 0. Anything else gives ``None``.
    """
    value = value.strip(" \t")
    if value.isascii() and value.isdigit():
        return float(int(value))
    when = _parse_http_date(value)
    return None if when is None else max(0.0, when - now)


def _retry_after(response: Response) -> float | None:
    value = response.get("Retry-After")
    if value is None:
        return None
    # Count from the server's own Date when it sent one, so clock skew cancels out.
    date = response.get("Date")
    now = time.time()
    server_now = None if date is None else _parse_http_date(date)
    return parse_retry_after(value, now if server_now is None else server_now)


def check_response(
    response: Response, *, key: str, protocols: Sequence[str], offered_extensions: Sequence[str]
) -> Accepted:
    """Verify the server's answer to the request sent with ``key`` (RFC 6455 4.1, 4.2.2).

    ``protocols`` are the subprotocols offered, ``offered_extensions`` the names of the
    extensions offered. Extension parameters are not checked here: each extension
    validates its own.

    Raises:
        HandshakeRejected: the status is not 101 (with ``retry_after`` parsed from
            delta-seconds or an HTTP-date, counted from the response's ``Date`` if any).
        InvalidHandshake: ``Upgrade`` is not ``websocket``; ``Connection`` lacks
            ``upgrade``; ``Sec-WebSocket-Accept`` is missing, repeated or wrong;
            ``Sec-WebSocket-Protocol`` names something not offered, more than one value,
            or anything when none was offered; an extension was not offered or the
            extensions header is malformed.
    """
    if response.status != 101:
        raise HandshakeRejected(
            response.status,
            response.reason,
            response.headers,
            response.body,
            _retry_after(response),
        )

    upgrade = _split_list(response.get_all("Upgrade"))
    if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
        got = repr(", ".join(upgrade)) if upgrade else "no Upgrade header"
        raise InvalidHandshake(f"expected 'Upgrade: websocket', got {got}")

    connection = _split_list(response.get_all("Connection"))
    if not any(token.lower() == "upgrade" for token in connection):
        got = repr(", ".join(connection)) if connection else "no Connection header"
        raise InvalidHandshake(f"expected 'Connection: Upgrade', got {got}")

    accepts = response.get_all("Sec-WebSocket-Accept")
    expected = accept_key(key)
    if not accepts:
        raise InvalidHandshake(f"missing Sec-WebSocket-Accept, expected {expected!r}")
    if len(accepts) > 1:
        raise InvalidHandshake(f"Sec-WebSocket-Accept repeated: {accepts!r}")
    if accepts[0] != expected:
        raise InvalidHandshake(
            f"wrong Sec-WebSocket-Accept: expected {expected!r}, got {accepts[0]!r}"
        )

    subprotocol: str | None = None
    protocol_values = response.get_all("Sec-WebSocket-Protocol")
    if protocol_values:
        chosen = _split_list(protocol_values)
        got = ", ".join(protocol_values)
        if not protocols:
            raise InvalidHandshake(f"Sec-WebSocket-Protocol {got!r} but no subprotocol was offered")
        if len(chosen) != 1 or chosen[0] not in protocols:
            raise InvalidHandshake(
                f"Sec-WebSocket-Protocol: expected one of {list(protocols)!r}, got {got!r}"
            )
        subprotocol = chosen[0]

    accepted: tuple[ExtensionOffer, ...] = ()
    extension_values = response.get_all("Sec-WebSocket-Extensions")
    if extension_values:
        accepted = tuple(parse_extensions(", ".join(extension_values)))
        for offer in accepted:
            if offer.name not in offered_extensions:  # names compare exactly
                raise InvalidHandshake(
                    f"server accepted extension {offer.name!r}, which was not offered "
                    f"(offered: {list(offered_extensions)!r})"
                )
    return Accepted(subprotocol, accepted)
