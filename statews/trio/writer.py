"""The writer: application -> core -> socket, with back-pressure.

A connection owns one :class:`Writer` from the upgrade on. Senders queue frames in the
sans-I/O core (:class:`~statews.core.protocol.ClientProtocol`), then call :meth:`Writer.flush`:
when the writer task is idle and the socket is a plain TCP/Unix one, the bytes go out in
one non-blocking ``os.write``/``os.writev`` (no task switch per send); otherwise, and for
what a direct write could not take, the writer task (:meth:`Writer.run`) sends what the
core has queued, small chunks coalesced into one ``send_all``. The task is started on
first need (TLS, a full socket, a burst): a connection that only exchanges requests and
answers over plain TCP never has one (a parked task costs ~2 KB and a start per connect).

Invariants:

* Only this object writes to the socket after the upgrade, and the bytes leave in the
  order the core queued them: a backlog left by a direct write goes before anything
  queued after it, and a direct write is made only when nothing is in flight.
* A frame is written whole or the connection is aborted (a failed write closes the
  stream and is reported through ``on_broken``; the reader then sees the end).
* :meth:`wait_room` holds senders while ``write_limit`` bytes or more wait to be
  written; it never holds a Close (closing must work against a peer that stopped
  reading).
* The task is started at most once, never after the connection is closed; once started
  it runs until the connection is closed or the socket breaks.
* One direct write per burst: after one, later sends go through the writer task (which
  coalesces them) until the reader receives or the writer parks again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import trio

from ..core.protocol import ClientProtocol

__all__ = ["COALESCE_LIMIT", "Writer"]

#: At most this many buffers in one os.writev (POSIX guarantees 16; Linux allows 1024).
_IOV_MAX = 16
#: Queued chunks up to this total are joined into one socket write.
COALESCE_LIMIT = 256 * 1024


class Writer:
    """The write side of one connection (see the module docstring)."""

    __slots__ = (
        "_backlog",
        "_backlog_size",
        "_closed",
        "_has_output",
        "_message_sent",
        "_nursery",
        "_on_broken",
        "_proto",
        "_room",
        "_socket",
        "_stream",
        "_writing",
        "ended",
        "write_limit",
        "wrote_directly",
    )

    def __init__(  # noqa: PLR0917 - built in one place, by the connection
        self,
        proto: ClientProtocol,
        nursery: trio.Nursery,
        stream: trio.abc.Stream,
        socket: trio.socket.SocketType | None,
        write_limit: int,
        closed: Callable[[], bool],
        on_broken: Callable[[BaseException], None],
    ) -> None:
        self._proto = proto
        self._nursery = nursery  # the connection's: where the task runs once needed
        self._stream = stream
        # The socket for direct writes (plain TCP/Unix); None (TLS): always the task.
        self._socket = socket
        self.write_limit = write_limit
        self._closed = closed
        self._on_broken = on_broken
        # The task waits there for bytes; made when the task starts (None: no task).
        self._has_output: trio.lowlevel.ParkingLot | None = None
        self._room = trio.lowlevel.ParkingLot()  # senders wait for room
        # Woken when a streamed message's last fragment was queued (keepalive waits).
        self._message_sent: trio.lowlevel.ParkingLot | None = None
        #: Whether the writer task has ended.
        self.ended = False
        self._writing = False  # the task holds chunks taken from the core
        # What a direct write could not write at once; the task sends it first.
        self._backlog: list[memoryview] | None = None
        self._backlog_size = 0
        #: A direct write was made since the reader last received or the task last
        #: parked: later sends of the same burst go to the task, which coalesces them.
        self.wrote_directly = False

    @property
    def busy(self) -> bool:
        """Whether bytes are queued or being written."""
        return bool(self._proto.bytes_to_send) or self._writing or self._backlog is not None

    def wake(self) -> None:
        """The core has bytes queued (or the connection's state changed): let the task
        look, or without a task write them (:meth:`flush`)."""
        if self._has_output is not None:
            self._has_output.unpark_all()
        else:
            self.flush()

    def _need_task(self) -> None:
        has_output = self._has_output
        if has_output is not None:
            if has_output:  # an empty lot's unpark_all costs ~7 calls; once per send in a burst
                has_output.unpark_all()
        elif not self._closed():
            self._has_output = trio.lowlevel.ParkingLot()
            self._nursery.start_soon(self.run)

    def wake_all(self) -> None:
        """The connection ended: release the task and every waiting sender."""
        if self._has_output is not None:
            self._has_output.unpark_all()
        self._room.unpark_all()

    def flush(self) -> None:
        """Write what the core queued now if the task is idle and the socket takes it
        (one system call, no task switch); else wake the task. Never blocks, never
        awaits: a frame is still queued whole or not at all."""
        # The descriptor is asked of the socket each time: once the socket is closed it
        # is -1, where a number kept from the upgrade could name a reused descriptor.
        fd = self._socket.fileno() if self._socket is not None else -1
        if fd >= 0 and not self.wrote_directly and not self._writing and self._backlog is None:
            self.wrote_directly = True
            chunks = self._proto.data_to_send()
            if not chunks:
                return
            try:
                if len(chunks) == 1:
                    written = os.write(fd, chunks[0])
                else:  # one system call, no join (a large frame is header + payload)
                    written = os.writev(fd, chunks[:_IOV_MAX])
            except OSError:  # BlockingIOError: full; others: the task meets them again
                written = 0
            left: list[memoryview] = []
            for chunk in chunks:
                if written >= len(chunk):
                    written -= len(chunk)
                    continue
                left.append(memoryview(chunk)[written:])
                written = 0
            if not left:
                return
            self._backlog = left
            self._backlog_size = sum(map(len, left))
        self._need_task()

    async def wait_room(self) -> None:
        """Wait while ``write_limit`` bytes or more are queued (back-pressure on
        senders); return at once when the connection is closed (the sender's own state
        check reports it)."""
        proto = self._proto
        while proto.bytes_to_send + self._backlog_size >= self.write_limit:
            if self._closed():
                return
            await self._room.park()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def wait_flushed(self) -> None:
        """Wait until everything queued was written or the task ended (the caller bounds
        the wait)."""
        while self.busy and not self.ended:
            self._need_task()
            await self._room.park()

    async def wait_between_messages(self) -> None:
        """Wait, if a streamed message (``send_stream``) is going out, until its last
        fragment was queued (the keepalive pings between messages)."""
        while self._proto.message_in_progress:
            if self._message_sent is None:
                self._message_sent = trio.lowlevel.ParkingLot()
            await self._message_sent.park()

    def message_done(self) -> None:
        """A streamed message's last fragment was queued."""
        if self._message_sent is not None:
            self._message_sent.unpark_all()

    async def wait_progress(self) -> None:
        """Wait until the task wrote something or ended (the reader, holding back while
        our pongs back up behind a peer that does not read, then looks again)."""
        await self._room.park()

    async def run(self) -> None:
        """The writer task: send what is queued until the connection is closed."""
        proto = self._proto
        stream = self._stream
        has_output = self._has_output
        assert has_output is not None  # made by _need_task, which starts this
        try:
            while not self._closed():
                backlog = self._backlog
                if backlog is not None:
                    self._writing = True
                    for part in backlog:
                        await stream.send_all(part)
                    self._backlog = None
                    self._backlog_size = 0
                    self._writing = False
                chunks = proto.data_to_send()
                if not chunks:
                    self._room.unpark_all()
                    self.wrote_directly = False
                    await has_output.park()
                    continue
                self._writing = True
                for chunk in _coalesce(chunks):
                    await stream.send_all(chunk)
                self._writing = False
                self._room.unpark_all()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if not self._closed():
                self._on_broken(exc)
                await trio.aclose_forcefully(stream)
        finally:
            self.ended = True
            self._room.unpark_all()


def _coalesce(chunks: list[bytes | bytearray]) -> Iterable[bytes | bytearray]:
    if len(chunks) == 1:
        return chunks
    total = sum(map(len, chunks))
    if total <= COALESCE_LIMIT:
        return (b"".join(chunks),)
    return chunks
