"""Strict, fail-fast UTF-8 decoding of text messages and close reasons (RFC 6455 section 8.1).

Invariants:

- Input is decoded as it arrives, fragment by fragment; nothing is decoded twice.
- An invalid sequence is reported in the fragment that makes it invalid, not at the end of the
  message: as soon as the bytes seen so far are no prefix of any valid UTF-8 text.
- Every failure is :class:`~statews.errors.RemoteProtocolError` with code 1007.

The work is done by CPython's strict incremental UTF-8 decoder, which already fails at the
first byte that cannot continue a valid sequence, with one exception kept on purpose for the
``surrogatepass`` error handler: a trailing ``ED A0..BF`` (the start of an encoded surrogate,
never valid UTF-8) is buffered instead of rejected. :class:`Utf8Decoder` closes that gap.
"""

from __future__ import annotations

import codecs

from .errors import CloseCode, RemoteProtocolError

__all__ = ["Utf8Decoder", "decode_utf8", "utf8_error"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


def utf8_error(exc: UnicodeDecodeError | None) -> RemoteProtocolError:
    """The 1007 error that reports ``exc`` (``None``: an encoded surrogate)."""
    detail = f": {exc.reason} at byte {exc.start}" if exc is not None else ": encoded surrogate"
    return RemoteProtocolError(f"invalid UTF-8{detail}", CloseCode.INVALID_FRAME_PAYLOAD_DATA)


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
    """Decodes one text message given in pieces; one instance per message."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def decode(self, data: bytes, *, final: bool) -> str:
        """Decode the next piece; ``final`` marks the last one (a truncated tail is then invalid).

        Returns the text completed by this piece; an incomplete trailing sequence is kept for
        the next call.

        Raises:
            RemoteProtocolError: code 1007, as soon as the bytes so far cannot be valid UTF-8.
        """
        decoder = self._decoder
        try:
            text: str = decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise utf8_error(exc) from exc
        if not final:
            pending: bytes = decoder.getstate()[0]
            # CPython waits for a third byte after ED A0..BF; no third byte can make it valid.
            if len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise utf8_error(None)
        return text
