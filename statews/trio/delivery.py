"""What active mode delivers to the owner's channel (hackney's ``{hackney_ws, ...}`` messages).

In active mode (``active=True`` or ``"once"``) a connection sends these to its owner,
a :class:`trio.MemorySendChannel`: every received message as :class:`Message`, then
exactly one end: :class:`Closed` after a closing handshake the peer took part in, or
:class:`Failed` when the connection broke or we failed it. Messages received before the
end are always delivered before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..core.errors import ConnectionClosed
from ..core.events import Fragment, Frame
from ..options.modes import Active, parse_active

if TYPE_CHECKING:
    from .connection import WebSocket
    from .inbox import Inbox

__all__ = ["Active", "Closed", "Deliverer", "Delivery", "Failed", "Message", "parse_active"]

# Active (a delivery mode) and parse_active, its one validator, live in the trio-free
# modes.py so that the options model can use them; they belong to this API too.


@dataclass(frozen=True, slots=True)
class Message:
    """A message (or, with ``control_frames=True``, a ping/pong) received on ``ws``."""

    ws: WebSocket
    frame: Frame


@dataclass(frozen=True, slots=True)
class Closed:
    """``ws`` closed after the peer's Close frame: ``code`` and ``reason`` are the peer's.

    ``dropped_messages``/``dropped_bytes``: data messages received while closing that
    went past ``closing_buffer_size`` and were discarded (0: nothing was lost).
    """

    ws: WebSocket
    code: int
    reason: str
    dropped_messages: int = 0
    dropped_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """``ws`` ended without the peer's Close; ``error`` says why (a ConnectionClosed)."""

    ws: WebSocket
    error: BaseException


#: Anything active mode puts in the owner's channel.
Delivery = Message | Closed | Failed
OwnerChannel = trio.MemorySendChannel[Delivery]


class Deliverer:
    """Moves messages from a connection's inbox to its owner in active mode.

    One delivery at a time: the frame leaves the inbox, then is sent to the owner. A
    change of owner or mode cancels a pending send (trio guarantees a cancelled send
    did not deliver), puts the frame back at the front of the inbox, and only then
    applies the change: so nothing is lost, duplicated or reordered, and ``"once"``
    switches to passive atomically with its one delivery.

    Without an owner channel, deliveries go to the connection's own mailbox (hackney's
    process mailbox), a memory channel of ``mailbox_size`` made on first use: most
    connections are passive and never need one.
    """

    __slots__ = (
        "_inbox",
        "_mailbox",
        "_mailbox_size",
        "_mode_changes",
        "_pending",
        "_settled",
        "_ws",
        "mode",
        "owner",
    )

    def __init__(
        self,
        ws: WebSocket,
        inbox: Inbox,
        owner: OwnerChannel | None,
        mode: Active,
        mailbox_size: int,
    ) -> None:
        self._ws = ws
        self._inbox = inbox
        #: Where deliveries go; None: to the mailbox.
        self.owner = owner
        self._mailbox_size = mailbox_size
        self._mailbox: trio.MemoryReceiveChannel[Delivery] | None = None
        self.mode: Active = mode
        self._mode_changes = 0
        self._pending: trio.CancelScope | None = None
        self._settled: trio.Event | None = None  # made by a change that must wait

    def mailbox(self) -> trio.MemoryReceiveChannel[Delivery] | None:
        """The mailbox's receiving side (made now if needed); None when deliveries go to
        an owner channel."""
        if self.owner is None:
            send, self._mailbox = trio.open_memory_channel[Delivery](self._mailbox_size)
            self.owner = send
        return self._mailbox

    def _end(self, closed: ConnectionClosed) -> Delivery:
        if closed.rcvd is None:
            return Failed(self._ws, closed)
        return Closed(
            self._ws,
            closed.rcvd.code,
            closed.rcvd.reason,
            dropped_messages=closed.dropped_messages,
            dropped_bytes=closed.dropped_bytes,
        )

    async def change(
        self, *, mode: Active | None = None, owner: OwnerChannel | None = None
    ) -> None:
        """Apply a new mode and/or owner between two deliveries.

        The change applies at once; a send in progress is cancelled and its frame put
        back first in the inbox before this returns, so a ``recv()`` right after
        ``change(mode=False)`` gets it.
        """
        if mode is not None:
            self.mode = mode
            self._mode_changes += 1
        if owner is not None:
            self.owner = owner
            self._mailbox = None
        pending = self._pending
        if pending is not None:
            self._settled = trio.Event()
            pending.cancel()
            await self._settled.wait()
        else:
            await trio.lowlevel.checkpoint()
        self._inbox.has_message.unpark_all()

    async def run(self, end: Callable[[], ConnectionClosed], closed: Callable[[], bool]) -> None:
        """Deliver until the end has been delivered: once ``closed()`` and the inbox is
        empty, ``end()`` says how it ended, delivered as :class:`Closed` (the peer's Close
        was received) or :class:`Failed`.

        Raises:
            trio.BrokenResourceError: the owner's receiving side is closed.
        """
        inbox = self._inbox.items
        while True:
            if self.mode is False:
                if closed():
                    return  # passive at the end: recv() reports it; setopts restarts us
                await self._inbox.has_message.park()
                continue
            if not (inbox or closed()):
                await self._inbox.has_message.park()
                continue
            frame = inbox.popleft() if inbox else None
            # Fragments are parsed only for a passive-mode stream, and dropped with it.
            assert not isinstance(frame, Fragment)
            item = Message(self._ws, frame) if frame is not None else self._end(end())
            mode, changes = self.mode, self._mode_changes
            if mode == "once":
                self.mode = False  # atomically with the one delivery
            owner = self.owner
            if owner is None:
                self.mailbox()
                owner = self.owner
                assert owner is not None
            scope = self._pending = trio.CancelScope()
            try:
                with scope:
                    await owner.send(item)
            finally:
                self._pending = None
                if scope.cancelled_caught:
                    if frame is not None:
                        inbox.appendleft(frame)
                    if changes == self._mode_changes:
                        self.mode = mode  # only the owner changed: "once" is still owed
                # A cancel can come too late to stop a send that already delivered;
                # either way the change waiting for us may now proceed.
                if self._settled is not None:
                    self._settled.set()
            if scope.cancelled_caught:
                continue
            if frame is None:
                return
            self._inbox.has_room.unpark_all()
