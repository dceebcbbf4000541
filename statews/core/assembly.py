"""Reassembling the data frames of one incoming message into a message, or streaming them as
fragments (RFC 6455 section 5.4); the only place in the core that joins message pieces.

:class:`Assembler` is driven by :class:`~statews.core.protocol.ClientProtocol`, which checks frame
headers and limits; this module sees payload bytes only and performs no I/O.

Invariants:

- A piece is a whole frame's payload or any part of one that arrived; an empty piece adds
  nothing (an empty final piece still ends the message).
- A message costs time linear in its size however many frames and reads it took, and memory
  at most about 1.5 times its size plus a constant however small the pieces: at most
  ``_SMALL_PARTS`` binary parts, and the last, hold fewer than ``_OWN_PART`` bytes.
- Text is validated as it arrives and fails (1007) in the piece that makes it invalid: whole
  messages through :class:`~statews.core.utf8.Utf8Decoder`, streamed ones through
  :func:`~statews.core.utf8.decode_step`, so both reject the same bytes at the same point.
- A streamed message keeps nothing: each piece becomes a
  :class:`~statews.core.events.Fragment` at once (text carrying a character split between pieces
  to the next one), and the message is forgotten after its final Fragment.
- ``opcode`` is 0 exactly when no message is in progress; :meth:`Assembler.reset` returns to
  that state from anywhere.
"""

from __future__ import annotations

import codecs

from .events import Binary, Fragment, Text
from .framing import Opcode
from .utf8 import Utf8Decoder, decode_step

__all__ = ["Assembler"]

_Utf8Stream = codecs.getincrementaldecoder("utf-8")

_TEXT = int(Opcode.TEXT)

#: A piece of a binary message this big, or among its first _SMALL_PARTS parts, is kept as it
#: is; others are copied into a bytearray (see :class:`Assembler`).
_OWN_PART = 4096
_SMALL_PARTS = 16


class Assembler:
    """Joins the pieces of one incoming data message; the only place that reassembles.

    A piece is a whole frame's payload or any part of one that arrived. A message costs time
    linear in its size however many frames and reads it took, and memory about its size
    however small the pieces; an empty piece adds nothing. Text goes to a
    :class:`~statews.core.utf8.Utf8Decoder` (validated as it arrives, fail-fast). A binary piece
    is kept as it is when big (``_OWN_PART`` bytes or more: no copy before the final join) or
    among the first ``_SMALL_PARTS`` parts (cheap for a message in a few frames); other pieces
    are copied into a bytearray, which takes pieces until it holds ``_OWN_PART`` bytes. So at
    most ``_SMALL_PARTS`` parts, and the last, hold fewer than ``_OWN_PART`` bytes.

    A streamed message keeps nothing: :meth:`fragment` turns each piece into a
    :class:`~statews.core.events.Fragment` (text through an incremental decoder that carries a
    sequence split between pieces to the next one).
    """

    __slots__ = ("_parts", "_stream", "_tail", "_text", "opcode", "size", "streamed", "transformed")

    def __init__(self) -> None:
        #: Opcode.TEXT or Opcode.BINARY of the message in progress; 0 when there is none.
        self.opcode = 0
        #: Payload bytes received so far in the message in progress (after extension decoding).
        self.size = 0
        #: Whether the extensions transform the message in progress (its frames come whole).
        self.transformed = False
        #: Whether the message in progress is returned in pieces (:meth:`fragment`).
        self.streamed = False
        self._text: Utf8Decoder | None = None
        # The decoder of a streamed text message.
        self._stream: codecs.IncrementalDecoder | None = None
        self._parts: list[bytes | bytearray] = []
        # The last part when it is a bytearray of ours that small pieces are appended to.
        self._tail: bytearray | None = None

    def start(self, opcode: int, transformed: bool, streamed: bool = False) -> None:
        """Begin a message of type ``opcode`` (Opcode.TEXT or Opcode.BINARY)."""
        self.opcode = opcode
        self.transformed = transformed
        if streamed:
            self.streamed = True
            if opcode == _TEXT:
                self._stream = _Utf8Stream("strict")
        elif opcode == _TEXT:
            self._text = Utf8Decoder()

    def stream_rest(self) -> Fragment | None:
        """Switch the message in progress to streaming: return what it holds so far as a
        Fragment (``None`` if nothing whole yet); the rest goes through :meth:`fragment`."""
        text = self._text
        data: str | bytes
        if text is not None:
            data, pending = text.split()
            self._text = None
            self._stream = _Utf8Stream("strict")
            self._stream.decode(pending, False)  # checked already: cannot fail
        else:
            parts = self._parts
            data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self._tail = None
        self.streamed = True
        return Fragment(data, False) if data else None

    def fragment(self, piece: bytes, final: bool) -> Fragment | None:
        """Turn the next piece of a streamed message into a Fragment (``None`` when it holds
        no whole character and is not ``final``); forget the message after the final one.

        Raises:
            RemoteProtocolError: code 1007, the text so far cannot be valid UTF-8.
        """
        self.size += len(piece)
        decoder = self._stream
        data: str | bytes = piece
        if decoder is not None:
            data = decode_step(decoder, piece, final)[0]
        if final:
            self.reset()
        elif not data:
            return None
        return Fragment(data, final)

    def add(self, piece: bytes, final: bool) -> Text | Binary | Fragment | None:
        """Take the next piece whatever the mode: return the Fragment it makes when the
        message is streamed, the whole message when ``final`` ends one that is not, else
        ``None`` (see :meth:`fragment`, :meth:`feed`, :meth:`finish`).

        Raises:
            RemoteProtocolError: code 1007, the text so far cannot be valid UTF-8.
        """
        if self.streamed:
            return self.fragment(piece, final)
        self.feed(piece, final)
        return self.finish() if final else None

    def feed(self, piece: bytes, final: bool) -> None:
        """Add the next piece of the message; ``final``: it holds the message's last byte.

        Raises:
            RemoteProtocolError: code 1007, the text so far cannot be valid UTF-8.
        """
        n = len(piece)
        text = self._text
        if text is not None:
            if n or final:
                text.feed(piece, final=final)
            self.size += n
            return
        if not n:
            return
        self.size += n
        parts = self._parts
        tail = self._tail
        if tail is None:
            if n >= _OWN_PART or len(parts) < _SMALL_PARTS:
                parts.append(piece)
            else:
                tail = self._tail = bytearray(piece)
                parts.append(tail)
        elif n < _OWN_PART or len(tail) < _OWN_PART:
            tail += piece
        else:
            parts.append(piece)
            self._tail = None

    def finish(self) -> Text | Binary:
        """Return the whole message (after the piece fed with ``final``) and forget it."""
        text = self._text
        if text is not None:
            self.reset()
            return Text(text.text())
        parts = self._parts
        # A single part that is bytes already is taken as it is (bytes() does not copy it).
        payload = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        self.reset()
        return Binary(payload)

    def reset(self) -> None:
        """Forget the message in progress."""
        self.opcode = 0
        self.size = 0
        self.transformed = False
        self.streamed = False
        self._text = None
        self._stream = None
        self._parts.clear()
        self._tail = None
