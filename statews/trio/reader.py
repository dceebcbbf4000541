"""The reader: socket -> core -> inbox, and the end of the connection as the socket sees it.

A connection owns one :class:`Reader` from the upgrade on; its :meth:`Reader.run` is the
connection's reader task. It reads the socket in large chunks (64 KiB, growing to
1 MiB while reads come back full), feeds the sans-I/O core, and puts what the core
parsed into the inbox, parsing no further ahead than the inbox has room for. It tells
the connection when the core saw the peer's Close or a violation (``peer_closing``)
and, when the socket ends, which lifecycle event that is (``finish``); the connection
sends the lifecycle events.

Invariants:

* Feeding the core and acting on what it found happen with no await in between, so
  the lifecycle never lags behind the core (a Close parsed is a transition made).
* While connected, reading stops while the inbox holds back (full, or waiting for the
  application's next receive call), and while our pongs back up past ``write_limit``
  behind a peer that does not read: TCP back-pressure does the rest.
* The messages before a violation are the application's first: our Close reporting it
  is queued only once the inbox is empty (the answers to them go out before it).
* Once closing, reading goes on whatever the inbox holds, until the socket ends or the
  close deadline (``close_timeout``, set on entering ``closing``) passes.
* :meth:`run` always ends by calling ``finish`` with the event that ended it, shielded:
  ``close_completed``, ``connection_lost``, ``close_timeout`` or ``aborted``.
* Over plain TCP/Unix the socket is read with ``os.read`` on its descriptor, with the
  checkpoints of trio's ``receive_some`` (a read that did not wait yields after it,
  uncancellably) and its errors (``BrokenResourceError``, ``ClosedResourceError``); the
  descriptor is asked of the socket at each read, so a closed socket's number, which
  may be reused, is never read. Through TLS or a given stream, ``receive_some``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable

import trio

from ..core.events import summary
from ..core.protocol import ClientProtocol
from ..lifecycle.machine import Lifecycle
from .inbox import Inbox
from .writer import Writer

__all__ = ["MAX_RECEIVE_SIZE", "RECEIVE_SIZE", "Reader"]

logger = logging.getLogger("statews.connection")

#: Read size. Large reads amortise trio's per-call cost; 64 KiB is one loopback burst.
RECEIVE_SIZE = 64 * 1024
#: Largest read size: reads grow from RECEIVE_SIZE while they come back full (a large
#: message is arriving), and fall back once one does not.
MAX_RECEIVE_SIZE = 1024 * 1024


class Reader:
    """The read side of one connection (see the module docstring)."""

    __slots__ = (
        "_finish",
        "_inbox",
        "_lifecycle",
        "_peer_closing",
        "_proto",
        "_record_error",
        "_socket",
        "_stream",
        "_writer",
        "close_timeout",
        "paused",
        "scope",
        "write_limit",
    )

    def __init__(  # noqa: PLR0917 - built in one place, by the connection
        self,
        proto: ClientProtocol,
        stream: trio.abc.Stream,
        inbox: Inbox,
        writer: Writer,
        lifecycle: Lifecycle,
        peer_closing: Callable[[], None],
        finish: Callable[[str], Awaitable[None]],
        record_error: Callable[[BaseException], None],
        socket: trio.socket.SocketType | None = None,
    ) -> None:
        self._proto = proto
        self._stream = stream
        # Plain TCP/Unix: the socket under ``stream``, read directly (module docstring).
        self._socket = socket
        self._inbox = inbox
        self._writer = writer
        self._lifecycle = lifecycle  # read only: the connection sends the events
        self._peer_closing = peer_closing
        self._finish = finish
        self._record_error = record_error
        self.write_limit = writer.write_limit
        #: ``close_timeout``, for the message of a closing handshake that timed out.
        self.close_timeout: float | None = None
        #: Its deadline is the close deadline; cancelled, the task ends with close_timeout.
        self.scope = trio.CancelScope()
        #: Seconds spent waiting for the application (a full inbox), in all.
        self.paused = 0.0

    def close_within(self, seconds: float | None) -> None:
        """Closing began: end the task ``seconds`` from now at the latest."""
        self.close_timeout = seconds
        if seconds is not None:
            self.scope.deadline = min(self.scope.deadline, trio.current_time() + seconds)

    def ingest(self, data: bytes | bytearray) -> None:
        """Feed ``data`` to the core and act on what it found (no await)."""
        proto = self._proto
        inbox = self._inbox
        # While connected, parse no more messages than the inbox has room for: the rest
        # waits in the core as raw bytes (has_pending_input) until the application reads.
        room = inbox.room() if self._lifecycle.state == "connected" else None
        frames = proto.receive_data(data, max_messages=room)
        if proto.bytes_to_send:
            self._writer.wake()
        if frames:
            if logger.isEnabledFor(logging.DEBUG):
                for frame in frames:
                    logger.debug("%s < %s", self._lifecycle.name, summary(frame))
            inbox.take_in(frames)
        if proto.close_received is not None:
            self._peer_closing()

    async def run(self) -> None:
        """The reader task."""
        proto = self._proto
        inbox = self._inbox
        writer = self._writer
        lifecycle = self._lifecycle
        stream = self._stream
        sock = self._socket
        write_limit = self.write_limit
        size = RECEIVE_SIZE
        waited = False  # the last attempt to read waited for the socket (a checkpoint)
        event = "connection_lost"
        try:
            with self.scope:
                while True:
                    connected = lifecycle.state == "connected"
                    if connected and proto.failure is not None:
                        if inbox.items:
                            await inbox.has_room.park()
                            continue
                        self._peer_closing()
                        continue
                    if connected:
                        if inbox.holds_back():
                            since = trio.current_time()
                            await inbox.has_room.park()
                            self.paused += trio.current_time() - since
                            continue
                        if proto.bytes_to_send > write_limit:
                            await writer.wait_progress()
                            continue
                    if proto.has_pending_input:
                        self.ingest(b"")  # what a full inbox left unparsed comes first
                        continue
                    data: bytes | bytearray | None
                    if sock is None:
                        data = await stream.receive_some(size)
                    else:
                        # receive_some costs ~20 calls a read, an attempt that fails with
                        # EAGAIN before each wait included: a fifth of a round trip's CPU.
                        if not waited:
                            await trio.lowlevel.checkpoint_if_cancelled()
                        data = _read(sock, size)
                        if data is None:
                            await trio.lowlevel.wait_readable(sock)
                            waited = True
                            continue
                        if not waited:
                            await trio.lowlevel.cancel_shielded_checkpoint()
                        waited = False
                    writer.wrote_directly = False
                    if len(data) == size:
                        if size < MAX_RECEIVE_SIZE:
                            size *= 2
                    elif size > RECEIVE_SIZE:
                        size = RECEIVE_SIZE
                    if not data:
                        proto.receive_eof()
                        both = proto.close_received is not None and proto.close_sent is not None
                        event = "close_completed" if both else "connection_lost"
                        break
                    self.ingest(data)
            if self.scope.cancelled_caught:
                event = "close_timeout"
                self._record_error(
                    TimeoutError(f"closing handshake took longer than {self.close_timeout} s")
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._record_error(exc)
            event = "connection_lost"
        except BaseException as exc:
            self._record_error(exc)
            event = "aborted"
            raise
        finally:
            with trio.CancelScope(shield=True):
                await self._finish(event)


def _read(sock: trio.socket.SocketType, size: int) -> bytes | None:
    """One non-blocking read of ``sock``: up to ``size`` bytes, ``b""`` at the end, None
    when nothing has arrived yet.

    Raises:
        trio.ClosedResourceError: the socket was closed (as ``receive_some`` raises).
        trio.BrokenResourceError: the connection broke (as ``receive_some`` raises).
    """
    fd = sock.fileno()  # -1 once closed (the writer's, on a broken write): never reused
    if fd < 0:
        raise trio.ClosedResourceError("this socket was already closed")
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise trio.ClosedResourceError("this socket was already closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
