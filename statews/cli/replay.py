"""The replay server behind ``statews serve --replay FILE``: plays the server's side of a
transcript (:mod:`statews.cli.transcript`) to each client that connects.

It runs on the same ``websockets`` trio server as the echo server
(:func:`statews.cli.server.serve_handler`), an optional dependency.

Invariants, per connection, walking the transcript's records in order:

* ``in`` messages are sent after the recorded delay since the previous record (the
  gap between their ``t``), or at once with ``fast``.
* ``out`` messages are awaited and compared with what the client sends, in order; the
  first difference (another type or payload, a Close instead, or a message past the
  end of the transcript) is logged at WARNING on ``statews.server``, appended to
  :attr:`ReplayServer.differences`, and ends the connection with
  :data:`REPLAY_MISMATCH` and a reason naming it. With ``loose`` the client's messages
  are ignored (read and dropped); only its Close is awaited where one was recorded.
* A recorded ``in`` close is sent with its code and reason (code 1006: the TCP
  connection is dropped without a Close). A recorded ``out`` close is awaited and, in
  strict mode, must have the recorded code and reason; the server answers it only
  after every record before it has been played, as the echo server does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio

from .server import EchoServer, address_of, hold_close, serve_handler
from .transcript import CloseRecord, MessageRecord, Transcript

if TYPE_CHECKING:
    from websockets.trio.server import ServerConnection

__all__ = ["MAX_REASON_BYTES", "REPLAY_MISMATCH", "Difference", "ReplayServer", "serve_replay"]

logger = logging.getLogger("statews.server")

#: The close code of a connection whose client did not send what was recorded.
REPLAY_MISMATCH: Final = 4000
#: The longest reason a Close frame carries (RFC 6455 5.5: 125 bytes with the code).
MAX_REASON_BYTES: Final = 123


@dataclass(frozen=True, slots=True)
class Difference:
    """The first place where a client did not send what the transcript recorded.

    ``line`` is the transcript line of the record expected (``None``: past its end);
    ``expected`` and ``got`` describe the two sides (``text 'hi'``, ``close 1000``)."""

    peer: str
    line: int | None
    expected: str
    got: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "after the last record"
        return f"{where}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True, slots=True)
class ReplayServer(EchoServer):
    """Where a running replay server listens, and the differences found so far (one at
    most per connection, in the order the connections ended)."""

    differences: list[Difference] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _ClientClose:
    code: int
    reason: str

    def describe(self) -> str:
        return CloseRecord(0, "out", self.code, self.reason).describe()


_ClientEvent = str | bytes | _ClientClose


def _describe(event: _ClientEvent) -> str:
    if isinstance(event, _ClientClose):
        return event.describe()
    return MessageRecord(0, "out", event).describe()


def _close_reason(difference: Difference) -> str:
    """``difference`` as a Close reason, cut to :data:`MAX_REASON_BYTES` bytes of UTF-8."""
    reason = f"replay: {difference}".encode()
    return reason[:MAX_REASON_BYTES].decode(errors="ignore")


async def serve_replay(
    transcript: Transcript,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    fast: bool = False,
    loose: bool = False,
    task_status: trio.TaskStatus[ReplayServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Replay ``transcript`` to every client that connects on ``host``:``port``, until
    cancelled (then, as :func:`statews.cli.server.serve_echo`, 1001 to open clients).

    With ``nursery.start(serve_replay, transcript, host, 0)`` the OS picks a free port
    and the :class:`ReplayServer` returned says which, and collects the differences.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    differences: list[Difference] = []

    async def handler(conn: ServerConnection) -> None:
        await _replay(conn, transcript, fast=fast, loose=loose, differences=differences)

    async with trio.open_nursery() as nursery:
        bound: EchoServer = await nursery.start(serve_handler, handler, "replay server", host, port)
        task_status.started(ReplayServer(bound.host, bound.port, differences))


async def _replay(
    conn: ServerConnection,
    transcript: Transcript,
    *,
    fast: bool,
    loose: bool,
    differences: list[Difference],
) -> None:
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415 - optional dependency

    peer = address_of(conn.remote_address)
    path = conn.request.path if conn.request is not None else "?"
    logger.info("%s: connected, path %s: replaying %d records", peer, path, len(transcript.records))
    send_event, events = trio.open_memory_channel[_ClientEvent](math.inf)
    release = trio.Event()
    gated = False

    async def gate(code: int, reason: str) -> None:
        nonlocal gated
        gated = True
        send_event.send_nowait(_ClientClose(code, reason))
        await release.wait()

    async def read_client() -> None:
        try:
            async for message in conn:
                send_event.send_nowait(message)
        except ConnectionClosed:
            pass
        if not gated:  # the client went away without a Close, or after ours
            send_event.send_nowait(_ClientClose(conn.close_code or 1006, conn.close_reason or ""))

    hold_close(conn, gate)
    player = _Player(conn, transcript, events, fast=fast, loose=loose, peer=peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_client)
        try:
            difference = await player.play()
        except ConnectionClosed:
            difference = None  # the client left while we were sending; logged below
        if difference is not None:
            differences.append(difference)
            logger.warning("%s: replay: %s", peer, difference)
            # Before the release: our Close, not the echo of the client's, answers it.
            await conn.aclose(REPLAY_MISMATCH, _close_reason(difference))
        release.set()
    code = conn.close_code if conn.close_code is not None else 1006
    logger.info("%s: closed with %s after %d records played", peer, code, player.played)


class _Player:
    """The records of a transcript played on one connection."""

    def __init__(
        self,
        conn: ServerConnection,
        transcript: Transcript,
        events: trio.MemoryReceiveChannel[_ClientEvent],
        *,
        fast: bool,
        loose: bool,
        peer: str,
    ) -> None:
        self.conn, self.transcript, self.events = conn, transcript, events
        self.fast, self.loose, self.peer = fast, loose, peer
        self.played = 0

    def _difference(self, line: int | None, expected: str, got: _ClientEvent) -> Difference:
        return Difference(self.peer, line, expected, _describe(got))

    async def _client_close(self) -> _ClientClose:
        """The client's Close, skipping its messages (loose mode)."""
        while not isinstance(event := await self.events.receive(), _ClientClose):
            pass
        return event

    async def play(self) -> Difference | None:
        """Play every record; return the first difference (``None``: none, and the
        connection is closing or closed as recorded)."""
        previous = 0.0
        for record, line in zip(self.transcript.records, self.transcript.lines, strict=True):
            if record.direction == "in" and not self.fast:
                await trio.sleep(max(0.0, record.t - previous))
            previous = record.t
            self.played += 1
            if isinstance(record, MessageRecord):
                if record.direction == "in":
                    await self.conn.send(record.data)
                elif not self.loose:
                    got = await self.events.receive()
                    if got != record.data:
                        return self._difference(line, record.describe(), got)
                continue
            if record.direction == "out":
                close = await self._client_close() if self.loose else await self.events.receive()
                expected = _ClientClose(record.code, record.reason)
                if not self.loose and close != expected:
                    return self._difference(line, record.describe(), close)
                return None  # released: the server answers the client's Close
            if record.code == 1006:
                await trio.aclose_forcefully(self.conn.stream)
            else:
                await self.conn.aclose(record.code, record.reason)
            return None
        # No close recorded: the client decides when the session ends.
        end = await self._client_close() if self.loose else await self.events.receive()
        if not isinstance(end, _ClientClose):
            return self._difference(None, "the client's close", end)
        return None
