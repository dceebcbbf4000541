"""The inbox: socket -> application, what the reader parsed waiting to be taken.

A connection owns one :class:`Inbox`. The reader puts in it what the core parsed
(:meth:`Inbox.take_in`); ``recv``, ``recv_stream`` and the active-mode deliverer take
from it (:meth:`Inbox.pop`). Its two wake-ups are the flow control between them: the
application waits on ``has_message``, the reader on ``has_room``.

Invariants:

* Order: items leave in the order the peer sent them (a frame put back by a cancelled
  delivery goes back to the front).
* Bounded: while connected, the reader parses no more messages than ``limit`` leaves
  room for (:meth:`room`) and stops reading while the inbox :meth:`holds_back`; once
  closing, what arrives is kept only as far as the closing buffer
  (:class:`~statews.trio.closing.ClosingBuffer`, made on entering ``closing``) allows,
  and the rest is counted there.
* Two receive-side sub-states, owned here because they decide what enters the inbox
  (they are not lifecycle states: the connection is ``connected`` or ``closing``
  throughout): ``discarding``, the rest of a message whose stream was abandoned is
  dropped as it arrives; ``await_demand``, a streamed message just ended and the reader
  waits for the application's next receive call, which says whether the next message
  is parsed whole or in pieces.
* Fragments in the inbox belong to the one open stream (``recv_stream``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from ..core.events import Binary, Close, Fragment, Frame, Pong, Text
from .closing import ClosingBuffer, payload_size

__all__ = ["Inbox"]


class Inbox:
    """Parsed frames waiting for the application (see the module docstring)."""

    __slots__ = (
        "await_demand",
        "closing",
        "discarding",
        "has_message",
        "has_room",
        "items",
        "keep_control",
        "limit",
        "messages_in",
        "on_frame",
        "on_pong",
        "payload_in",
    )

    def __init__(self, limit: int, *, keep_control: bool) -> None:
        #: Messages (and, for an open stream, Fragments; with ``keep_control``, pings
        #: and pongs) in arrival order.
        self.items: deque[Frame | Fragment] = deque()
        #: ``max_queue``: complete messages held before the reader stops reading.
        self.limit = limit
        #: Whether pings and pongs are kept for the application (``control_frames``).
        self.keep_control = keep_control
        #: Told of every pong's payload (the keepalive's acknowledgement), once connected.
        self.on_pong: Callable[[bytes], None] | None = None
        #: Told of every frame taken in (the listeners' ``on_frame_received``), if any.
        self.on_frame: Callable[[Frame | Fragment], None] | None = None
        #: Messages taken in (a streamed one once, at its last piece) and their payload bytes.
        self.messages_in = 0
        self.payload_in = 0
        #: The application waits here for an item.
        self.has_message = trio.lowlevel.ParkingLot()
        #: The reader waits here for room.
        self.has_room = trio.lowlevel.ParkingLot()
        #: While closing: the account of what may still be kept.
        self.closing: ClosingBuffer | None = None
        self.discarding = False
        self.await_demand = False

    def __len__(self) -> int:
        return len(self.items)

    def room(self) -> int:
        """How many more messages the reader may parse now (at least one, so that a
        control frame behind a full inbox is still seen)."""
        return max(1, self.limit - len(self.items))

    def holds_back(self) -> bool:
        """Whether the reader must wait before reading more (while connected)."""
        return len(self.items) >= self.limit or self.await_demand

    def take_in(self, frames: list[Frame | Fragment]) -> None:
        """Route what the core parsed: messages and fragments into the inbox, pongs to
        ``on_pong``; while closing, data only as far as the closing buffer allows."""
        items = self.items
        closing = self.closing
        on_pong = self.on_pong
        keep_control = self.keep_control
        if self.on_frame is not None:
            for frame in frames:
                self.on_frame(frame)
        for frame in frames:
            kind = type(frame)
            if kind is Text or kind is Binary:
                assert isinstance(frame, Text | Binary)
                self.messages_in += 1
                self.payload_in += payload_size(frame.data)
                if closing is not None and not closing.keep(frame.data, fin=True):
                    continue
                items.append(frame)
            elif kind is Fragment:
                assert isinstance(frame, Fragment)
                fin = frame.fin
                self.payload_in += payload_size(frame.data)
                if fin:
                    self.messages_in += 1
                    self.await_demand = True
                if self.discarding or (
                    closing is not None and not closing.keep(frame.data, fin=fin)
                ):
                    self.discarding = not fin
                    continue
                items.append(frame)
            elif kind is not Close:
                if kind is Pong and on_pong is not None:
                    assert isinstance(frame, Pong)
                    on_pong(frame.data)
                if keep_control:
                    items.append(frame)
        if frames:
            self.has_message.unpark_all()

    def pop(self) -> Frame | Fragment:
        """The first item; a reader held back by a full inbox may go on."""
        frame = self.items.popleft()
        if self.has_room:  # only a reader held back by a full inbox waits there
            self.has_room.unpark_all()
        return frame

    def demand(self) -> None:
        """The application waits with an empty inbox: a reader waiting for that goes on."""
        if self.await_demand:
            self.await_demand = False
            self.has_room.unpark_all()

    def drop_fragments(self) -> bool:
        """Remove the open stream's Fragments (an abandoned stream); return whether its
        last one was among them."""
        items = self.items
        ended = False
        if any(type(frame) is Fragment for frame in items):
            # The core stops after a streamed message: every Fragment queued is one stream's.
            kept = []
            for frame in items:
                if isinstance(frame, Fragment):
                    ended = frame.fin
                else:
                    kept.append(frame)
            items.clear()
            items.extend(kept)
            self.has_room.unpark_all()
        return ended

    def wake_all(self) -> None:
        """The connection's state changed: every waiter looks again."""
        self.has_message.unpark_all()
        self.has_room.unpark_all()
