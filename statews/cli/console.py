"""The session of ``statews connect``: what it sends, what it prints, when it closes.

:func:`connect_session` runs a :class:`Plan` on one connection (or, with
``reconnect``, on one after another through :func:`statews.connect_forever`) and
returns the exit status; :class:`Transcript` is everything it prints (and, given a
:class:`~statews.cli.transcript.Recorder`, records: ``--record``). The command line
(flags, exit codes, the output format) is documented in :mod:`statews.cli.command`.

Invariants:

* Nothing received is lost to the end of the input: after it, the session keeps
  printing until the server closes or no message came for ``Plan.wait`` seconds, then
  closes with 1000 and prints what arrived before the server's Close.
* stdin is read by one task for the whole session (lines pass through a channel), so
  that a reconnection neither loses nor repeats a line that was read.
* A line ``/ping [data]`` or ``/close [code [reason]]`` on stdin is a command, not a
  message; every other line is sent.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

import trio

from ..core.errors import (
    CloseCode,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidStateError,
    LocalProtocolError,
    ProtocolError,
    WebSocketError,
)
from ..core.events import Binary, Frame, Ping, Pong, Text
from ..options.model import Options
from ..trio.client import open_websocket
from ..trio.connection import WebSocket
from ..trio.delivery import Message
from ..trio.reconnect import connect_forever
from .stdin import lines, stdin_chunks
from .transcript import Recorder

__all__ = [
    "BINARY_MARKER",
    "DEFAULT_WAIT",
    "PREVIEW_BYTES",
    "CommandTimeout",
    "Plan",
    "Transcript",
    "connect_session",
    "describe",
    "format_message",
    "parse_message",
]

#: Bytes of a binary frame shown in hex by :func:`describe`.
PREVIEW_BYTES: Final = 32
#: What starts a binary message on stdout; the base64 of the whole payload follows.
BINARY_MARKER: Final = "base64:"
#: Seconds of quiet after the end of the input before ``connect`` closes.
DEFAULT_WAIT: Final = 1.0

_COMMAND = re.compile(r"/(ping|close)(?: (.*))?")


class CommandTimeout(Exception):
    """``--timeout`` (or the demo's bound) expired."""


class DroppedMessages(WebSocketError):
    """Messages received while closing went past ``closing_buffer_size`` and were lost."""


def describe(frame: Frame) -> str:
    """One frame for a human: the text itself, or ``[binary N bytes] <hex preview>``
    (likewise ping and pong)."""
    if isinstance(frame, Text):
        return frame.data
    if isinstance(frame, Binary | Ping | Pong):
        kind = type(frame).__name__.lower()
        preview = frame.data[:PREVIEW_BYTES].hex()
        more = "..." if len(frame.data) > PREVIEW_BYTES else ""
        return f"[{kind} {len(frame.data)} bytes] {preview}{more}".rstrip()
    return f"[close {frame.code} {frame.reason}]".rstrip()


def format_message(frame: Frame) -> str:
    """A received frame as ``connect`` prints it: a text as is, a binary message as
    :data:`BINARY_MARKER` and the base64 of its payload (reversed by
    :func:`parse_message`), a ping or pong as :func:`describe` (its payload in full)."""
    if isinstance(frame, Binary):
        return BINARY_MARKER + base64.b64encode(frame.data).decode("ascii")
    return describe(frame)


def parse_message(line: str) -> str | bytes:
    """The message a line printed by :func:`format_message` stands for: bytes for a
    binary message, else the text.

    Raises:
        ValueError: the line has the binary marker but no valid base64 after it.
    """
    if line.startswith(BINARY_MARKER):
        return base64.b64decode(line.removeprefix(BINARY_MARKER), validate=True)
    return line


def close_text(code: int, reason: str) -> str:
    """``code 1000 (normal closure): reason``."""
    try:
        name = f" ({CloseCode(code).name.lower().replace('_', ' ')})"
    except ValueError:
        name = ""
    return f"code {code}{name}" + (f": {reason}" if reason else "")


class Transcript:
    """What ``connect`` prints: received messages on stdout (bare, after ``< `` with
    ``prefix``, or as JSON lines); the connection's start and end, notes, and with
    ``verbose`` the sent messages, on stderr (not with ``quiet``, except warnings)."""

    def __init__(
        self,
        *,
        json_lines: bool,
        verbose: bool,
        out: TextIO,
        err: TextIO,
        prefix: bool = False,
        quiet: bool = False,
        recorder: Recorder | None = None,
    ) -> None:
        self.recorder = recorder
        self.json_lines = json_lines
        self.verbose = verbose
        self.prefix = prefix
        self.quiet = quiet
        self.out = out
        self.err = err

    def _record(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A line on stderr, unless quiet."""
        if not self.quiet:
            print(text, file=self.err, flush=True)

    def warn(self, text: str) -> None:
        """A ``statews: warning:`` line on stderr, even when quiet."""
        print(f"statews: warning: {text}", file=self.err, flush=True)

    def connected(self, ws: WebSocket) -> None:
        if self.recorder is not None:
            self.recorder.handshake(
                ws.options,
                subprotocol=ws.subprotocol,
                extensions=ws.extensions,
                response_headers=ws.response_headers,
            )
        if self.json_lines:
            self._record(
                {"event": "connected", "url": ws.options.url, "subprotocol": ws.subprotocol}
            )
        else:
            protocol = f" (subprotocol {ws.subprotocol})" if ws.subprotocol else ""
            self.note(f"connected to {ws.options.url}{protocol}")

    def received(self, frame: Frame) -> None:
        if self.recorder is not None and isinstance(frame, Text | Binary):
            self.recorder.message("in", frame.data)
        if not self.json_lines:
            self.out.write(("< " if self.prefix else "") + format_message(frame) + "\n")
            self.out.flush()
        elif isinstance(frame, Text):
            self._record({"direction": "in", "type": "text", "data": frame.data})
        elif isinstance(frame, Binary | Ping | Pong):
            data = base64.b64encode(frame.data).decode("ascii")
            self._record({"direction": "in", "type": type(frame).__name__.lower(), "data": data})

    def sent(self, message: str | bytes) -> None:
        """``message`` is being sent (called before the send, so that a recording
        has it before the reply it causes)."""
        if self.recorder is not None:
            self.recorder.message("out", message)
        if self.verbose:
            shown = message if isinstance(message, str) else format_message(Binary(message))
            print(f"> {shown}", file=self.err, flush=True)

    def round_trip(self, seconds: float) -> None:
        """The pong of one of our pings came after ``seconds``."""
        if self.json_lines:
            self._record({"event": "pong", "round_trip": seconds})
        else:
            self.note(f"ping: pong after {seconds * 1000:.2f} ms")

    def closed(self, closed: ConnectionClosed, *, we_closed: bool = False) -> None:
        """The connection ended as ``closed`` says; ``we_closed``: our Close came first."""
        if self.recorder is not None:
            if we_closed and closed.sent is not None:
                self.recorder.close("out", closed.sent.code, closed.sent.reason)
            else:
                self.recorder.close("in", closed.code, closed.reason)
        if self.json_lines:
            record: dict[str, Any] = {
                "event": "closed",
                "code": closed.code,
                "reason": closed.reason,
            }
            if closed.rcvd is None and closed.sent is not None:
                # No Close came back (code 1006): say which code we closed or failed with.
                record["sent"] = closed.sent.code
            if closed.dropped_messages:
                record["dropped_messages"] = closed.dropped_messages
            self._record(record)
        else:
            self.note(f"closed: {close_text(closed.code, closed.reason)}")


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``connect`` does once connected.

    ``sends``: texts to send (``None``: stdin lines, with commands); ``count``: close
    after that many received messages (``None``: at the end of the input); ``binary``:
    send as binary messages (UTF-8); ``one``: send one message only; ``no_close``: stay
    connected after the end of the input; ``wait``: seconds of quiet after the end of
    the input before closing; ``ping_interval``: ping every so many seconds (timing
    out after ``ping_timeout``), ``show_ping`` printing the round trips;
    ``reconnect``: reconnect after an abnormal end (``sends`` are sent again).
    """

    sends: tuple[str, ...] | None
    count: int | None
    binary: bool = False
    one: bool = False
    no_close: bool = False
    wait: float = DEFAULT_WAIT
    ping_interval: float | None = None
    ping_timeout: float | None = None
    show_ping: bool = False
    reconnect: bool = False


@dataclass
class _Progress:
    expected: int | None
    received: int = 0
    we_closed: bool = False
    input_ended: bool = False
    last_message: float = -math.inf

    @property
    def done(self) -> bool:
        return self.expected is not None and self.received >= self.expected


Lines = trio.MemoryReceiveChannel[str]


async def connect_session(
    options: Options, plan: Plan, transcript: Transcript, timeout: float | None
) -> tuple[ConnectionClosed | None, bool]:
    """Connect, run ``plan``, close; return how the last connection ended and whether we
    closed it (``None``: it never connected).

    Raises:
        OptionsError, HandshakeError: as :func:`statews.open_websocket` (with
            ``reconnect``: as :func:`statews.connect_forever`).
        CommandTimeout: ``timeout`` seconds passed (the connection was closed first).
        RecvTimeout: ``recv_timeout`` passed without a message.
    """
    progress = _Progress(plan.count)
    last: list[WebSocket] = []
    with trio.move_on_after(math.inf if timeout is None else timeout) as deadline:
        async with trio.open_nursery() as nursery:
            feed: Lines | None = None
            if plan.sends is None:
                send_lines, feed = trio.open_memory_channel[str](0)
                nursery.start_soon(_read_stdin, send_lines)
            run = _runner(plan, transcript, progress, feed, last.append)
            if plan.reconnect:
                async with connect_forever(options) as attempts:
                    async for ws in attempts:
                        await run(ws)
                        if progress.we_closed or progress.done:
                            break
                        transcript.note("statews: connection lost; reconnecting")
            else:
                async with open_websocket(options) as ws:
                    await run(ws)
            nursery.cancel_scope.cancel()  # the stdin reader
    closed = last[-1].closed_reason if last else None
    if deadline.cancelled_caught:
        if closed is not None:
            transcript.closed(closed, we_closed=progress.we_closed)
        awaited = "" if plan.count is None else f" ({progress.received} of {plan.count} messages)"
        raise CommandTimeout(f"timed out after {timeout} s{awaited}")
    return closed, progress.we_closed


def _runner(
    plan: Plan,
    transcript: Transcript,
    progress: _Progress,
    feed: Lines | None,
    seen: Callable[[WebSocket], None],
) -> Callable[[WebSocket], Awaitable[None]]:
    """The exchange on one connection, reporting its start and end."""

    async def run(ws: WebSocket) -> None:
        seen(ws)
        transcript.connected(ws)
        await _exchange(ws, plan, transcript, progress, feed)
        if ws.closed_reason is not None:
            transcript.closed(ws.closed_reason, we_closed=progress.we_closed)
        if transcript.verbose:
            transcript.note(f"stats: {ws.stats.summary()}")

    return run


def session_failure(closed: ConnectionClosed, we_closed: bool) -> WebSocketError | None:
    """Why a session that ended with ``closed`` failed, or ``None`` if it did not: a
    normal close (1000/1001), or one we asked for (``/close``, end of input, --count)
    that the peer did not break; and nothing dropped while closing."""
    if closed.dropped_messages:
        return DroppedMessages(
            f"{closed.dropped_messages} message(s), {closed.dropped_bytes} bytes, received"
            " while closing were dropped past closing_buffer_size"
        )
    if isinstance(closed, ConnectionClosedOK):
        return None
    if we_closed and not isinstance(closed.__cause__, ProtocolError):
        return None  # we closed as asked and the peer left or answered as it chose
    return closed


async def _read_stdin(send: trio.MemorySendChannel[str]) -> None:
    async with send, stdin_chunks() as receive:
        async for line in lines(receive):
            await send.send(line)


async def _exchange(
    ws: WebSocket, plan: Plan, transcript: Transcript, progress: _Progress, feed: Lines | None
) -> None:
    try:
        async with trio.open_nursery() as pinging:
            if plan.ping_interval is not None:
                pinging.start_soon(_ping_part, ws, plan, transcript)
            async with trio.open_nursery() as talking:
                talking.start_soon(_send_part, ws, plan, transcript, progress, feed)
                await _receive_part(ws, transcript, progress)
                if plan.sends is None or not progress.done:
                    # Stop taking input, or stop sending to a connection that has ended;
                    # texts given with --send are all sent before the close.
                    talking.cancel_scope.cancel()
            pinging.cancel_scope.cancel()
        if progress.done and ws.state == "connected":
            progress.we_closed = True
            await ws.close()
    finally:
        if ws.options.active is not False:
            # Nobody reads the mailbox any more: let the deliverer end instead of waiting.
            ws.mailbox.close()


async def _send_part(
    ws: WebSocket, plan: Plan, transcript: Transcript, progress: _Progress, feed: Lines | None
) -> None:
    async def send(text: str) -> None:
        message: str | bytes = text.encode() if plan.binary else text
        transcript.sent(message)
        await ws.send(Binary(message) if isinstance(message, bytes) else Text(message))

    sent = 0
    try:
        if feed is None:
            assert plan.sends is not None
            for text in plan.sends:
                await send(text)
                sent += 1
        else:
            async for line in _until_closed(feed):
                if await _command(ws, line, transcript, progress):
                    continue
                await send(line)
                sent += 1
                if plan.one:
                    break
        progress.input_ended = True
        if progress.expected is not None and (sent or not plan.one):
            return  # the awaited messages, not the end of input, end the session
        if plan.no_close:
            return
        # Let what the server still sends arrive: close once it has been quiet a while.
        progress.last_message = max(progress.last_message, trio.current_time())
        while (left := progress.last_message + plan.wait - trio.current_time()) > 0:
            await trio.sleep(left)
        progress.we_closed = True
        await ws.close()
    except (ConnectionClosed, InvalidStateError):
        pass  # the connection ended first; the receiving side reports how


async def _until_closed(feed: Lines) -> AsyncIterator[str]:
    """The lines of ``feed`` until its end; a cancelled wait loses no line."""
    while True:
        try:
            yield await feed.receive()
        except trio.EndOfChannel:
            return


async def _command(ws: WebSocket, line: str, transcript: Transcript, progress: _Progress) -> bool:
    """Run ``line`` if it is ``/ping [data]`` or ``/close [code [reason]]``; say if it was."""
    match = _COMMAND.fullmatch(line)
    if match is None:
        return False
    argument = match[2] or ""
    try:
        if match[1] == "ping":
            transcript.round_trip(await ws.ping(argument.encode() or None))
            return True
        code_text, _, reason = argument.partition(" ")
        code = int(code_text) if code_text else CloseCode.NORMAL_CLOSURE
        progress.we_closed = True
        await ws.close(code, reason)
    except (ValueError, LocalProtocolError) as exc:
        progress.we_closed = False
        transcript.warn(f"{line}: {exc}" if str(exc) else f"{line}: invalid")
    return True


async def _ping_part(ws: WebSocket, plan: Plan, transcript: Transcript) -> None:
    """Ping every ``plan.ping_interval``; close with 1011 when a pong is late."""
    assert plan.ping_interval is not None
    timeout = math.inf if plan.ping_timeout is None else plan.ping_timeout
    try:
        while True:
            await trio.sleep(plan.ping_interval)
            with trio.move_on_after(timeout):
                rtt = await ws.ping()
                if plan.show_ping:
                    transcript.round_trip(rtt)
                continue
            transcript.warn(f"no pong within {plan.ping_timeout} s: closing")
            await ws.close(CloseCode.INTERNAL_ERROR, "ping timeout")
            return
    except (ConnectionClosed, InvalidStateError):
        pass


async def _receive_part(ws: WebSocket, transcript: Transcript, progress: _Progress) -> None:
    """Print messages until ``progress`` is done or the connection has ended."""

    def take(frame: Frame) -> None:
        transcript.received(frame)
        if isinstance(frame, Text | Binary):
            progress.received += 1
            progress.last_message = trio.current_time()

    try:
        if ws.options.active is False:
            while not progress.done:
                take(await ws.recv())
            return
        once = ws.options.active == "once"
        async for delivery in ws.mailbox:
            if not isinstance(delivery, Message):
                return  # Closed or Failed: the end, which closed_reason describes
            take(delivery.frame)
            if progress.done:
                return
            if once and ws.state == "connected":
                await ws.setopts(active="once")
    except ConnectionClosed:
        pass
