"""``ws.recv_stream()``: a message received in pieces, never held whole, against real peers.

A `websockets` server echoes large messages; a scripted raw server sends exactly the frames
a test needs (characters split between frames, limits broken midway, control frames between
pieces, messages back to back).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Awaitable, Callable

import pytest
import trio
from peers import FrameReader, WsServer, accept_upgrade, serve_raw
from wire import close_frame, server_frame

import statews
from statews import Binary, Ping, Text

T, B, C, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
MIB = 2**20


async def raw_peer(
    nursery: trio.Nursery, send: Callable[[trio.SocketStream], Awaitable[None]]
) -> str:
    """A raw server that accepts the upgrade, runs ``send``, then waits for the client's Close."""

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await send(stream)
        await FrameReader(stream).close_code()

    server = await serve_raw(nursery, script)
    return server.url()


async def collect(ws: statews.WebSocket) -> list[str | bytes]:
    async with ws.recv_stream() as message:
        return [chunk async for chunk in message]


async def drain(ws: statews.WebSocket, into: list[str | bytes]) -> None:
    """Take one message's chunks into ``into`` (kept when the iteration raises)."""
    async with ws.recv_stream() as message:
        async for chunk in message:
            into.append(chunk)


async def test_large_binary_echo_arrives_in_pieces(ws_server: WsServer) -> None:
    payload = bytes(range(256)) * (20 * MIB // 256)
    with trio.fail_after(10):
        async with statews.open_websocket(
            ws_server.url(), max_message_size=None, max_frame_size=None
        ) as ws:
            await ws.send_stream(payload[i : i + MIB] for i in range(0, len(payload), MIB))
            chunks = await collect(ws)
            assert all(type(chunk) is bytes for chunk in chunks)
            assert b"".join(chunks) == payload  # type: ignore[arg-type]
            assert len(chunks) > 1
            assert max(map(len, chunks)) <= MIB  # one read at most: never the whole message
            # The mode is chosen per receive call: the next message comes whole to recv().
            await ws.send(Text("after"))
            assert await ws.recv() == Text("after")


async def test_text_with_characters_split_between_frames(nursery: trio.Nursery) -> None:
    text = "aé€𝄞" * 3000
    raw = text.encode()
    pieces = [raw[i : i + 1001] for i in range(0, len(raw), 1001)]  # 1001 splits characters

    async def send(stream: trio.SocketStream) -> None:
        for i, piece in enumerate(pieces):
            await stream.send_all(server_frame(T if i == 0 else C, piece, fin=i == len(pieces) - 1))
            await trio.sleep(0)
        await stream.send_all(server_frame(B, b"whole"))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            chunks = await collect(ws)
            assert all(type(chunk) is str for chunk in chunks)
            assert "".join(chunks) == text  # type: ignore[arg-type]
            assert await ws.recv() == Binary(b"whole")


async def test_memory_stays_bounded_for_a_64_mib_message(nursery: trio.Nursery) -> None:
    size = 64 * MIB
    block = b"\xab" * MIB

    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(server_frame(B, length=size))
        for _ in range(size // MIB):
            await stream.send_all(block)

    url = await raw_peer(nursery, send)
    with trio.fail_after(10):
        async with statews.open_websocket(url, max_message_size=None, max_frame_size=None) as ws:
            tracemalloc.start()
            try:
                total = count = 0
                async with ws.recv_stream() as message:
                    async for chunk in message:
                        assert chunk == block[: len(chunk)]
                        total += len(chunk)
                        count += 1
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert total == size
            assert count >= 64
            print(f"recv_stream of {size // MIB} MiB: {count} chunks, peak {peak / MIB:.1f} MiB")
            assert peak < size // 8, f"peak {peak / MIB:.1f} MiB"


async def test_reader_waits_while_the_pieces_are_not_taken(nursery: trio.Nursery) -> None:
    size = 64 * MIB
    block = b"\x01" * MIB
    sent = 0

    async def send(stream: trio.SocketStream) -> None:
        nonlocal sent
        await stream.send_all(server_frame(B, length=size))
        for _ in range(size // MIB):
            await stream.send_all(block)
            sent += MIB

    url = await raw_peer(nursery, send)
    with trio.fail_after(10):
        async with statews.open_websocket(
            url, max_message_size=None, max_frame_size=None, max_queue=2
        ) as ws:
            async with ws.recv_stream() as message:
                total = len(await message.__anext__())
                await trio.sleep(0.3)
                # Socket buffers and a couple of pieces, not the message.
                assert sent < size // 2
                async for chunk in message:
                    total += len(chunk)
            assert total == size


async def test_back_to_back_messages_are_each_streamed(nursery: trio.Nursery) -> None:
    size = 4 * MIB
    payloads = [bytes([1]) * size, bytes([2]) * size]

    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(b"".join(server_frame(B, p) for p in payloads))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            for payload in payloads:
                chunks = await collect(ws)
                assert len(chunks) > 1
                assert b"".join(chunks) == payload  # type: ignore[arg-type]


async def test_message_already_parsed_comes_as_one_chunk(nursery: trio.Nursery) -> None:
    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(b"".join(server_frame(B, b"m%d" % i) for i in range(3)))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            assert await ws.recv() == Binary(b"m0")
            with trio.fail_after(1):
                while len(ws._inbox) < 2:  # both parsed ahead by the reader
                    await trio.sleep(0.01)
            assert await collect(ws) == [b"m1"]
            assert await collect(ws) == [b"m2"]


async def test_message_too_big_midway(nursery: trio.Nursery) -> None:
    piece = b"y" * 100_000

    async def send(stream: trio.SocketStream) -> None:
        for i in range(5):
            await stream.send_all(server_frame(B if i == 0 else C, piece, fin=i == 4))
            await trio.sleep(0.01)

    with trio.fail_after(5):
        async with statews.open_websocket(
            await raw_peer(nursery, send), max_message_size=250_000
        ) as ws:
            chunks: list[str | bytes] = []
            with pytest.raises(statews.ConnectionClosed) as info:
                await drain(ws, chunks)
            assert sum(map(len, chunks)) == 200_000  # the two frames within the limit
            assert info.value.sent is not None
            assert info.value.sent.code == 1009


async def test_invalid_utf8_midway(nursery: trio.Nursery) -> None:
    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(server_frame(T, "é".encode() * 1000, fin=False))
        await trio.sleep(0.05)
        await stream.send_all(server_frame(C, b"ok\xc3\x28rest"))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            chunks: list[str | bytes] = []
            with pytest.raises(statews.ConnectionClosed) as info:
                await drain(ws, chunks)
            assert "".join(chunks).startswith("é" * 1000)  # type: ignore[arg-type]
            assert info.value.sent is not None
            assert info.value.sent.code == 1007


@pytest.mark.parametrize("max_queue", [1, 16])
async def test_abandoned_midway_then_recv_gets_the_next_message(
    nursery: trio.Nursery, max_queue: int
) -> None:
    async def send(stream: trio.SocketStream) -> None:
        for i in range(20):
            await stream.send_all(server_frame(B if i == 0 else C, b"z" * 50_000, fin=i == 19))
            await trio.sleep(0)
        await stream.send_all(server_frame(T, b"next") + close_frame())

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send), max_queue=max_queue) as ws:
            async with ws.recv_stream() as message:
                async for chunk in message:
                    assert chunk == b"z" * len(chunk)
                    break
            assert await ws.recv() == Text("next")
            with pytest.raises(statews.WebSocketError, match="discarded"):
                await message.__anext__()
            with pytest.raises(statews.ConnectionClosed):
                await ws.recv()


async def test_recv_abandons_an_open_stream(nursery: trio.Nursery) -> None:
    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(server_frame(B, b"a", fin=False))
        await trio.sleep(0.05)
        await stream.send_all(server_frame(C, b"b") + server_frame(B, b"second"))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            message = ws.recv_stream()
            assert await message.__anext__() == b"a"
            assert await ws.recv() == Binary(b"second")


async def test_control_frames_between_pieces_are_left_for_recv(nursery: trio.Nursery) -> None:
    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(server_frame(T, b"ab", fin=False) + server_frame(PING, b"p"))
        await trio.sleep(0.05)
        await stream.send_all(server_frame(C, b"cd") + server_frame(T, b"after"))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send), control_frames=True) as ws:
            assert "".join(await collect(ws)) == "abcd"  # type: ignore[arg-type]
            assert await ws.recv() == Ping(b"p")
            assert await ws.recv() == Text("after")


async def test_messages_before_the_close_then_connection_closed(nursery: trio.Nursery) -> None:
    async def send(stream: trio.SocketStream) -> None:
        await stream.send_all(server_frame(T, b"last") + close_frame(1001))

    with trio.fail_after(5):
        async with statews.open_websocket(await raw_peer(nursery, send)) as ws:
            assert await collect(ws) == ["last"]
            with pytest.raises(statews.ConnectionClosed) as info:
                await collect(ws)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1001


async def test_recv_stream_in_active_mode(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), active=True) as ws:
            with pytest.raises(statews.ActiveModeError):
                ws.recv_stream()
