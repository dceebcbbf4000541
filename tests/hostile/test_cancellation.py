"""The application cancels ``recv`` and ``send`` at arbitrary points and keeps going.

Cancelling must never desynchronise the stream: every message is received whole,
once, in order; the server receives whole valid frames, exactly the messages whose
``send`` returned. Timeouts come from a seeded generator: failures replay.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import trio
from peers import FrameReader, accept_upgrade, serve_raw
from wire import close_code, close_frame, server_frame

import statews
from statews import Binary, Frame, Text

OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "close_timeout": 0.5}


def _messages(rng: random.Random, n: int) -> list[tuple[Frame, bytes]]:
    """``n`` messages (some large, some fragmented, pings between), with their wire bytes."""
    out: list[tuple[Frame, bytes]] = []
    for i in range(n):
        size = rng.choice([0, 1, 10, 125, 126, 1000, 70_000])
        message: Frame
        if i % 2:
            body = (f"{i}:" + "é" * size)[: max(size, 1)]
            data, message, opcode = body.encode(), Text(body), 0x1
        else:
            raw = i.to_bytes(4, "big") + bytes(rng.randrange(256) for _ in range(min(size, 64)))
            data = raw * max(1, size // len(raw))
            message, opcode = Binary(data), 0x2
        if len(data) > 4 and rng.random() < 0.4:
            cut = [0, *sorted(rng.sample(range(1, len(data)), 3)), len(data)]
            parts = [data[a:b] for a, b in pairwise(cut)]
            wire = server_frame(opcode, parts[0], fin=False)
            for k, part in enumerate(parts[1:], 1):
                wire += server_frame(0x9, b"between") if rng.random() < 0.3 else b""
                wire += server_frame(0x0, part, fin=k == len(parts) - 1)
        else:
            wire = server_frame(opcode, data)
        out.append((message, wire))
    return out


async def test_recv_cancelled_everywhere_loses_and_duplicates_nothing(
    nursery: trio.Nursery,
) -> None:
    rng = random.Random(6455)
    messages = _messages(rng, 150)
    stream_bytes = b"".join(wire for _, wire in messages) + close_frame(1000)
    # Cut the byte stream at random points, so messages end up split mid-header,
    # mid-payload, between fragments: wherever a recv() may be cancelled.
    cuts = sorted({0, len(stream_bytes), *rng.sample(range(1, len(stream_bytes)), 600)})
    pieces = [stream_bytes[a:b] for a, b in pairwise(cuts)]
    codes: list[int | None] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        for piece in pieces:
            await stream.send_all(piece)
            await trio.sleep(rng.choice([0, 0, 0.0002, 0.001]))
        codes.append(await FrameReader(stream).close_code())

    server = await serve_raw(nursery, script)
    got: list[Frame] = []
    cancelled = 0
    client_rng = random.Random(7692)
    with trio.fail_after(30):
        async with statews.open_websocket(server.url(), max_queue=4, **OPTIONS) as ws:
            while True:
                with trio.move_on_after(client_rng.choice([0, 0.0001, 0.0005, 0.002])) as scope:
                    try:
                        got.append(await ws.recv())
                    except statews.ConnectionClosedOK:
                        break
                cancelled += scope.cancelled_caught
        await server.done.wait()
    assert got == [message for message, _ in messages]
    assert cancelled > 100, f"only {cancelled} recv() were cancelled: the test tests little"
    assert codes == [1000]


async def test_send_cancelled_repeatedly_only_whole_frames_on_the_wire(
    nursery: trio.Nursery,
) -> None:
    """Sends cut by timeouts (zero included) while messages flow both ways, against a
    slow reader: the server receives whole frames, exactly the sends that returned."""
    received: list[tuple[int, bytes]] = []
    codes: list[int] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        sending = trio.Lock()  # the echo of the Close and the talk share the stream

        async def talk() -> None:
            try:
                for i in range(200):
                    async with sending:
                        await stream.send_all(server_frame(0x1, f"server {i}".encode()))
                    await trio.sleep(0.001)
            except trio.BrokenResourceError:
                pass  # the client closed: the talk is over

        async with trio.open_nursery() as inner:
            inner.start_soon(talk)
            reader = FrameReader(stream)
            while (item := await reader.frame()) is not None:
                opcode, fin, payload = item
                assert fin, "send() of a whole message sends one whole frame here"
                if opcode == 0x8:
                    codes.append(close_code(payload))
                    async with sending:
                        await stream.send_all(close_frame(1000))
                    inner.cancel_scope.cancel()
                    break
                received.append((opcode, payload))
                if len(received) % 7 == 0:
                    await trio.sleep(0.002)  # a slow reader: the client's queue fills up

    server = await serve_raw(nursery, script)
    rng = random.Random(1006)
    completed: list[tuple[int, bytes]] = []
    from_server: list[Frame] = []
    cancelled = 0
    with trio.fail_after(30):
        async with statews.open_websocket(server.url(), write_limit=16 * 1024, **OPTIONS) as ws:

            async def read() -> None:
                while True:
                    try:
                        from_server.append(await ws.recv())
                    except statews.ConnectionClosed:
                        return

            async with trio.open_nursery() as inner:
                inner.start_soon(read)
                for i in range(400):
                    size = rng.choice([0, 5, 200, 5_000, 40_000])
                    if i % 3:
                        payload = i.to_bytes(4, "big") * (size // 4 + 1)
                        message: Frame = Binary(payload)
                        wire = (0x2, payload)
                    else:
                        text = f"{i}" + "ü" * size
                        message = Text(text)
                        wire = (0x1, text.encode())
                    with trio.move_on_after(rng.choice([0, 0, 0.00005, 0.0005, 0.005])) as scope:
                        await ws.send(message)
                        completed.append(wire)
                    cancelled += scope.cancelled_caught
                    assert ws.state == "connected"
                await ws.close()
        await server.done.wait()
    assert received == completed
    assert cancelled > 100, f"only {cancelled} sends were cancelled"
    assert codes == [1000]
    assert from_server == [Text(f"server {i}") for i in range(len(from_server))]


async def test_send_stream_cancelled_midway_leaves_a_defined_state(
    nursery: trio.Nursery,
) -> None:
    """A streamed message cut by a cancellation after its first fragment went out: the
    connection is then either failed (a WebSocket message cannot be abandoned halfway:
    RFC 6455 has no way to abort one), or still usable with messages that stay
    separate. It is never left ``connected`` while refusing every send, and a later
    stream never silently continues the abandoned message."""
    frames: list[tuple[int, bool, bytes]] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        reader = FrameReader(stream)
        while (item := await reader.frame()) is not None:
            frames.append(item)
            if item[0] == 0x8:
                await stream.send_all(close_frame(1000))
                return

    server = await serve_raw(nursery, script)
    usable = False
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), **OPTIONS) as ws:
            with trio.CancelScope() as scope:

                def chunks() -> Iterator[bytes]:
                    yield b"one"  # queued (fin=False) when the next chunk is known
                    yield b"two"
                    scope.cancel()  # cuts the send of "two"
                    yield b"three"

                await ws.send_stream(chunks())
            assert scope.cancelled_caught
            state_after = ws.state
            try:
                await ws.send(Binary(b"next"))
                usable = True
            except (statews.ConnectionClosed, statews.InvalidStateError):
                # Failed: the lifecycle says so, sends are refused as in any closing state.
                assert state_after in ("closing", "closed")
            except statews.LocalProtocolError as exc:
                raise AssertionError(
                    f"after a cancelled send_stream the connection is {state_after!r} "
                    f"but refuses every send: {exc}"
                ) from exc
            if usable:
                await ws.send_stream([b"new ", b"stream"])
        await server.done.wait()
    data = [item for item in frames if item[0] < 0x8]
    assert data[0] == (0x2, False, b"one")
    if usable:
        messages = _messages_of(data)  # the frames still form valid messages
        assert messages[-2:] == [(0x2, b"next"), (0x2, b"new stream")], messages
    else:
        assert ws.closed_reason is not None
        opcode, _, payload = frames[-1]
        assert opcode == 0x8, frames
        assert close_code(payload) == 1011  # an internal error, not the peer's


def _messages_of(frames: list[tuple[int, bool, bytes]]) -> list[tuple[int, bytes]]:
    """The messages a valid data-frame sequence makes (RFC 6455 5.4); fails on a bad one."""
    messages: list[tuple[int, bytes]] = []
    current: tuple[int, bytes] | None = None
    for opcode, fin, payload in frames:
        if opcode == 0x0:
            assert current is not None, "continuation without a message to continue"
            current = (current[0], current[1] + payload)
        else:
            assert current is None, "a new message inside an unfinished one"
            current = (opcode, payload)
        if fin:
            messages.append(current)
            current = None
    return messages


async def test_recv_timeout_during_a_slow_frame_keeps_the_connection(
    nursery: trio.Nursery,
) -> None:
    """``recv(timeout=...)`` expiring while a frame trickles in raises RecvTimeout and
    changes nothing: the same message then arrives whole."""
    payload = bytes(range(256)) * 8
    wire = server_frame(0x2, payload)

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        for i in range(0, len(wire), 128):
            await stream.send_all(wire[i : i + 128])
            await trio.sleep(0.02)
        await stream.send_all(close_frame(1000))
        await FrameReader(stream).close_code()

    server = await serve_raw(nursery, script)
    timeouts = 0
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), **OPTIONS) as ws:
            while True:
                try:
                    message = await ws.recv(timeout=0.03)
                    break
                except statews.RecvTimeout:
                    timeouts += 1
                    assert ws.state == "connected"
            assert message == Binary(payload)
            with pytest.raises(statews.ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1000
    assert timeouts >= 3
