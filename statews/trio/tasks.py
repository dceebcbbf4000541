"""The I/O tasks of a connection: the reader, the writer, and what they share.

:class:`ConnectionTasks` is the half of :class:`~statews.connection.WebSocket` that runs
inside its tasks: ``_read_loop`` reads the socket in large chunks (64 KiB, growing to
1 MiB while reads come back full), feeds the core, routes what it returns to the inbox
(parsing no further ahead than the inbox has room for), and runs the end of the
connection (closing handshake, TCP end, close timeout); ``_write_loop`` writes whatever
the core has queued, coalesced into one ``send_all`` when small; ``_flush`` lets a
sender write directly with one non-blocking system call when the writer is idle.

Invariants: only these methods touch the socket after the upgrade; every lifecycle
change they make goes through ``self.lifecycle``; a frame is written whole or the
connection is aborted; every task ends when the connection reaches ``closed``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

import trio

from ..core.errors import close_code_for
from ..core.events import Binary, Close, Fragment, Frame, Pong, Text
from ..core.protocol import ClientProtocol
from ..lifecycle.machine import Lifecycle, StateName
from ..options.model import Options
from .closing import ClosingBuffer
from .transport import Transport
from .writer import Writer

if TYPE_CHECKING:
    from .streaming import MessageStream

__all__ = ["COALESCE_LIMIT", "MAX_RECEIVE_SIZE", "RECEIVE_SIZE", "ConnectionTasks", "summary"]

logger = logging.getLogger("statews.connection")

#: Read size. Large reads amortise trio's per-call cost; 64 KiB is one loopback burst.
RECEIVE_SIZE = 64 * 1024
#: Largest read size: reads grow from RECEIVE_SIZE while they come back full (a large
#: message is arriving), and fall back once one does not.
MAX_RECEIVE_SIZE = 1024 * 1024
#: At most this many buffers in one os.writev (POSIX guarantees 16; Linux allows 1024).
_IOV_MAX = 16
#: Queued chunks up to this total are joined into one write.
COALESCE_LIMIT = 256 * 1024


class ConnectionTasks:
    """Reader, writer and direct-write logic of a connection; the attributes below are
    set up by :class:`~statews.connection.WebSocket`."""

    options: Options
    lifecycle: Lifecycle
    _proto: ClientProtocol | None
    _transport: Transport | None
    _writer: Writer | None
    _error: BaseException | None
    _inbox: deque[Frame | Fragment]
    _pings: dict[bytes, tuple[float, trio.Event]]
    _has_message: trio.lowlevel.ParkingLot
    _has_room: trio.lowlevel.ParkingLot
    _reader_scope: trio.CancelScope
    _stream: MessageStream | None
    _discarding: bool
    _await_demand: bool
    _closing_buffer: ClosingBuffer | None

    @property
    def state(self) -> StateName:
        """``"idle"``, ``"upgrading"``, ``"connected"``, ``"closing"`` or ``"closed"``."""
        return self.lifecycle.state

    def _ingest(self, data: bytes | bytearray) -> None:
        """Feed the core and act on what it found, with no await in between: the
        lifecycle never lags behind the core (a Close parsed is a transition made)."""
        proto = self._proto
        assert proto is not None
        # While connected, parse no more messages than the inbox has room for: the rest
        # waits in the core as raw bytes (has_pending_input) until the application reads.
        room = None
        if self.state == "connected":
            room = max(1, self.options.max_queue - len(self._inbox))
        frames = proto.receive_data(data, max_messages=room)
        if proto.bytes_to_send:
            assert self._writer is not None
            self._writer.wake()
        if frames:
            if logger.isEnabledFor(logging.DEBUG):
                for frame in frames:
                    logger.debug("%s < %s", self.lifecycle.name, summary(frame))
            self._take_in(frames)
        if proto.close_received is not None:
            self._begin_closing()

    def _take_in(self, frames: list[Frame | Fragment]) -> None:
        """Route what the core parsed: messages and fragments to the inbox, pongs to ping
        waiters. While closing, data goes through the closing buffer's account first."""
        keep_control = self.options.control_frames
        inbox = self._inbox
        # Made on entering closing: while closing, data is kept only as far as it allows.
        closing = self._closing_buffer if self.state == "closing" else None
        for frame in frames:
            kind = type(frame)
            if kind is Text or kind is Binary:
                assert isinstance(frame, Text | Binary)
                if closing is not None and not closing.keep(frame.data, fin=True):
                    continue
                inbox.append(frame)
            elif kind is Fragment:
                assert isinstance(frame, Fragment)
                fin = frame.fin
                if fin:
                    self._await_demand = True
                if self._discarding or (
                    closing is not None and not closing.keep(frame.data, fin=fin)
                ):
                    self._discarding = not fin
                    continue
                inbox.append(frame)
            elif kind is not Close:
                if isinstance(frame, Pong) and self._pings:
                    self._acknowledge_pings(frame.data)
                if keep_control:
                    inbox.append(frame)
        if frames:
            self._has_message.unpark_all()

    def _acknowledge_pings(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        for key in list(self._pings):
            _, waiter = self._pings.pop(key)
            waiter.set()
            if key == payload:
                break

    def _reader_paused(self) -> bool:
        return self.state == "connected" and (
            len(self._inbox) >= self.options.max_queue or self._await_demand
        )

    def _fail(self, error: BaseException, reason: str) -> None:
        """Fail the connection: send a Close with the code that ``error`` maps to."""
        if self.state != "connected":
            return
        assert self._proto is not None
        self._error = error
        assert self._writer is not None
        self._proto.send(Close(close_code_for(error), reason))
        self.lifecycle.fire("failed")
        self._writer.wake()

    async def _read_loop(self) -> None:
        transport = self._transport
        proto = self._proto
        writer = self._writer
        assert transport is not None
        assert proto is not None
        assert writer is not None
        stream = transport.stream
        inbox = self._inbox
        limit = self.options.max_queue
        write_limit = self.options.write_limit
        size = RECEIVE_SIZE
        event = "connection_lost"
        try:
            with self._reader_scope:
                while True:
                    if proto.failure is not None and self.state == "connected":
                        if inbox:
                            # The messages before the violation are the application's
                            # first: its answers to them go out before our Close.
                            await self._has_room.park()
                            continue
                        self._begin_closing()
                    if self.state == "connected":
                        if len(inbox) >= limit or self._await_demand:
                            await self._has_room.park()
                            continue
                        if proto.bytes_to_send > write_limit:
                            # The peer does not read our pongs: stop reading its pings.
                            await writer.wait_progress()
                            continue
                    if proto.has_pending_input:
                        self._ingest(b"")  # what a full inbox left unparsed comes first
                        continue
                    data = await stream.receive_some(size)
                    writer.wrote_directly = False
                    if len(data) == size:
                        if size < MAX_RECEIVE_SIZE:
                            size *= 2
                    elif size > RECEIVE_SIZE:
                        size = RECEIVE_SIZE
                    if not data:
                        proto.receive_eof()
                        event = self._end_event()
                        break
                    self._ingest(data)
            if self._reader_scope.cancelled_caught:
                event = "close_timeout"
                self._error = self._error or TimeoutError(
                    f"closing handshake took longer than {self.options.close_timeout} s"
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._error = self._error or exc
            event = "connection_lost"
        except BaseException as exc:
            self._error = self._error or exc
            event = "aborted"
            raise
        finally:
            with trio.CancelScope(shield=True):
                await self._finish(event)

    def _begin_closing(self) -> None:
        """The core saw the peer's Close (and queued the echo) or a violation (then our
        Close reporting it is queued now)."""
        proto = self._proto
        assert proto is not None
        if proto.failure is not None:
            self._error = self._error or proto.failure
            proto.fail()
            assert self._writer is not None
            self._writer.wake()
        if self.state == "connected":
            self.lifecycle.fire("failed" if proto.failure is not None else "close_received")

    def _end_event(self) -> str:
        proto = self._proto
        assert proto is not None
        if proto.close_received is not None and proto.close_sent is not None:
            return "close_completed"
        return "connection_lost"

    async def _finish(self, event: str) -> None:
        """End the connection: let the writer flush (bounded), close TCP, fire ``event``."""
        if event in ("close_completed", "connection_lost") and self._writer is not None:
            with trio.move_on_after(self.options.close_timeout or 1.0):
                await self._writer.wait_flushed()
        if self._transport is not None:
            await trio.aclose_forcefully(self._transport.stream)
        if self.state != "closed":
            self.lifecycle.fire(event)


def summary(frame: Frame | Fragment) -> str:
    """One line for the frame log: kind, size, and the close code."""
    if isinstance(frame, Close):
        return f"CLOSE {frame.code} {frame.reason!r}" if frame.reason else f"CLOSE {frame.code}"
    data = frame.data
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if isinstance(frame, Fragment):
        return f"FRAGMENT {size} {'chars' if isinstance(data, str) else 'bytes'} fin={frame.fin}"
    return f"{type(frame).__name__.upper()} {size} bytes"
