"""The interface between the protocol core and a negotiated WebSocket extension.

RFC 6455 section 9: an extension may use the RSV bits and transform data frames.
The core calls :meth:`Extension.decode` on every incoming *data* frame, whole (first and
continuation frames, in order, never control frames), of each message an extension may
have transformed: one whose first frame has an RSV bit set, or every message when an
extension has ``rsv_mask == 0``. Frames of other messages never reach the extensions
(the core streams their payload). It calls :meth:`Extension.encode` on every outgoing
data frame, after it has checked the frame and before masking.
Extensions are applied in the order negotiated for encoding, reversed for decoding.
"""

from __future__ import annotations

from typing import Protocol

from .framing import RawFrame

__all__ = ["Extension"]


class Extension(Protocol):
    """A negotiated extension instance, private to one connection."""

    #: The registered extension name, e.g. ``"permessage-deflate"``.
    name: str
    #: Which RSV bits this extension may set, as a mask of 0b100 (RSV1), 0b010, 0b001.
    rsv_mask: int

    def decode(self, frame: RawFrame, *, max_size: int | None) -> RawFrame:
        """Undo the extension on an incoming data frame.

        ``max_size`` bounds the decoded payload of this frame (the room left in the
        message under ``max_message_size``; ``None`` for no limit). Must raise
        :class:`~statews.core.errors.PayloadTooBig` rather than produce more, and
        :class:`~statews.core.errors.RemoteProtocolError` for malformed input. The result
        must have its RSV bits cleared.
        """
        ...

    def encode(self, frame: RawFrame) -> RawFrame:
        """Apply the extension to an outgoing data frame."""
        ...
