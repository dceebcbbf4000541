"""The application's side of receiving: the next message whole (``recv``) or in pieces
(``recv_stream``), and the chunks ``send_stream`` sends.

A connection owns one :class:`Receiver` over its inbox. It holds the one open
:class:`MessageStream`, if any, and tells the sans-I/O core how the next message is
wanted: whole, or streamed (``proto.stream_next``). This is the streaming receive's
sub-state, not a lifecycle state: it exists only in ``connected``/``closing`` and no
operation's permission depends on it.

Invariants: a :class:`MessageStream` gives the pieces of exactly one message, in order;
once abandoned (left early, or another receive started) the rest of its message is
discarded (the inbox's ``discarding``) and never reaches ``recv`` or the owner.
Fragments in the inbox belong to the open stream; control frames met while it is open
go back to the inbox, in order, when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

import trio

from ..core.errors import ConnectionClosed, RecvTimeout, WebSocketError
from ..core.events import Binary, Fragment, Frame, Text
from ..core.protocol import ClientProtocol
from .inbox import Inbox

__all__ = ["MessageStream", "Receiver", "aiter_chunks"]


async def aiter_chunks(
    chunks: Iterable[str | bytes] | AsyncIterable[str | bytes],
) -> AsyncIterator[str | bytes]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


class Receiver:
    """Takes messages out of one connection's inbox for the application (passive mode)."""

    __slots__ = ("_closed_error", "_inbox", "_is_closed", "proto", "stream")

    def __init__(
        self,
        inbox: Inbox,
        is_closed: Callable[[], bool],
        closed_error: Callable[[], ConnectionClosed],
    ) -> None:
        self._inbox = inbox
        self._is_closed = is_closed
        self._closed_error = closed_error
        #: The core, once upgraded: it parses the next message whole or streamed.
        self.proto: ClientProtocol | None = None
        #: The message being taken in pieces; Fragments in the inbox are its.
        self.stream: MessageStream | None = None

    async def next_item(self, stream: MessageStream | None = None) -> Frame | Fragment:
        """The next item of the inbox (for ``stream``: a piece of its message, or a
        control frame), waiting for one; once closed and empty, the end.

        Raises:
            ConnectionClosed: closed, and every message was taken.
            WebSocketError: ``stream`` was abandoned meanwhile.
        """
        inbox = self._inbox
        items = inbox.items
        while True:
            if stream is not None and self.stream is not stream:
                raise WebSocketError("the rest of this message was discarded (stream abandoned)")
            if items:
                break
            if self._is_closed():
                await trio.lowlevel.checkpoint()
                raise self._closed_error()
            self.want(stream=stream is not None)
            await inbox.has_message.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        return inbox.pop()

    def want(self, *, stream: bool) -> None:
        """The application waits with an empty inbox: let a reader waiting for that go on,
        and have the next message parsed whole or in pieces (``stream``): the core streams
        the rest of one already arriving whole."""
        self._inbox.demand()
        proto = self.proto
        if proto is not None and not proto.streaming_message:
            proto.stream_next = stream

    def open_stream(self, recv_timeout: float | None) -> MessageStream:
        """A stream of the next message (abandoning the open one, if any)."""
        self.abandon()
        stream = self.stream = MessageStream(self, recv_timeout)
        return stream

    def abandon(self) -> None:
        """End the open stream, if any, before its message ended: its Fragments leave the
        inbox and the rest of its message will be dropped as it arrives."""
        stream = self.stream
        if stream is None:
            return
        ended = self._inbox.drop_fragments()
        proto = self.proto
        if not ended and proto is not None:
            self._inbox.discarding = proto.streaming_message
            proto.stream_next = False
        stream.abandoned = True
        self.end(stream)

    def end(self, stream: MessageStream) -> None:
        """``stream`` is over: give back the control frames it held."""
        self.stream = None
        stream.done = True
        if stream.held:  # control frames that came before whatever the inbox holds
            self._inbox.items.extendleft(reversed(stream.held))
            stream.held.clear()


class MessageStream:
    """One message received in pieces (see :meth:`WebSocket.recv_stream`): an async
    iterator of its chunks and an async context manager that discards the rest on exit."""

    def __init__(self, receiver: Receiver, recv_timeout: float | None) -> None:
        self._receiver = receiver
        self._timeout = recv_timeout
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
        receiver = self._receiver
        limit = self._timeout
        while True:
            if limit is None:
                frame = await receiver.next_item(self)
            else:
                try:
                    with trio.fail_after(limit):
                        frame = await receiver.next_item(self)
                except trio.TooSlowError:
                    raise RecvTimeout(f"no message within {limit} s") from None
            if isinstance(frame, _CHUNK_TYPES):
                if not isinstance(frame, Fragment) or frame.fin:
                    receiver.end(self)
                return frame.data
            self.held.append(frame)  # a control frame: recv() returns it afterwards

    async def aclose(self) -> None:
        """Stop taking the message: the rest of it is discarded."""
        if self._receiver.stream is self:
            self._receiver.abandon()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MessageStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._receiver.stream is self:
            self._receiver.abandon()


# isinstance() with a tuple is several times faster than with a union type.
_CHUNK_TYPES = (Fragment, Text, Binary)
