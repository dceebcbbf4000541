"""The tests' own WebSocket wire, written independently of statews (plain byte loops).

One place builds and reads what crosses the socket, for every test folder (``import wire``):

- :func:`server_frame` builds what a server sends: unmasked, every header field under control
  (RSV bits, an announced ``length`` other than the real one, a forced non-minimal ``width``,
  a ``mask`` a server must not use); :func:`client_frame` builds what a client sends (masked).
- :func:`close_body` and :func:`close_frame` build Close payloads and frames (raw, invalid
  payloads go through :func:`server_frame` directly); :func:`close_code` reads one back.
- :func:`parse_frame` and :func:`parse_frames` decode frames of either side and unmask them.
- :func:`accept_for` computes Sec-WebSocket-Accept (RFC 6455 section 4.2.2);
  :func:`upgrade_response` builds a 101, valid by default, broken through its knobs.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _mask(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def server_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    length: int | None = None,
    width: int | None = None,
    mask: bytes | None = None,
) -> bytes:
    """One frame as a server writes it.

    ``rsv`` is the 3-bit RSV1-RSV2-RSV3 value; ``length`` is the announced payload length
    (default: the real one); ``width`` forces the length encoding, 7, 16 or 64 bits (default:
    the shortest, as a valid peer does); ``mask`` (a 4-byte key) masks the frame, which a
    server must not do.
    """
    n = len(payload) if length is None else length
    if width is None:
        width = 7 if n < 126 else 16 if n < 65536 else 64
    header = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if width == 7:
        header.append(mask_bit | n)
    elif width == 16:
        header.append(mask_bit | 126)
        header += n.to_bytes(2, "big")
    else:
        header.append(mask_bit | 127)
        header += n.to_bytes(8, "big")
    if mask is not None:
        header += mask
        payload = _mask(payload, mask)
    return bytes(header) + payload


def client_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, key: bytes | None = None
) -> bytes:
    """One frame as a client writes it: masked with ``key`` (default: a random one)."""
    return server_frame(opcode, payload, fin=fin, mask=os.urandom(4) if key is None else key)


def close_body(code: int | None = 1000, reason: bytes | str = b"") -> bytes:
    """A Close payload: ``code`` and ``reason`` (a str is UTF-8 encoded); ``code=None``: empty."""
    if code is None:
        return b""
    return code.to_bytes(2, "big") + (reason.encode() if isinstance(reason, str) else reason)


def close_frame(code: int | None = 1000, reason: bytes | str = b"") -> bytes:
    """A server Close frame with :func:`close_body`'s payload (``code=None``: an empty body)."""
    return server_frame(CLOSE, close_body(code, reason))


def close_code(payload: bytes) -> int:
    """The code of a Close payload: 1005 (no status received) for an empty one."""
    return int.from_bytes(payload[:2], "big") if payload else 1005


@dataclass(frozen=True)
class WireFrame:
    """One decoded frame: ``payload`` is unmasked, ``key`` is b"" for an unmasked frame and
    ``width`` is the length encoding used on the wire (7, 16 or 64 bits)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    key: bytes
    payload: bytes
    width: int


def parse_frame(data: bytes | bytearray, pos: int = 0) -> tuple[WireFrame, int] | None:
    """Decode the frame starting at ``data[pos]``: the frame and the position after it, or
    None while ``data`` does not hold all of it yet."""
    if len(data) < pos + 2:
        return None
    b0, b1 = data[pos], data[pos + 1]
    n, pos, width = b1 & 0x7F, pos + 2, 7
    if n in (126, 127):
        size = 2 if n == 126 else 8
        if len(data) < pos + size:
            return None
        n, pos, width = int.from_bytes(data[pos : pos + size], "big"), pos + size, size * 8
    masked = bool(b1 & 0x80)
    start = pos + 4 * masked
    if len(data) < start + n:
        return None
    key = bytes(data[pos:start])
    raw = bytes(data[start : start + n])
    payload = _mask(raw, key) if masked else raw
    frame = WireFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, key, payload, width)
    return frame, start + n


def parse_frames(data: bytes | bytearray) -> list[WireFrame]:
    """Decode a complete stream of frames; fails on a truncated last one."""
    frames = []
    pos = 0
    while pos < len(data):
        parsed = parse_frame(data, pos)
        assert parsed is not None, f"truncated frame at byte {pos} of {len(data)}"
        frame, pos = parsed
        frames.append(frame)
    return frames


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept answering the Sec-WebSocket-Key ``key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade_response(
    accept: str | None = "{accept}",
    *,
    extra: bytes = b"",
    version: bytes = b"HTTP/1.1",
    upgrade: bytes | None = b"websocket",
    connection: bytes | None = b"Upgrade",
) -> bytes:
    """A 101 head: the status line, Upgrade, Connection, Sec-WebSocket-Accept, then the
    header lines ``extra`` (each ending in CRLF), then the blank line.

    ``accept`` is the value written after ``Sec-WebSocket-Accept: `` (compute it with
    :func:`accept_for`; the default is the ``{accept}`` placeholder the hostile harness fills
    in); ``None`` leaves a header out; ``version``, ``upgrade`` and ``connection`` replace
    their values, to break the response.
    """
    lines = [version + b" 101 Switching Protocols\r\n"]
    if upgrade is not None:
        lines.append(b"Upgrade: " + upgrade + b"\r\n")
    if connection is not None:
        lines.append(b"Connection: " + connection + b"\r\n")
    if accept is not None:
        lines.append(b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n")
    return b"".join(lines) + extra + b"\r\n"
