"""Floods and stalls: a hostile server must not grow the client's memory or queues without bound.

Memory is measured with tracemalloc, counting only blocks allocated by statews code;
queues through the connection's internals (the point is what it holds, not what it shows).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from peers import FrameReader, accept_upgrade, serve_raw
from wire import close_code, close_frame, server_frame

import statews
from statews import Binary, Text
from statews.trio.reader import RECEIVE_SIZE

from .harness import reset
from .probes import inbox_length, queued_output, statews_memory, tracing

OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "close_timeout": 0.5}


async def _stalled(progress: list[int], quiet: float = 0.2, limit: float = 5.0) -> bool:
    """Wait until ``progress[0]`` stops moving for ``quiet`` s; False if it never does."""
    with trio.move_on_after(limit):
        while True:
            seen = progress[0]
            await trio.sleep(quiet)
            if progress[0] == seen:
                return True
    return False


async def test_ping_flood_app_not_reading_all_answered_memory_flat(nursery: trio.Nursery) -> None:
    """Pings are answered by the reader whether or not the application reads; nothing
    about them accumulates in the client."""
    n = 30_000
    pongs: list[bytes] = []
    flood_done = trio.Event()
    synced = trio.Event()
    go = trio.Event()
    measured = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await go.wait()  # the client measured its baseline
        reader = FrameReader(stream)

        async def count() -> None:
            while (got := await reader.frame()) is not None:
                if got[0] == 0xA:
                    pongs.append(got[2])
                    if len(pongs) == n:
                        flood_done.set()
                    elif len(pongs) == n + 1:
                        synced.set()

        async with trio.open_nursery() as inner:
            inner.start_soon(count)
            for start in range(0, n, 1000):
                batch = b"".join(
                    server_frame(0x9, i.to_bytes(4, "big")) for i in range(start, start + 1000)
                )
                await stream.send_all(batch)
            await flood_done.wait()
            # A lone ping: when its pong is back, the client's last read held only it,
            # so nothing transient of the flood is left to measure.
            await stream.send_all(server_frame(0x9, b"sync"))
            await synced.wait()
            await measured.wait()
            await stream.send_all(close_frame(1000))

    server = await serve_raw(nursery, script)
    with tracing(), trio.fail_after(20):
        async with statews.open_websocket(server.url(), max_queue=16, **OPTIONS) as ws:
            before = statews_memory()
            go.set()
            await synced.wait()
            grown = statews_memory() - before
            measured.set()
            assert inbox_length(ws) == 0  # pings are not messages
            with pytest.raises(statews.ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1000
    assert pongs[:n] == [i.to_bytes(4, "big") for i in range(n)]  # every one, in order
    assert grown < 16 * 1024, f"{grown} bytes kept after {n} pings"


async def test_ping_flood_with_control_frames_pongs_for_what_was_read(
    nursery: trio.Nursery,
) -> None:
    """With control_frames=True pings are queued for the application; when it does not
    read, the reader stops and the server is held back by TCP. Every ping the client has
    read was answered; once the application reads, the rest flows and is answered."""
    n = 20_000
    progress = [0]
    pongs: list[bytes] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        reader = FrameReader(stream)

        async def count() -> None:
            while (got := await reader.frame()) is not None:
                if got[0] == 0xA:
                    pongs.append(got[2])

        async with trio.open_nursery() as inner:
            inner.start_soon(count)
            for i in range(n):
                await stream.send_all(server_frame(0x9, i.to_bytes(4, "big") + b"p" * 100))
                progress[0] += 1
            await stream.send_all(close_frame(1000))
            await trio.sleep(5)  # the client closes TCP after our Close

    server = await serve_raw(nursery, script)
    with trio.fail_after(20):
        async with statews.open_websocket(
            server.url(), max_queue=16, control_frames=True, **OPTIONS
        ) as ws:
            assert await _stalled(progress), "the server was never held back"
            await trio.sleep(0.1)  # let the pongs of what was read reach the server
            parsed = len(pongs)
            held = inbox_length(ws)
            assert 0 < parsed < n
            assert held <= parsed  # every ping the client read was answered
            # At most one read's worth past max_queue (the strict max_queue bound is
            # test_tiny_message_flood_inbox_bounded_by_max_queue's business).
            assert held <= 16 + 65536 // 108, f"inbox holds {held} pings with max_queue=16"
            got = 0
            while True:
                try:
                    item = await ws.recv()
                except statews.ConnectionClosedOK:
                    break
                assert item == statews.Ping(got.to_bytes(4, "big") + b"p" * 100)
                got += 1
            assert got == n
    assert pongs == [i.to_bytes(4, "big") + b"p" * 100 for i in range(n)]


@pytest.mark.parametrize("size", [0, 125], ids=["empty-pings", "125-byte-pings"])
async def test_ping_flood_server_never_reads_pongs(nursery: trio.Nursery, size: int) -> None:
    """A server that pings without reading the pongs: the client must stop reading once
    its pongs back up (TCP back-pressure), not queue pongs without limit. The queue may
    exceed ``write_limit`` by the pongs of one read at most; an empty ping (2 bytes)
    makes a 6-byte pong, so that is up to 3 times a read."""
    progress = [0]
    ping = server_frame(0x9, b"p" * size)
    burst = ping * (8192 // len(ping))
    go = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await go.wait()  # the client measured its baseline
        # Never reads again. Sends up to 64 MiB of pings, as long as the client takes them.
        for _ in range(64 * 2**20 // len(burst)):
            try:
                await stream.send_all(burst)
            except trio.BrokenResourceError:
                return
            progress[0] += 1
        await trio.sleep(10)

    server = await serve_raw(nursery, script)
    write_limit = 64 * 1024
    one_read = RECEIVE_SIZE // len(ping) * (len(ping) + 4)  # the pongs of one full read
    with tracing(), trio.fail_after(30):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), write_limit=write_limit, **OPTIONS)
            await ws.connect()
            before = statews_memory()
            go.set()
            stalled = await _stalled(progress, limit=3)
            queued = queued_output(ws)
            grown = statews_memory() - before
            inner.cancel_scope.cancel()
    assert queued <= write_limit + one_read, f"{queued} bytes of pongs queued"
    # Queued, held by the writer, and one read: nothing that grows with the flood.
    assert grown < 3 * (write_limit + one_read), f"client memory grew by {grown} bytes"
    assert stalled, "the client never stopped reading pings it cannot answer"


async def test_server_never_reads_send_applies_back_pressure(nursery: trio.Nursery) -> None:
    """``send`` waits once ``write_limit`` bytes are queued; a ``send`` cut by a timeout
    queues nothing; when the server reads again it gets whole frames, exactly the
    messages whose ``send`` returned, and the connection goes on working."""
    reading = trio.Event()
    got: list[bytes] = []
    codes: list[int | None] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await reading.wait()
        reader = FrameReader(stream)
        while (item := await reader.frame()) is not None:
            opcode, fin, payload = item
            assert fin
            if opcode == 0x8:
                codes.append(close_code(payload))
                await stream.send_all(close_frame(1000))
                return
            assert opcode == 0x2
            got.append(payload)

    server = await serve_raw(nursery, script)
    write_limit = 32 * 1024
    size = 3000
    sent: list[bytes] = []
    worst = 0
    with trio.fail_after(20):
        async with statews.open_websocket(server.url(), write_limit=write_limit, **OPTIONS) as ws:
            blocked = False
            i = 0
            while not blocked:
                message = i.to_bytes(4, "big") * (size // 4)
                with trio.move_on_after(0.5) as scope:
                    await ws.send(Binary(message))
                if scope.cancelled_caught:
                    blocked = True
                else:
                    sent.append(message)
                worst = max(worst, queued_output(ws))
                i += 1
                assert i < 100_000, "send never blocked against a server that does not read"
            # Cut by timeouts again and again: still connected, nothing half-queued.
            for j in range(20):
                with trio.move_on_after(0.001 * (j % 3)):
                    await ws.send(Binary(b"never" * 100))
                    sent.append(b"never" * 100)
                worst = max(worst, queued_output(ws))
            assert ws.state == "connected"
            reading.set()
            await ws.send(Binary(b"after"))
            sent.append(b"after")
    assert worst <= write_limit + size + 14, f"{worst} bytes queued"
    assert got == sent
    assert codes == [1000]


async def test_empty_continuation_flood_memory_flat(nursery: trio.Nursery) -> None:
    """Empty continuation frames never reach max_message_size; a server can send them
    forever. Each must cost nothing that stays: memory does not grow with their number."""
    n = 200_000
    pong = trio.Event()

    go = trio.Event()
    measured = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await go.wait()  # the client measured its baseline
        await stream.send_all(server_frame(0x1, b"a", fin=False))
        empties = server_frame(0x0, b"", fin=False) * 10_000
        for _ in range(n // 10_000):
            await stream.send_all(empties)
        await stream.send_all(server_frame(0x9, b"sync"))  # answered once all before it is parsed
        reader = FrameReader(stream)
        await reader.until(0xA)
        pong.set()
        await measured.wait()  # the client measured with the message unfinished
        await stream.send_all(server_frame(0x0, b"z") + close_frame(1000))
        await reader.close_code()

    server = await serve_raw(nursery, script)
    with tracing(), trio.fail_after(30):
        async with statews.open_websocket(server.url(), **OPTIONS) as ws:
            before = statews_memory()
            go.set()
            await pong.wait()
            grown = statews_memory() - before
            measured.set()
            assert await ws.recv() == Text("az")
    assert grown < 64 * 1024, f"{n} empty fragments kept {grown} bytes"


async def test_tiny_fragments_memory_bounded_by_max_message_size(nursery: trio.Nursery) -> None:
    """A message in 1-byte fragments must cost about its size, not dozens of times more:
    max_message_size is what bounds the memory a server can make the client hold."""
    limit = 64 * 1024
    pong = trio.Event()

    go = trio.Event()
    measured = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await go.wait()  # the client measured its baseline
        one = server_frame(0x0, b"x", fin=False)
        await stream.send_all(server_frame(0x2, b"x", fin=False) + one * (limit - 2))
        await stream.send_all(server_frame(0x9, b"sync"))
        reader = FrameReader(stream)
        await reader.until(0xA)
        pong.set()
        await measured.wait()  # the client measured with the message unfinished
        await stream.send_all(server_frame(0x0, b"x") + close_frame(1000))
        await reader.close_code()

    server = await serve_raw(nursery, script)
    with tracing(), trio.fail_after(30):
        async with statews.open_websocket(server.url(), max_message_size=limit, **OPTIONS) as ws:
            before = statews_memory()
            go.set()
            await pong.wait()
            grown = statews_memory() - before
            measured.set()
            assert await ws.recv() == Binary(b"x" * limit)
    assert grown < 4 * limit, f"a {limit}-byte message in fragments holds {grown} bytes"


async def test_tiny_message_flood_inbox_bounded_by_max_queue(nursery: trio.Nursery) -> None:
    """Empty messages, 2 bytes each on the wire, while the application does not read:
    the inbox holds at most max_queue of them (the documented bound), and the server is
    held back by TCP."""
    progress = [0]
    burst = server_frame(0x1, b"") * 8192

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        for _ in range(200):
            await stream.send_all(burst)
            progress[0] += 1
        await trio.sleep(10)

    server = await serve_raw(nursery, script)
    with trio.fail_after(20):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), max_queue=16, **OPTIONS)
            await ws.connect()
            stalled = await _stalled(progress)
            held = inbox_length(ws)
            inner.cancel_scope.cancel()
    assert stalled, "the server was never held back"
    assert held <= 16, f"inbox holds {held} messages with max_queue=16"


async def test_reset_while_client_blocked_in_send(nursery: trio.Nursery) -> None:
    """A send blocked by back-pressure when the server resets: it raises ConnectionClosed
    (not a hang, not a raw socket error) and the connection ends closed."""
    ready = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await ready.wait()
        reset(stream)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), write_limit=1024, **OPTIONS)
            await ws.connect()

            async def trigger() -> None:
                await trio.sleep(0.3)
                ready.set()

            inner.start_soon(trigger)
            with pytest.raises(statews.ConnectionClosedError) as info:
                await _send_forever(ws)
            assert info.value.code == 1006
            assert ws.state == "closed"


async def _send_forever(ws: statews.WebSocket) -> None:
    while True:
        await ws.send(Binary(b"x" * 4096))
