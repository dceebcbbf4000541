"""Sans-I/O client side of an open WebSocket connection (RFC 6455 sections 5-7, after the upgrade).

:class:`ClientProtocol` turns received bytes into frames (:mod:`statews.core.events`) and frames to
send into bytes. It performs no I/O and imports no trio: the caller moves the bytes.

Invariants:

- Receiving never raises for the peer's mistakes. The first violation is recorded in
  ``failure`` (a :class:`RemoteProtocolError` carrying the close code: 1002, 1007 or 1009) and
  all later input is ignored. The Close reporting it is queued only by :meth:`fail`, which the
  caller invokes once the application has taken the messages parsed before the violation
  (until then data frames may still be sent, e.g. answers to those messages).
- Every header is checked as soon as it is complete, before its payload is waited for: the
  payload of a frame over ``max_frame_size``, or that would take a message over
  ``max_message_size``, is never buffered.
- The payload of a data frame that an extension does not transform is streamed into the
  message being assembled as it arrives: text is validated byte range by byte range and fails
  as soon as the bytes seen so far are invalid, even inside a frame. Only control frames and
  frames of messages an extension transforms are held until complete, so the receive buffer
  holds at most one incomplete header or one such frame (header plus at most
  ``max_frame_size`` bytes), plus the input that a call capped by ``max_messages`` left
  unparsed (``has_pending_input``).
- One :meth:`receive_data` call returns at most ``max_messages`` data messages or fragments:
  a driver bounds the messages it holds by its queue's room, whatever one read brings.
- A message that starts while ``stream_next`` is set is returned in pieces
  (:class:`~statews.core.events.Fragment`, one per piece that arrived, text decoded as it comes)
  and never held whole; set while a message is arriving, what it holds so far is its first
  piece. Parsing stops after its last piece, so the driver chooses how the next message is
  received before it is parsed. Limits and failures are as for whole
  messages; the pieces returned before a failure stay returned.
- Once a Close was received nothing more is parsed; once a Close was queued (by ``send``, as the
  echo of the peer's, or by :meth:`fail`) nothing more may be queued.
- A Ping is answered with a Pong and a Close with the echo Close automatically, in arrival
  order relative to the application's frames.
- Fragmented messages are joined in one place (:class:`~statews.core.assembly.Assembler`) in
  time linear in their size and memory at most about 1.5 times it plus a constant, however
  they are cut into frames and reads; an empty frame adds nothing. Text fails fast
  (:mod:`statews.core.utf8`).
- Extensions see every data frame of the messages they transform (first frame with an RSV
  bit set), whole; messages without RSV bits bypass them, unless an extension uses no RSV bit
  (then every data frame goes through the extensions, whole).
- Every frame we send is masked with a fresh key from :class:`~statews.core.masking.MaskKeys`.
- Without extensions no :class:`~statews.core.framing.RawFrame` is built per frame.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .assembly import Assembler
from .errors import (
    CloseCode,
    LocalProtocolError,
    OptionsError,
    PayloadTooBig,
    RemoteProtocolError,
    is_valid_wire_code,
)
from .events import MESSAGE_TYPES, Binary, Close, Fragment, Frame, Ping, Pong, Text
from .extensions import Extension
from .framing import (
    FIN,
    MASK_BIT,
    MAX_CONTROL_PAYLOAD,
    RSV_BITS,
    Opcode,
    RawFrame,
    client_frame,
    decode_close,
    encode_close,
    frame_header,
)
from .masking import BytesLike, MaskKeys, mask
from .utf8 import utf8_error

__all__ = ["ClientProtocol"]

_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from

#: What receive_data returns.
Received = Frame | Fragment

# Opcodes as plain ints for the hot paths (IntEnum members cost an attribute lookup each).
_CONTINUATION, _TEXT, _BINARY = int(Opcode.CONTINUATION), int(Opcode.TEXT), int(Opcode.BINARY)
_CLOSE, _PING, _PONG = int(Opcode.CLOSE), int(Opcode.PING), int(Opcode.PONG)

# isinstance() with a tuple is several times faster than with a union type.
_PINGS = (Ping, Pong)
_BYTES_LIKE = (bytes, bytearray, memoryview)

#: Frames whose payload is at most this many bytes are appended to one shared chunk of output;
#: larger frames become a chunk of their own (no copy into a shared buffer). (The writer's
#: COALESCE_LIMIT is another thing: how many queued bytes one socket write may join.)
_SHARED_CHUNK_LIMIT = 8192
#: Above this size a payload is cut out of the receive buffer through a memoryview (one copy).
_VIEW_COPY_FROM = 4096


def _take(buf: BytesLike, start: int, end: int) -> bytes:
    """``bytes(buf[start:end])`` with a single copy, for large payloads."""
    with memoryview(buf) as view:
        return view[start:end].tobytes()


def _encode_text(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"text is not encodable as UTF-8: {exc}", CloseCode.INVALID_FRAME_PAYLOAD_DATA
        ) from exc


def _check_option(name: str, value: int | None, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        message = f"{name} must be an int >= {minimum} or None, not {value!r}"
        raise OptionsError(message, option=name)


class ClientProtocol:
    """Sans-I/O client side of an open WebSocket connection (after the HTTP upgrade).

    ``max_frame_size`` and ``max_message_size`` bound what the peer may send (payload bytes;
    the message size is counted after extension decoding); ``None`` disables a limit.
    ``fragment_size`` splits outgoing messages into frames of at most that many payload bytes
    (before extension encoding); ``None`` sends each message as one frame. ``extensions`` are
    the negotiated extensions, in negotiation order.

    Raises:
        OptionsError: a limit is not ``None`` or an int >= 0; ``fragment_size`` is not
            ``None`` or an int >= 1.
    """

    __slots__ = (
        "_assembler",
        "_decode_all",
        "_decoders",
        "_expect",
        "_extensions",
        "_fragment_size",
        "_frame_fin",
        "_keys",
        "_max_frame",
        "_max_message",
        "_out",
        "_out_size",
        "_pending",
        "_recv_buffer",
        "_rsv_allowed",
        "_stream_opcode",
        "_unparsed",
        "bytes_received",
        "bytes_sent",
        "close_received",
        "close_sent",
        "eof_received",
        "failure",
        "frames_received",
        "frames_sent",
        "stream_next",
    )

    def __init__(
        self,
        *,
        max_frame_size: int | None = 16 * 2**20,
        max_message_size: int | None = 64 * 2**20,
        fragment_size: int | None = None,
        extensions: Sequence[Extension] = (),
    ) -> None:
        _check_option("max_frame_size", max_frame_size, 0)
        _check_option("max_message_size", max_message_size, 0)
        _check_option("fragment_size", fragment_size, 1)
        self._max_frame = max_frame_size
        self._max_message = max_message_size
        self._fragment_size = fragment_size
        self._extensions = tuple(extensions)
        self._decoders = self._extensions[::-1]
        # RSV bits (in their byte-0 position) that a negotiated extension may set.
        rsv = 0
        for ext in self._extensions:
            rsv |= (ext.rsv_mask & 0b111) << 4
        self._rsv_allowed = rsv
        # An extension without an RSV bit may transform any message without marking it.
        self._decode_all = any(not ext.rsv_mask & 0b111 for ext in self._extensions)

        self._recv_buffer = bytearray()
        # Whether the receive buffer holds bytes left unparsed by max_messages (not merely an
        # incomplete frame); implies a non-empty buffer, so the common path never touches it.
        self._unparsed = False
        self._assembler = Assembler()
        # What receive_data expects: 0 a frame header, n > 0 the last n payload bytes of the
        # data frame being streamed, -1 nothing (after a Close or a failure). One attribute
        # keeps the common case (0) to a single test per call.
        self._expect = 0
        # Whether the frame being streamed ends its message.
        self._frame_fin = False
        self._out: list[bytes | bytearray] = []
        self._out_size = 0
        self._pending = bytearray()
        self._keys = MaskKeys()
        # Opcode.TEXT/BINARY of the message being sent with send_fragment(); 0 when none.
        self._stream_opcode = 0

        #: The peer's protocol violation, once one was seen; later input is ignored.
        self.failure: RemoteProtocolError | None = None
        #: The peer's Close, once received; nothing after it is parsed.
        self.close_received: Close | None = None
        #: The Close we queued (sent by the application, echoed, or by :meth:`fail`).
        self.close_sent: Close | None = None
        #: Whether :meth:`receive_eof` was called.
        self.eof_received = False
        #: Counters, for statistics: frames parsed and queued, bytes fed and taken.
        self.frames_received = 0
        self.frames_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        #: Set it to receive the next message in pieces (Fragment events): the one arriving
        #: (what it holds so far is the first piece) or the next to start; cleared when
        #: taken into account. Parsing stops after the message's last piece.
        self.stream_next = False

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: BytesLike, max_messages: int | None = None) -> list[Received]:
        """Feed bytes from the peer; return the messages and control frames they complete, in order.

        Text/Binary are whole messages; Ping/Pong/Close are returned as they arrive. A Ping
        queues the matching Pong (unless we sent a Close). A Close queues the echo Close (same
        code, no reason; 1005 gives an empty body) unless we sent one, and sets
        ``close_received``; nothing after it is parsed. The payload of a data frame is taken
        into its message as it arrives, so text is validated (1007) within a frame that is not
        complete yet; frames of messages an extension transforms are decoded whole instead.

        A message that starts while ``stream_next`` is set comes as Fragment events instead,
        one per piece (a frame, or the part of one that arrived), each counted as a message;
        parsing stops after its final Fragment. Set while a message is arriving whole, what
        it holds so far comes first as one Fragment (not counted in ``max_messages``).

        ``max_messages`` caps the Text/Binary messages and Fragments returned (control frames
        are not counted): parsing stops right after that many, and what follows stays in the
        receive buffer, unparsed, with ``has_pending_input`` set; ``receive_data(b"", ...)``
        goes on from there. ``None`` parses all of the input.

        Never raises for the peer's errors: on a violation it returns the frames parsed before
        it, sets ``failure`` and ignores all later input; it queues no Close for it (that is
        :meth:`fail`'s job). Input after a Close or a failure is ignored.

        Raises:
            ValueError: ``max_messages`` is less than 1.
        """
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be >= 1 or None, not {max_messages!r}")
        self.bytes_received += len(data)
        expect = self._expect
        events: list[Received] = []
        if self.stream_next and self._assembler.opcode and expect >= 0:
            # Asked for pieces while a message is arriving whole: the rest of it is streamed.
            self.stream_next = False
            # Not counted in max_messages: it holds no more than was held already.
            first = self._assembler.stream_rest()
            if first is not None:
                events.append(first)
        if expect:
            if expect < 0:
                return events
            # The middle of a streamed frame: the receive buffer is empty.
            try:
                taken = self._continue_frame(data, expect, events)
            except RemoteProtocolError as exc:
                self._fail(exc)
                return events
            if taken == len(data):
                return events
            data = memoryview(data)[taken:]
            if events:  # the frame ended a message, or gave a piece of a streamed one
                last = events[-1]
                if max_messages:
                    max_messages -= 1
                if max_messages == 0 or (type(last) is Fragment and last.fin):
                    self._recv_buffer += data
                    self._unparsed = True
                    return events
        buf = self._recv_buffer
        src: bytes | bytearray
        if buf:
            buf += data
            src = buf
            self._unparsed = False
        elif type(data) is bytes:
            src = data
        else:
            src = bytes(data)
        try:
            pos = self._parse(src, events, max_messages)
        except RemoteProtocolError as exc:
            self._fail(exc)
            return events
        if pos < 0:  # a Close ended the parsing: the rest is never looked at
            buf.clear()
        elif src is buf:
            del buf[:pos]  # O(1) in CPython: the bytearray's start moves
        elif pos < len(src):
            buf += memoryview(src)[pos:]
        return events

    @property
    def receiving_message(self) -> bool:
        """Whether a data message has started arriving and has not ended."""
        return self._assembler.opcode != 0

    @property
    def streaming_message(self) -> bool:
        """Whether the message arriving is returned in pieces (see ``stream_next``)."""
        return self._assembler.streamed

    @property
    def has_pending_input(self) -> bool:
        """Whether the last :meth:`receive_data` stopped at ``max_messages`` with input left
        unparsed: call ``receive_data(b"", ...)`` before feeding more, it may return frames."""
        return self._unparsed

    def receive_eof(self) -> None:
        """The peer closed its side of TCP; records ``eof_received``."""
        self.eof_received = True

    def fail(self) -> None:
        """Queue the Close reporting ``failure`` (code ``failure.code``, or 1002 if that code
        may not be sent); no-op if a Close was already queued or there is no failure.

        Call it once the application has taken the messages parsed before the violation.
        """
        failure = self.failure
        if failure is None or self.close_sent is not None:
            return
        # An extension could report a code that may not be sent; 1002 stands in for it.
        code = failure.code
        if not is_valid_wire_code(code):
            code = int(CloseCode.PROTOCOL_ERROR)
        self._queue_close(Close(code))

    def _continue_frame(self, data: BytesLike, left: int, events: list[Received]) -> int:
        """Stream the start of ``data`` into the frame in progress, which lacks ``left`` bytes;
        return how many bytes that took (at most ``left``).

        Raises:
            RemoteProtocolError: code 1007, from the text validation.
        """
        n = len(data)
        assembler = self._assembler
        if n < left:
            self._expect = left - n
            event = assembler.add(data if type(data) is bytes else bytes(data), False)
            if event is not None:
                events.append(event)
            return n
        self._expect = 0
        piece = data if n == left and type(data) is bytes else _take(data, 0, left)
        event = assembler.add(piece, self._frame_fin)
        if event is not None:
            events.append(event)
        return left

    def _parse(self, src: bytes | bytearray, events: list[Received], budget: int | None) -> int:
        """Parse the frames at the start of ``src``; return how many bytes were consumed,
        or -1 when a Close was received (what follows it is not parsed).

        Complete frames are consumed; so is an incomplete data frame that is streamed (its
        header and the payload so far go to the assembler, ``_expect`` counts the rest).
        With a ``budget``, parsing stops after that many data messages or Fragments, and
        always after a streamed message's last Fragment (``_unparsed`` is set when bytes are
        left).

        Raises:
            RemoteProtocolError: the first violation found; ``events`` holds what came before.
        """
        n = len(src)
        pos = 0
        max_frame = self._max_frame
        max_message = self._max_message
        rsv_allowed = self._rsv_allowed
        decode_all = self._decode_all
        assembler = self._assembler
        is_bytes = type(src) is bytes
        stream = self.stream_next
        while n - pos >= 2:
            b0 = src[pos]
            b1 = src[pos + 1]
            if b1 & MASK_BIT:
                raise RemoteProtocolError("the server sent a masked frame")
            length = b1 & 0x7F
            start = pos + 2
            if length >= 126:
                if length == 126:
                    if n - pos < 4:
                        break
                    (length,) = _unpack_16(src, start)
                    if length < 126:
                        raise RemoteProtocolError(f"length {length} in the 16-bit encoding")
                    start += 2
                else:
                    if n - pos < 10:
                        break
                    (length,) = _unpack_64(src, start)
                    if length >> 63:
                        raise RemoteProtocolError("the 64-bit payload length has its MSB set")
                    if length < 65536:
                        raise RemoteProtocolError(f"length {length} in the 64-bit encoding")
                    start += 8
            opcode = b0 & 0x0F
            fin = b0 & FIN
            rsv = b0 & RSV_BITS
            if opcode >= _CLOSE:
                if opcode > _PONG:
                    raise RemoteProtocolError(f"reserved opcode {opcode:#x}")
                if not fin:
                    raise RemoteProtocolError("fragmented control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    raise RemoteProtocolError(f"control frame with a {length}-byte payload")
                if rsv:
                    raise RemoteProtocolError("RSV bits set on a control frame")
                transformed = False
            elif opcode == _CONTINUATION:
                if not assembler.opcode:
                    raise RemoteProtocolError("continuation frame without a message to continue")
                if rsv:
                    raise RemoteProtocolError("RSV bits set on a continuation frame")
                transformed = assembler.transformed
            elif opcode <= _BINARY:
                if assembler.opcode:
                    raise RemoteProtocolError("new data message before the previous one ended")
                if rsv & ~rsv_allowed:
                    raise RemoteProtocolError(f"RSV bits {rsv >> 4:#05b} set without an extension")
                transformed = rsv != 0 or decode_all
            else:
                raise RemoteProtocolError(f"reserved opcode {opcode:#x}")
            if max_frame is not None and length > max_frame:
                raise PayloadTooBig(f"frame of {length} bytes exceeds max_frame_size {max_frame}")
            # The size of a transformed message is known after decoding only; checked there.
            if (
                max_message is not None
                and opcode < _CLOSE
                and not transformed
                and assembler.size + length > max_message
            ):
                raise PayloadTooBig(f"message exceeds max_message_size {max_message}")
            end = start + length
            if end > n:
                if opcode >= _CLOSE or transformed:
                    break  # decoded whole: wait for the rest in the receive buffer
                # Stream the payload: validated now, never buffered or looked at again.
                if opcode:
                    assembler.start(opcode, False, stream)
                    self.stream_next = False
                if n > start:
                    piece = bytes(src[start:n]) if is_bytes else _take(src, start, n)
                    event = assembler.add(piece, False)
                    if event is not None:
                        events.append(event)
                self._expect = end - n
                self._frame_fin = bool(fin)
                self.frames_received += 1
                return n
            if is_bytes or length <= _VIEW_COPY_FROM:
                payload = bytes(src[start:end])
            else:
                payload = _take(src, start, end)
            pos = end
            self.frames_received += 1
            if opcode >= _CLOSE:
                if self._control(opcode, payload, events):
                    return -1
                continue
            if transformed:
                payload = self._decode_extensions(opcode, payload, fin, rsv)
            if fin and opcode and not stream:
                # A whole message in one frame: nothing to reassemble.
                if opcode == _TEXT:
                    # decode_utf8() inlined: a call per message costs ~6% on small text frames.
                    try:
                        events.append(Text(payload.decode("utf-8")))
                    except UnicodeDecodeError as exc:
                        raise utf8_error(exc) from exc
                else:
                    events.append(Binary(payload))
            else:
                if opcode:
                    assembler.start(opcode, transformed, stream)
                    stream = self.stream_next = False
                if assembler.streamed:
                    fragment = assembler.fragment(payload, bool(fin))
                    if fragment is None:
                        continue
                    events.append(fragment)
                    if fin:  # the next message's mode is the driver's choice: stop here
                        self._unparsed = pos < n
                        break
                else:
                    assembler.feed(payload, bool(fin))
                    if not fin:
                        continue
                    events.append(assembler.finish())
            if budget:
                budget -= 1
                if not budget:
                    self._unparsed = pos < n
                    break
        return pos

    def _control(self, opcode: int, payload: bytes, events: list[Received]) -> bool:
        """Handle a received control frame; return True when it was the Close (stop parsing)."""
        if opcode == _PING:
            events.append(Ping(payload))
            if self.close_sent is None:
                self._queue_frame(_PONG, payload)
            return False
        if opcode == _PONG:
            events.append(Pong(payload))
            return False
        close = decode_close(payload)
        self.close_received = close
        self._expect = -1
        events.append(close)
        if self.close_sent is None:
            self._queue_close(Close(close.code))
        return True

    def _decode_extensions(self, opcode: int, payload: bytes, fin: int, rsv: int) -> bytes:
        """Undo the extensions on a data frame and check the message limit on the result.

        Raises:
            RemoteProtocolError: from an extension; PayloadTooBig when the decoded message
                exceeds ``max_message_size``.
        """
        frame = RawFrame(
            Opcode(opcode), payload, bool(fin), bool(rsv & 0x40), bool(rsv & 0x20), bool(rsv & 0x10)
        )
        limit = self._max_message
        room = None if limit is None else limit - self._assembler.size
        for ext in self._decoders:
            frame = ext.decode(frame, max_size=room)
        if room is not None and len(frame.payload) > room:
            raise PayloadTooBig(f"message exceeds max_message_size {limit}")
        return frame.payload

    def _fail(self, exc: RemoteProtocolError) -> None:
        """Record the peer's violation; all later input is ignored (see :meth:`fail`)."""
        self.failure = exc
        self._recv_buffer.clear()
        self._unparsed = False
        self._assembler.reset()
        self._expect = -1

    # ------------------------------------------------------------------ sending

    def send(self, frame: Frame) -> None:
        """Queue a whole Text/Binary message or a control frame.

        A message is split into frames of ``fragment_size`` payload bytes when that is set.
        Sending a Close sets ``close_sent``; ``Close(1005)`` sends an empty Close body.

        Raises:
            LocalProtocolError: a Close was already queued (a second Close included); a control
                payload over 125 bytes; a close code that may not be sent or a reason over 123
                bytes; text that is not encodable; a data message while a message streamed
                with :meth:`send_fragment` is unfinished.
            TypeError: ``frame`` is not one of the frame classes.
        """
        if self.close_sent is not None:
            raise LocalProtocolError("a Close was already sent; no frame may follow it")
        if isinstance(frame, MESSAGE_TYPES):
            if self._stream_opcode:
                raise LocalProtocolError("a fragmented message is unfinished (send_fragment)")
            if isinstance(frame, Text):
                opcode, payload = _TEXT, _encode_text(frame.data)
            else:
                opcode, payload = _BINARY, frame.data
            size = self._fragment_size
            if size is None or len(payload) <= size:
                self._queue_data(opcode, payload, True)
                return
            view = memoryview(payload)
            last = len(payload) - size
            for offset in range(0, len(payload), size):
                self._queue_data(
                    opcode if offset == 0 else _CONTINUATION,
                    view[offset : offset + size],
                    offset >= last,
                )
        elif isinstance(frame, _PINGS):
            data = frame.data
            if len(data) > MAX_CONTROL_PAYLOAD:
                raise LocalProtocolError(
                    f"control frame payload of {len(data)} bytes, more than {MAX_CONTROL_PAYLOAD}"
                )
            self._queue_frame(_PING if isinstance(frame, Ping) else _PONG, data)
        elif isinstance(frame, Close):
            self._queue_close(frame)
        else:
            raise TypeError(f"not a frame: {frame!r}")

    def send_fragment(self, data: str | bytes, *, fin: bool) -> None:
        """Queue one fragment (one frame) of a streamed message.

        The first fragment's type sets the message type (``str``: text, ``bytes``: binary);
        ``fin=True`` ends the message. Control frames may be sent between fragments.
        ``fragment_size`` does not apply: each call is one frame.

        Raises:
            LocalProtocolError: a Close was already queued; the type differs from the first
                fragment's; text that is not encodable.
            TypeError: ``data`` is neither ``str`` nor bytes-like.
        """
        if self.close_sent is not None:
            raise LocalProtocolError("a Close was already sent; no frame may follow it")
        payload: BytesLike
        if isinstance(data, str):
            opcode, payload = _TEXT, _encode_text(data)
        elif isinstance(data, _BYTES_LIKE):
            opcode, payload = _BINARY, data
        else:
            raise TypeError(f"a fragment is str or bytes, not {type(data).__name__}")
        current = self._stream_opcode
        if current and current != opcode:
            raise LocalProtocolError(
                "all fragments of a message must have its type (str for text, bytes for binary)"
            )
        self._queue_data(_CONTINUATION if current else opcode, payload, fin)
        self._stream_opcode = 0 if fin else opcode

    def data_to_send(self) -> list[bytes | bytearray]:
        """Take every queued chunk, in order; the queue is left empty.

        Small frames share one chunk; a large frame is a chunk of its own, header included.
        """
        out = self._out
        self.bytes_sent += self._out_size + len(self._pending)
        if self._pending:
            out.append(bytes(self._pending))
            self._pending.clear()
        self._out = []
        self._out_size = 0
        return out

    @property
    def message_in_progress(self) -> bool:
        """Whether a message streamed with :meth:`send_fragment` is unfinished."""
        return self._stream_opcode != 0

    @property
    def bytes_to_send(self) -> int:
        """Number of bytes queued and not yet taken by :meth:`data_to_send` (for back-pressure)."""
        return self._out_size + len(self._pending)

    def _queue_close(self, close: Close) -> None:
        """Queue ``close`` and record it as ``close_sent``.

        Raises:
            LocalProtocolError: from :func:`~statews.core.framing.encode_close`.
        """
        payload = encode_close(close)
        self._queue_frame(_CLOSE, payload)
        self.close_sent = close

    def _queue_data(self, opcode: int, payload: BytesLike, fin: bool) -> None:
        """Queue one data frame, through the extensions when there are any."""
        if not self._extensions:
            self._queue_frame(opcode, payload, fin)
            return
        frame = RawFrame(Opcode(opcode), bytes(payload), fin)
        for ext in self._extensions:
            frame = ext.encode(frame)
        rsv = (frame.rsv1 << 2) | (frame.rsv2 << 1) | frame.rsv3
        self._queue_frame(frame.opcode, frame.payload, frame.fin, rsv)

    def _queue_frame(self, opcode: int, payload: BytesLike, fin: bool = True, rsv: int = 0) -> None:
        """Mask and queue one frame with a fresh key."""
        self.frames_sent += 1
        key = self._keys.next()
        if len(payload) <= _SHARED_CHUNK_LIMIT:
            self._pending += client_frame(opcode, payload, key, fin=fin, rsv=rsv)
            return
        # The header closes the shared chunk; the masked payload is a chunk of its own,
        # never copied behind its header (for 16 MiB that copy cost as much as masking).
        self._pending += frame_header(opcode, len(payload), key, fin=fin, rsv=rsv)
        self._out.append(bytes(self._pending))
        self._out_size += len(self._pending)
        self._pending.clear()
        body = mask(payload, key)
        self._out.append(body)
        self._out_size += len(body)
