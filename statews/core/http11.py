"""HTTP/1.1 responses for the opening handshake: an incremental, bounded parser, sans I/O.

Invariants: :class:`ResponseParser` holds at most ``max_header_bytes`` of header data
(interim 1xx responses included) and ``max_body_bytes`` of body, whatever the peer sends,
and scans each byte a bounded number of times; every malformed input raises
:class:`~statews.core.errors.InvalidHandshake`. Header values are decoded as ISO-8859-1, so no
received byte is lost or makes decoding fail.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

from .errors import InvalidHandshake, InvalidStateError, OptionsError

__all__ = ["TCHARS", "Response", "ResponseParser", "parse_field", "parse_status_line", "split_list"]

#: RFC 9110 5.6.2: ``token = 1*tchar``; header names, subprotocols and parameters are tokens.
TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_BYTES = re.compile(TCHARS.encode("ascii"))


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
    status, reason = parse_status_line(status_line)
    return status, reason, tuple(parse_field(line) for line in lines)


def parse_status_line(status_line: bytes) -> tuple[int, str]:
    """``(status, reason)`` of an HTTP/1.0 or HTTP/1.1 status line (RFC 7230 3.1.2).

    Raises:
        InvalidHandshake: not such a line, a status outside 100-599, a 101 over HTTP/1.0.
    """
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
    return status, (match[4] or b"").decode("latin-1")


def parse_field(line: bytes) -> tuple[str, str]:
    """``(name, value)`` of one header line (RFC 7230 section 3.2), the value's optional
    white space stripped.

    Raises:
        InvalidHandshake: obsolete line folding, no colon, a name that is not a token,
            CR, LF or NUL in the value.
    """
    if line[:1] in (b" ", b"\t"):
        raise InvalidHandshake(f"obsolete header line folding (RFC 7230 3.2.4): {line[:200]!r}")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN_BYTES.fullmatch(name):
        raise InvalidHandshake(f"malformed header line: {line[:200]!r}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise InvalidHandshake(f"header {name.decode()!r} value contains CR, LF or NUL")
    # Names repeat across connections (the 101's few headers are kept per connection).
    return sys.intern(name.decode("ascii")), value.strip(b" \t").decode("latin-1")


def split_list(values: Sequence[str]) -> list[str]:
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
                parse_field(line)  # trailers are checked, then dropped
            else:  # UNTIL_EOF: everything is body until feed_eof()
                self._take_body(len(self._buffer))
                if len(self._body) < self._max_body:
                    return None

    def _frame_body(self, headers: tuple[tuple[str, str], ...], status: int) -> None:
        """Choose how the body of a final non-101 response ends (RFC 7230 3.3.3)."""
        codings = split_list(_values(headers, "Transfer-Encoding"))
        raw_lengths = _values(headers, "Content-Length")
        lengths = split_list(raw_lengths)
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
