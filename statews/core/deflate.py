"""permessage-deflate (RFC 7692) for the client: the offer, the response check, the codec.

Pure: no I/O, no trio. :func:`offer` builds the ``Sec-WebSocket-Extensions`` value,
:func:`accept` checks the server's response parameters against it and returns a
:class:`PerMessageDeflate`, which the protocol core drives through the
:class:`~statews.core.extensions.Extension` protocol.

Invariants:

* Compression is per *message*. RSV1 is read and written on the first frame of a
  message only; RSV1 on a continuation frame is a protocol error (1002). Every frame
  of a compressed message is compressed; every frame of an uncompressed message
  passes through as the same object.
* Each outgoing compressed frame is flushed with ``Z_SYNC_FLUSH`` (so the peer can
  inflate it at once); the final frame has the ``00 00 ff ff`` tail removed
  (section 7.2.1). On the way in the tail is appended after the final frame, unless
  the whole message payload is empty (see ``PerMessageDeflate._inflate``).
* Inflating never produces more than ``max_size + 1`` bytes per frame: a bomb fails
  with :class:`~statews.core.errors.PayloadTooBig` having used bounded memory.
* Invalid DEFLATE data is reported as 1007 (invalid frame payload data): the frame
  is well formed, its payload is not.
* Context takeover: the compression context of a direction lives across messages
  unless the agreement says no context takeover for it. Ours then ends each message
  with a full flush (a sync flush that forgets the history); the server's is dropped
  after each message, so a reference into an earlier one fails (1007).
* An 8-bit window is honoured with zlib's 9-bit one, in both directions. zlib
  rejects ``wbits=-8`` for deflate, but it limits match distances to the window
  minus 262 bytes (``MAX_DIST``), so a 9-bit deflater never reaches back more than
  250 bytes and its output is valid for a 256-byte window; zlib-based servers asked
  for 8 do the same. The alternatives are far worse: ``Z_RLE`` (distance 1 only)
  sends about 97% of the input size on small JSON messages against 28% here.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import (
    CloseCode,
    InvalidHandshake,
    LocalProtocolError,
    OptionsError,
    PayloadTooBig,
    RemoteProtocolError,
)
from .framing import Opcode, RawFrame

__all__ = [
    "EXTENSION_NAME",
    "DeflateAgreement",
    "DeflateSettings",
    "PerMessageDeflate",
    "accept",
    "offer",
]

EXTENSION_NAME = "permessage-deflate"

#: Removed from the end of every compressed message, re-appended before inflating
#: (RFC 7692 section 7.2.1): the empty stored block a sync flush ends with.
_TAIL = b"\x00\x00\xff\xff"

#: Section 7.1.2: a decimal integer 8..15 without leading zeros.
_WINDOW_BITS_VALUE = re.compile(r"(?:[89]|1[0-5])\Z")

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_FLAG_PARAMS = frozenset({_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER})
_BITS_PARAMS = frozenset({_SERVER_MAX_WINDOW_BITS, _CLIENT_MAX_WINDOW_BITS})


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """What the client asks for and how it compresses.

    ``client_max_window_bits``: ``None`` offers the bare parameter (the server may
    pick a window for us); 9..15 promises that we use at most that window.
    ``server_max_window_bits``: 9..15 asks the server to use at most that window;
    ``None`` does not ask. The ``*_no_context_takeover`` flags ask for a fresh
    compression context per message in that direction. ``compress_level`` (0..9)
    and ``mem_level`` (1..9) tune our compressor; the default level is zlib's own, 6:
    on JSON-like traffic level 1 sends 25-30% more bytes for a third to a quarter of
    the CPU (bench/bench_deflate.py), a trade left to the application. Messages whose
    first frame is shorter than ``threshold`` bytes are sent uncompressed.

    Raises:
        OptionsError: a value is out of range; ``option`` names the field.
    """

    client_max_window_bits: int | None = None
    server_max_window_bits: int | None = None
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    compress_level: int = 6
    mem_level: int = 8
    threshold: int = 128

    def __post_init__(self) -> None:
        # 8 is legal in the RFC but zlib cannot deflate with it and many servers
        # (zlib again) cannot either, so asking for it would only fail or mislead.
        for field in (_CLIENT_MAX_WINDOW_BITS, _SERVER_MAX_WINDOW_BITS):
            bits = getattr(self, field)
            if bits is not None and not 9 <= bits <= 15:
                raise OptionsError(f"{field} must be 9..15 or None, not {bits!r}", option=field)
        if not 0 <= self.compress_level <= 9:
            raise OptionsError(
                f"compress_level must be 0..9, not {self.compress_level!r}",
                option="compress_level",
            )
        if not 1 <= self.mem_level <= 9:
            raise OptionsError(
                f"mem_level must be 1..9, not {self.mem_level!r}", option="mem_level"
            )
        if self.threshold < 0:
            raise OptionsError(
                f"threshold must be >= 0, not {self.threshold!r}", option="threshold"
            )


@dataclass(frozen=True, slots=True)
class DeflateAgreement:
    """The parameters in force after negotiation, for both directions.

    Window bits are 8..15; 15 where the response set no limit.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


def offer(settings: DeflateSettings) -> str:
    """The ``Sec-WebSocket-Extensions`` value offering permessage-deflate as ``settings`` ask.

    ``client_max_window_bits`` is always offered (bare when not set), so the server
    may lower our window.
    """
    parts = [EXTENSION_NAME]
    if settings.server_no_context_takeover:
        parts.append(_SERVER_NO_CONTEXT_TAKEOVER)
    if settings.client_no_context_takeover:
        parts.append(_CLIENT_NO_CONTEXT_TAKEOVER)
    if settings.server_max_window_bits is not None:
        parts.append(f"{_SERVER_MAX_WINDOW_BITS}={settings.server_max_window_bits}")
    if settings.client_max_window_bits is None:
        parts.append(_CLIENT_MAX_WINDOW_BITS)
    else:
        parts.append(f"{_CLIENT_MAX_WINDOW_BITS}={settings.client_max_window_bits}")
    return "; ".join(parts)


def _fail(message: str) -> InvalidHandshake:
    return InvalidHandshake(f"{EXTENSION_NAME}: {message}")


def _parse_params(params: Sequence[tuple[str, str | None]]) -> dict[str, str | None]:
    """Check each response parameter's name and value syntax (section 7.1)."""
    seen: dict[str, str | None] = {}
    for raw_name, value in params:
        # Parameter names are registered in lower case; accept any case, as tokens.
        name = raw_name.lower()
        if name not in _FLAG_PARAMS and name not in _BITS_PARAMS:
            raise _fail(f"unknown parameter {raw_name!r} in the server's response")
        if name in seen:
            raise _fail(f"duplicate parameter {name!r} in the server's response")
        if name in _FLAG_PARAMS and value is not None:
            raise _fail(f"parameter {name!r} takes no value, got {value!r}")
        if name in _BITS_PARAMS and (value is None or not _WINDOW_BITS_VALUE.match(value)):
            shown = "no value" if value is None else repr(value)
            raise _fail(f"parameter {name!r} needs an integer 8..15, got {shown}")
        seen[name] = value
    return seen


def accept(
    settings: DeflateSettings, params: Sequence[tuple[str, str | None]]
) -> PerMessageDeflate:
    """Check the server's permessage-deflate response against :func:`offer` (``settings``).

    ``params`` are the (name, value) pairs of the accepted extension element, values
    unquoted, ``None`` for a bare name. RFC 7692 section 7.1 decides:

    * ``server_no_context_takeover``: required when we asked for it; honoured when
      sent unasked.
    * ``client_no_context_takeover``: honoured when sent; our own request holds even
      when the server does not repeat it.
    * ``server_max_window_bits``: required, and at most our value, when we asked for
      it; may be sent unasked.
    * ``client_max_window_bits``: at most our value when we offered one; without it
      we keep our offered value (or 15 if we offered it bare).

    Returns a fresh :class:`PerMessageDeflate` for one connection.

    Raises:
        InvalidHandshake: unknown or duplicate parameter, malformed value, or a
            response that does not accept what we offered; the message names the
            parameter.
    """
    seen = _parse_params(params)

    server_nct = _SERVER_NO_CONTEXT_TAKEOVER in seen
    if settings.server_no_context_takeover and not server_nct:
        raise _fail(f"we asked for {_SERVER_NO_CONTEXT_TAKEOVER}, the response lacks it")
    client_nct = settings.client_no_context_takeover or _CLIENT_NO_CONTEXT_TAKEOVER in seen

    server_value = seen.get(_SERVER_MAX_WINDOW_BITS)
    server_bits = 15 if server_value is None else int(server_value)
    if settings.server_max_window_bits is not None:
        if server_value is None:
            raise _fail(f"we asked for {_SERVER_MAX_WINDOW_BITS}, the response lacks it")
        if server_bits > settings.server_max_window_bits:
            raise _fail(
                f"{_SERVER_MAX_WINDOW_BITS}={server_bits} exceeds the "
                f"{settings.server_max_window_bits} we asked for"
            )

    client_value = seen.get(_CLIENT_MAX_WINDOW_BITS)
    offered = settings.client_max_window_bits
    if client_value is None:
        client_bits = 15 if offered is None else offered
    else:
        client_bits = int(client_value)
        if offered is not None and client_bits > offered:
            raise _fail(f"{_CLIENT_MAX_WINDOW_BITS}={client_bits} exceeds the {offered} we offered")

    agreement = DeflateAgreement(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    return PerMessageDeflate(
        agreement,
        compress_level=settings.compress_level,
        mem_level=settings.mem_level,
        threshold=settings.threshold,
    )


class PerMessageDeflate:
    """The permessage-deflate codec of one connection (client side).

    Implements :class:`~statews.core.extensions.Extension`: the core calls :meth:`decode`
    on every incoming data frame and :meth:`encode` on every outgoing one, in order.
    ``agreement`` is what was negotiated; the other arguments come from
    :class:`DeflateSettings` and are assumed valid.
    """

    name = EXTENSION_NAME
    rsv_mask = 0b100

    __slots__ = (
        "_compressor",
        "_decompressor",
        "_end_flush",
        "_in_empty",
        "_in_message",
        "_out_message",
        "_reset_inflate",
        "agreement",
        "compress_level",
        "mem_level",
        "threshold",
    )

    def __init__(
        self,
        agreement: DeflateAgreement,
        *,
        compress_level: int = 6,
        mem_level: int = 8,
        threshold: int = 128,
    ) -> None:
        self.agreement = agreement
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.threshold = threshold
        # Created on first use; the decompressor is dropped between messages when
        # the server does no context takeover, which is what saves the memory.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        # A full flush is a sync flush that also forgets the history, which is
        # exactly "no context takeover" and cheaper than a new compressor.
        self._end_flush = (
            zlib.Z_FULL_FLUSH if agreement.client_no_context_takeover else zlib.Z_SYNC_FLUSH
        )
        self._reset_inflate = agreement.server_no_context_takeover
        # Whether the message in progress is compressed; None between messages.
        self._in_message: bool | None = None
        self._out_message: bool | None = None
        # Whether the compressed message in progress has had no payload byte yet.
        self._in_empty = True

    # -- incoming ---------------------------------------------------------------

    def decode(self, frame: RawFrame, *, max_size: int | None) -> RawFrame:
        """Inflate an incoming data frame if its message is compressed.

        ``max_size`` bounds this frame's decoded payload (``None``: no bound). The
        result has RSV1 clear; frames of uncompressed messages and control frames
        (without RSV1) are returned as is.

        Raises:
            PayloadTooBig: the decoded payload would exceed ``max_size``.
            RemoteProtocolError: RSV1 on a continuation or control frame, or a frame
                out of message order (1002); invalid DEFLATE data (1007).
        """
        opcode = frame.opcode
        if opcode is Opcode.CONTINUATION:
            if frame.rsv1:
                raise RemoteProtocolError("RSV1 set on a continuation frame")
            compressed = self._in_message
            if compressed is None:
                raise RemoteProtocolError("continuation frame outside a message")
        elif opcode.is_control:
            if frame.rsv1:
                raise RemoteProtocolError(f"RSV1 set on a {opcode.name} frame")
            return frame
        else:
            if self._in_message is not None:
                raise RemoteProtocolError(f"{opcode.name} frame inside an unfinished message")
            compressed = frame.rsv1
            self._in_empty = True
        self._in_message = None if frame.fin else compressed

        if not compressed:
            if max_size is not None and len(frame.payload) > max_size:
                raise PayloadTooBig(f"payload exceeds the {max_size} bytes left in the message")
            return frame
        payload = self._inflate(frame.payload, frame.fin, max_size)
        return RawFrame(opcode, payload, frame.fin, False, frame.rsv2, frame.rsv3)

    def _inflate(self, data: bytes, fin: bool, max_size: int | None) -> bytes:
        inflater = self._decompressor
        if inflater is None:
            # 8 -> 9 costs 256 bytes and tolerates peers that took 8 to mean 9.
            bits = max(self.agreement.server_max_window_bits, 9)
            inflater = self._decompressor = zlib.decompressobj(-bits)
        if inflater.eof:
            # A block with BFINAL ended the stream earlier in this message.
            out = b""
            junk = data
        else:
            # The wire payload of a message may be cut anywhere, so the tail goes after
            # the last frame even when that one is empty. Not after a message with no
            # byte at all (RFC 7692 wants 0x00; some peers send nothing): there the
            # tail alone would leave the inflater inside a stored block, breaking the
            # next message. Appending copies the payload, cheaper than a zlib call.
            if data:
                self._in_empty = False
            if fin and not self._in_empty:
                data += _TAIL
            # max_length 0 means "no limit" to zlib; max_size + 1 detects overflow.
            try:
                out = inflater.decompress(data, 0 if max_size is None else max_size + 1)
            except zlib.error as exc:
                raise RemoteProtocolError(
                    f"invalid compressed data: {exc}", CloseCode.INVALID_FRAME_PAYLOAD_DATA
                ) from exc
            junk = inflater.unused_data
            if fin and junk == _TAIL:
                junk = b""  # the message ended with a BFINAL block; the tail is ours
        if max_size is not None and len(out) > max_size:
            raise PayloadTooBig(
                f"decompressed payload exceeds the {max_size} bytes left in the message"
            )
        if junk:
            raise RemoteProtocolError(
                "data after the final DEFLATE block", CloseCode.INVALID_FRAME_PAYLOAD_DATA
            )
        if fin and (self._reset_inflate or inflater.eof):
            # After BFINAL the peer must start a new stream, whatever was agreed.
            self._decompressor = None
        return out

    # -- outgoing ---------------------------------------------------------------

    def encode(self, frame: RawFrame) -> RawFrame:
        """Deflate an outgoing data frame if its message is to be compressed.

        The decision is made on the first frame of each message: compressed when its
        payload has at least ``threshold`` bytes. For a fragmented message only the
        first fragment is known then, so its size decides for the whole message.
        The first frame of a compressed message gets RSV1; control frames and
        frames of uncompressed messages are returned as is.

        Raises:
            LocalProtocolError: a continuation frame outside a message, or a new
                message before the previous one ended.
        """
        opcode = frame.opcode
        if opcode is Opcode.CONTINUATION:
            compressed = self._out_message
            if compressed is None:
                raise LocalProtocolError("continuation frame outside a message")
        elif opcode.is_control:
            return frame
        else:
            if self._out_message is not None:
                raise LocalProtocolError(f"{opcode.name} frame inside an unfinished message")
            compressed = len(frame.payload) >= self.threshold
        self._out_message = None if frame.fin else compressed
        if not compressed:
            return frame

        deflater = self._compressor
        if deflater is None:
            deflater = self._compressor = self._new_compressor()
        head = deflater.compress(frame.payload)
        if frame.fin:
            # The flush output always ends with the empty stored block 00 00 ff ff;
            # for an empty message what remains is the single 0x00 of section 7.2.3.6.
            tail = deflater.flush(self._end_flush)[:-4]
        else:
            tail = deflater.flush(zlib.Z_SYNC_FLUSH)
        payload = head + tail if head else tail
        first = opcode is not Opcode.CONTINUATION
        return RawFrame(opcode, payload, frame.fin, first, frame.rsv2, frame.rsv3)

    def _new_compressor(self) -> zlib._Compress:
        # 8 -> 9: see the module docstring (a 9-bit zlib deflater fits a 256-byte window).
        bits = max(self.agreement.client_max_window_bits, 9)
        return zlib.compressobj(self.compress_level, zlib.DEFLATED, -bits, self.mem_level)
