"""RFC 6455 section 5 framing: opcodes, the frame record, and the wire codec.

Pure: no I/O, no trio. The byte layout of a frame (section 5.2)::

    byte 0: FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
    byte 1: MASK | payload length (7 bits: 0-125, or 126 -> 16-bit, 127 -> 64-bit follows)
    [2 or 8 bytes extended length, network order] [4 bytes masking key if MASK] payload

Invariants of this module:

- :func:`client_frame` always sets MASK and masks with the key it is given, uses the shortest
  length encoding, and never checks protocol rules (the caller, :mod:`statews.core.protocol`, does).
- :func:`encode_close` and :func:`decode_close` are the only places that know the Close body
  (section 5.5.1): they raise :class:`LocalProtocolError` and :class:`RemoteProtocolError`
  respectively for anything that may not be on the wire.
- The receive side's header decoder lives in :mod:`statews.core.protocol`, fused with the checks it
  must run on each header; it uses the constants below.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import (
    CloseCode,
    LocalProtocolError,
    RemoteProtocolError,
    is_valid_wire_code,
)
from .events import Close
from .masking import BytesLike, mask
from .utf8 import decode_utf8

__all__ = [
    "FIN",
    "MASK_BIT",
    "MAX_CLOSE_REASON",
    "MAX_CONTROL_PAYLOAD",
    "RSV_BITS",
    "Opcode",
    "RawFrame",
    "client_frame",
    "decode_close",
    "encode_close",
    "frame_header",
]

#: Byte 0: the final fragment of a message.
FIN = 0x80
#: Byte 0: RSV1, RSV2, RSV3 (shift right by 4 for the 3-bit ``rsv`` value 0b(RSV1)(RSV2)(RSV3)).
RSV_BITS = 0x70
#: Byte 1: the payload is masked and a 4-byte key precedes it.
MASK_BIT = 0x80
#: Section 5.5: control frames carry at most 125 payload bytes.
MAX_CONTROL_PAYLOAD = 125
#: Section 5.5.1: a Close reason fits in the 125 bytes after the 2-byte code.
MAX_CLOSE_REASON = 123


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2). 0x3-0x7 and 0xB-0xF are reserved."""

    #: 0x0: continues the data message started by the last TEXT or BINARY frame.
    CONTINUATION = 0x0
    #: 0x1: first frame of a UTF-8 text message.
    TEXT = 0x1
    #: 0x2: first frame of a binary message.
    BINARY = 0x2
    #: 0x8: connection close (section 5.5.1).
    CLOSE = 0x8
    #: 0x9: ping (section 5.5.2).
    PING = 0x9
    #: 0xA: pong (section 5.5.3).
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        """Control opcodes have the high bit of the nibble set (section 5.5)."""
        return self >= 0x8


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame as on the wire, payload unmasked. Extensions transform these."""

    opcode: Opcode
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


_pack_7 = struct.Struct("!BB4s").pack
_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack
_unpack_code = struct.Struct("!H").unpack_from


def frame_header(opcode: int, length: int, key: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """The header of a client-to-server frame of ``length`` payload bytes, masking key included.

    ``rsv`` is the 3-bit value RSV1-RSV2-RSV3 (0b100 is RSV1). The length uses the shortest
    encoding (7-bit up to 125, 16-bit up to 65535, else 64-bit).
    """
    b0 = (FIN if fin else 0) | (rsv << 4) | opcode
    if length < 126:
        return bytes((b0, MASK_BIT | length)) + key
    if length < 65536:
        return _pack_16(b0, MASK_BIT | 126, length) + key
    return _pack_64(b0, MASK_BIT | 127, length) + key


def client_frame(
    opcode: int, payload: BytesLike, key: bytes, *, fin: bool = True, rsv: int = 0
) -> bytes | bytearray:
    """Serialize one client-to-server frame: header, masking ``key``, masked ``payload``.

    ``rsv`` as in :func:`frame_header`.
    """
    n = len(payload)
    if n < 126:
        # Most messages: the 2-byte header and the key in one pack (one call, not three).
        b0 = (FIN if fin else 0) | (rsv << 4) | opcode
        return mask(payload, key, _pack_7(b0, MASK_BIT | n, key))
    return mask(payload, key, frame_header(opcode, n, key, fin=fin, rsv=rsv))


def encode_close(close: Close) -> bytes:
    """The Close frame body for ``close``: empty for code 1005, else code and UTF-8 reason.

    Raises:
        LocalProtocolError: the code may not be sent
            (:func:`~statews.core.errors.is_valid_wire_code`), 1005 with a reason, a reason
            over 123 bytes of UTF-8 or not encodable.
    """
    if close.code == CloseCode.NO_STATUS_RCVD:
        if close.reason:
            raise LocalProtocolError("a Close without a status code cannot carry a reason")
        return b""
    if not is_valid_wire_code(close.code):
        raise LocalProtocolError(f"close code {close.code} may not be sent on the wire")
    try:
        reason = close.reason.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"close reason is not encodable as UTF-8: {exc}") from exc
    if len(reason) > MAX_CLOSE_REASON:
        raise LocalProtocolError(
            f"close reason is {len(reason)} bytes of UTF-8, more than {MAX_CLOSE_REASON}"
        )
    return close.code.to_bytes(2, "big") + reason


def decode_close(payload: bytes) -> Close:
    """Parse a received Close body; an empty body is ``Close(1005, "")``.

    Raises:
        RemoteProtocolError: code 1002 for a 1-byte body or a code not allowed on the wire,
            code 1007 for a reason that is not valid UTF-8.
    """
    if not payload:
        return Close(int(CloseCode.NO_STATUS_RCVD), "")
    if len(payload) == 1:
        raise RemoteProtocolError("a Close body of 1 byte has no room for a status code")
    (code,) = _unpack_code(payload)
    if not is_valid_wire_code(code):
        raise RemoteProtocolError(f"close code {code} is not allowed on the wire")
    return Close(code, decode_utf8(payload[2:]))
