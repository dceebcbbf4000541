"""Test-side frame codec, written independently of statews (plain byte loops, no masking tricks).

- :func:`server_frame` builds what a server sends (unmasked by default), with any header field
  forced, including non-minimal length encodings.
- :func:`parse_client_frames` decodes what the client sends and unmasks it byte by byte.
"""

from __future__ import annotations

from dataclasses import dataclass


def server_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    length_bits: int | None = None,
    length: int | None = None,
    mask_key: bytes | None = None,
) -> bytes:
    """One frame as a server writes it.

    ``rsv`` is the 3-bit RSV1-RSV2-RSV3 value; ``length_bits`` (7, 16, 64) forces an encoding;
    ``length`` overrides the announced length; ``mask_key`` masks the frame (servers must not).
    """
    n = len(payload) if length is None else length
    if length_bits is None:
        length_bits = 7 if n < 126 else 16 if n < 65536 else 64
    header = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask_key is not None else 0
    if length_bits == 7:
        header.append(mask_bit | n)
    elif length_bits == 16:
        header.append(mask_bit | 126)
        header += n.to_bytes(2, "big")
    else:
        header.append(mask_bit | 127)
        header += n.to_bytes(8, "big")
    if mask_key is not None:
        header += mask_key
        payload = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return bytes(header) + payload


def close_body(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


@dataclass(frozen=True)
class WireFrame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    key: bytes
    payload: bytes
    length_bits: int


def parse_client_frames(data: bytes) -> list[WireFrame]:
    """Decode a complete stream of client frames; fails on a truncated one."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        n = b1 & 0x7F
        bits = 7
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            bits = 16
        elif n == 127:
            n = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
            bits = 64
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            key = data[pos : pos + 4]
            pos += 4
        raw = data[pos : pos + n]
        assert len(raw) == n, "truncated frame"
        pos += n
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(raw)) if masked else raw
        frames.append(
            WireFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, key, payload, bits)
        )
    return frames
