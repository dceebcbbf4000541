"""Application-side streams of one message: the chunks of ``send_stream`` and the pieces
``recv_stream`` hands out.

Invariants: a :class:`MessageStream` gives the pieces of exactly one message, in order;
once abandoned (left early, or another receive started) the rest of its message is
discarded by the connection and never reaches ``recv`` or the owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING

import trio

from ..core.errors import RecvTimeout, WebSocketError
from ..core.events import Binary, Fragment, Frame, Text

if TYPE_CHECKING:
    from .connection import WebSocket

__all__ = ["MessageStream", "aiter_chunks"]


async def aiter_chunks(
    chunks: Iterable[str | bytes] | AsyncIterable[str | bytes],
) -> AsyncIterator[str | bytes]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


class MessageStream:
    """One message received in pieces (see :meth:`WebSocket.recv_stream`): an async
    iterator of its chunks and an async context manager that discards the rest on exit."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        #: Whether the last piece was taken, or the stream abandoned.
        self.done = False
        #: Whether the stream was abandoned before the last piece (the rest is discarded).
        self.abandoned = False
        # Control frames met before the message's end, given back to the inbox at the end.
        self.held: list[Frame | Fragment] = []

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> str | bytes:
        """The next chunk; the iteration ends after the message's last piece.

        Raises: as the iteration of :meth:`WebSocket.recv_stream`.
        """
        if self.abandoned:
            raise WebSocketError("the rest of this message was discarded (stream abandoned)")
        if self.done:
            raise StopAsyncIteration
        ws = self._ws
        limit = ws.options.recv_timeout
        while True:
            if limit is None:
                frame = await ws._next_message(self)
            else:
                try:
                    with trio.fail_after(limit):
                        frame = await ws._next_message(self)
                except trio.TooSlowError:
                    raise RecvTimeout(f"no message within {limit} s") from None
            if isinstance(frame, _CHUNK_TYPES):
                if not isinstance(frame, Fragment) or frame.fin:
                    ws._end_stream(self)
                return frame.data
            self.held.append(frame)  # a control frame: recv() returns it afterwards

    async def aclose(self) -> None:
        """Stop taking the message: the rest of it is discarded."""
        if self._ws._stream is self:
            self._ws._abandon_stream()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MessageStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws._stream is self:
            self._ws._abandon_stream()


# isinstance() with a tuple is several times faster than with a union type.
_CHUNK_TYPES = (Fragment, Text, Binary)
