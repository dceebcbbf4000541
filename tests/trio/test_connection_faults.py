"""The connection against our scripted raw-TCP server: broken and unusual peers."""

from __future__ import annotations

import pytest
import trio
from peers import FrameReader, accept_upgrade, read_request, serve_raw
from wire import close_frame, server_frame, upgrade_response

import statews
from statews import Text


async def test_rejected_handshake_carries_status_headers_body(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await read_request(stream)
        body = b"no token"
        await stream.send_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url())
            with pytest.raises(statews.HandshakeRejected) as info:
                await ws.connect()
            assert info.value.status == 401
            assert info.value.body == b"no token"
            assert ("WWW-Authenticate", "Bearer") in info.value.headers
            assert ws.state == "closed"


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (upgrade_response("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), "Accept"),
        (upgrade_response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", upgrade=None), "Upgrade"),
        (b"HTTP/1.1 101 Switching Protocols\r\nX: " + b"a" * 70000, "header block exceeds"),
    ],
)
async def test_invalid_handshake(nursery: trio.Nursery, response: bytes, match: str) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(response)
        await trio.sleep(5)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        with pytest.raises(statews.InvalidHandshake, match=match):
            async with statews.open_websocket(server.url()):
                pass


async def test_silent_server_times_out(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await trio.sleep(10)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), connect_timeout=0.3)
            with pytest.raises(statews.ConnectTimeout):
                await ws.connect()
            assert ws.state == "closed"


async def test_connection_refused(nursery: trio.Nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    with trio.fail_after(5):
        with pytest.raises(statews.ConnectError):
            async with statews.open_websocket(f"ws://127.0.0.1:{port}/"):
                pass


async def test_server_never_answers_our_close(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await trio.sleep(10)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), close_timeout=0.2)
            await ws.connect()
            await ws.close()
            assert ws.state == "closed"
            assert ws.closed_reason is not None
            assert ws.closed_reason.rcvd is None
            assert ws.closed_reason.sent == statews.Close(1000, "")


async def test_server_vanishes_mid_frame(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await stream.send_all(server_frame(0x1, b"whole") + server_frame(0x1, b"x" * 100)[:50])

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url()) as ws:
            assert await ws.recv() == Text("whole")
            with pytest.raises(statews.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1006
            assert info.value.rcvd is None


async def test_server_close_while_app_blocks_in_recv(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await trio.sleep(0.2)
        await stream.send_all(close_frame(1001, b"restart"))
        assert await FrameReader(stream).close_code() == 1001

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url()) as ws:
            with pytest.raises(statews.ConnectionClosedOK) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1001, "restart")
    await server.done.wait()


async def test_thousand_messages_then_close_all_delivered(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        burst = b"".join(server_frame(0x1, str(i).encode()) for i in range(1000))
        await stream.send_all(burst + close_frame(1000))
        await FrameReader(stream).close_code()

    server = await serve_raw(nursery, script)
    with trio.fail_after(10):
        async with statews.open_websocket(server.url()) as ws:
            got = [await ws.recv() for _ in range(1000)]
            assert got == [Text(str(i)) for i in range(1000)]
            with pytest.raises(statews.ConnectionClosedOK):
                await ws.recv()


async def test_frames_in_the_same_packet_as_the_101(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream, extra=server_frame(0x1, b"early"))
        await FrameReader(stream).close_code()

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url()) as ws:
            assert await ws.recv() == Text("early")


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (server_frame(0x3), 1002),  # reserved opcode
        (server_frame(0x1, b"\xff"), 1007),  # invalid UTF-8
        (server_frame(0x0, b"x"), 1002),  # continuation without start
        (server_frame(0x9, b"x" * 126), 1002),  # control frame too long
    ],
)
async def test_protocol_error_sends_right_code(
    nursery: trio.Nursery, frames: bytes, code: int
) -> None:
    seen: list[int | None] = []

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await stream.send_all(frames)
        seen.append(await FrameReader(stream).close_code())

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), close_timeout=0.5) as ws:
            with pytest.raises(statews.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1006  # RFC 6455 7.1.5: no Close received
            assert info.value.sent is not None
            assert info.value.sent.code == code
            assert info.value.rcvd is None  # our failure, not a peer's close
            assert isinstance(info.value.__cause__, statews.RemoteProtocolError)
        await server.done.wait()
    assert seen == [code]
