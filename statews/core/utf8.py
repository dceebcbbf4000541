"""Strict, fail-fast UTF-8 decoding of text messages and close reasons (RFC 6455 section 8.1).

Invariants:

- A text message given in pieces (:class:`Utf8Decoder`) is validated piece by piece: an invalid
  sequence is reported in the piece that makes it invalid, not at the end of the message, as
  soon as the bytes seen so far are no prefix of any valid UTF-8 text.
- Memory for a message in progress is at most about 1.5 times the bytes fed plus a constant,
  however small the pieces: beyond the first ``_SMALL_PARTS``, a small piece adds no object.
- A piece is decoded once, as it arrives, and kept as text while that is cheap: a piece of at
  least ``_DECODE_NOW`` bytes or one of the first ``_SMALL_PARTS``, whose text is at most 1.5
  times its bytes (plus a str header). From the first piece that is not, the rest of the
  message is kept as bytes (checked as they arrive) and decoded once more at the end.
- Every failure is :class:`~statews.core.errors.RemoteProtocolError` with code 1007.

The work is done by CPython's strict incremental UTF-8 decoder, which already fails at the
first byte that cannot continue a valid sequence, with one exception kept on purpose for the
``surrogatepass`` error handler: a trailing ``ED A0..BF`` (the start of an encoded surrogate,
never valid UTF-8) is buffered instead of rejected. :func:`decode_step`, the one incremental
step used by :class:`Utf8Decoder` and by streamed messages (:mod:`statews.core.assembly`), closes
that gap.
"""

from __future__ import annotations

import codecs

from .errors import CloseCode, RemoteProtocolError

__all__ = ["Utf8Decoder", "decode_step", "decode_utf8", "utf8_error"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")
_sizeof = str.__sizeof__  # sys.getsizeof without the indirection (same figure for a str)

#: Pieces of at least this many bytes are decoded as they arrive and kept as text.
_DECODE_NOW = 4096
#: So are the first pieces of a message, up to this many parts.
_SMALL_PARTS = 16
#: What a str may take beyond its characters (header, terminator) and still count as compact.
_STR_OVERHEAD = 80


def utf8_error(exc: UnicodeDecodeError | None) -> RemoteProtocolError:
    """The 1007 error that reports ``exc`` (``None``: an encoded surrogate)."""
    detail = f": {exc.reason} at byte {exc.start}" if exc is not None else ": encoded surrogate"
    return RemoteProtocolError(f"invalid UTF-8{detail}", CloseCode.INVALID_FRAME_PAYLOAD_DATA)


def decode_step(
    decoder: codecs.IncrementalDecoder, data: bytes | bytearray, final: bool
) -> tuple[str, bytes]:
    """Feed the next piece to a strict incremental UTF-8 ``decoder``; return the text it
    completes and the incomplete sequence that ends the bytes so far (empty when ``final``).

    The one place that closes CPython's gap (module docstring): a pending ``ED A0..BF`` is
    rejected here, so every caller fails fast on an encoded surrogate.

    Raises:
        RemoteProtocolError: code 1007, as soon as the bytes so far cannot be valid UTF-8.
    """
    try:
        text: str = decoder.decode(data, final)
    except UnicodeDecodeError as exc:
        raise utf8_error(exc) from exc
    if final:
        return text, b""
    pending: bytes = decoder.getstate()[0]
    # CPython waits for a third byte after ED A0..BF; no third byte makes it valid.
    if len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise utf8_error(None)
    return text, pending


def decode_utf8(data: bytes) -> str:
    """Decode a complete payload.

    Raises:
        RemoteProtocolError: code 1007, ``data`` is not valid UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise utf8_error(exc) from exc


class Utf8Decoder:
    """Validates and decodes one text message given in pieces; one instance per message.

    The text so far is ``"".join(self._parts)`` followed by ``self._raw`` decoded. ``_raw``
    starts at the beginning of a character; the incremental decoder has checked all of it and
    holds the incomplete sequence that ends it, if any.
    """

    __slots__ = ("_decoder", "_parts", "_pending", "_raw")

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")
        # The start of a sequence that the next piece must finish (the decoder holds it too).
        self._pending = b""
        self._parts: list[str] = []
        self._raw: bytearray | None = None

    def feed(self, data: bytes | bytearray, *, final: bool) -> None:
        """Take the next piece; ``final`` marks the last one (a truncated tail is then invalid).

        Raises:
            RemoteProtocolError: code 1007, as soon as the bytes so far cannot be valid UTF-8.
        """
        n = len(data)
        pending = self._pending
        raw = self._raw
        big = n >= _DECODE_NOW
        keep = raw is None and (big or len(self._parts) < _SMALL_PARTS)
        # ASCII is valid whatever follows and its text is as compact as its bytes. Looking for
        # it is cheaper than decoding, except for a big piece to keep: the decoder is as fast.
        if not pending and not (keep and big) and data.isascii():
            if keep:
                if n:
                    self._parts.append(data.decode("ascii"))
                return
        else:
            text, self._pending = decode_step(self._decoder, data, final)
            # Text much bigger than its bytes (ASCII widened by one astral character, say)
            # would break the memory bound: such a piece and the rest stay bytes.
            if keep and _sizeof(text) <= n + (n >> 1) + _STR_OVERHEAD:
                if text:
                    self._parts.append(text)
                return
        if not n:
            return
        if raw is None:
            # Starts with the incomplete sequence that the text kept so far left out.
            raw = self._raw = bytearray(pending)
        raw += data

    def split(self) -> tuple[str, bytes]:
        """The text so far without the incomplete character that may end it, and that
        character's first bytes (for a decoder that goes on); this decoder is then spent."""
        parts = self._parts
        raw = self._raw
        pending = self._pending
        if raw is not None:  # ends with the pending bytes; checked, so what precedes decodes
            parts.append(raw[: len(raw) - len(pending)].decode("utf-8"))
        return "".join(parts), pending

    def text(self) -> str:
        """The whole message, once its last piece was fed with ``final``."""
        parts = self._parts
        raw = self._raw
        if raw is not None:
            parts.append(raw.decode("utf-8"))  # checked piece by piece: cannot fail
            self._raw = None
        if len(parts) == 1:
            return parts[0]
        return "".join(parts)
