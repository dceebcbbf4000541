"""The connection against a real `websockets` server on loopback: the hackney_ws API."""

from __future__ import annotations

import json

import pytest
import trio
from peers import WsServer, start_ws_server

import statews
from statews import Binary, Close, Pong, Text


async def test_echo_text_binary_empty(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            assert ws.state == "connected"
            for frame in (Text("héllo ✓"), Binary(b"\x00\xff" * 10), Text(""), Binary(b"")):
                await ws.send(frame)
                assert await ws.recv() == frame
        assert ws.state == "closed"


async def test_hackney_frame_forms(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            await ws.send(("text", "a"))
            await ws.send(("text", b"b"))
            await ws.send(("binary", b"c"))
            assert [await ws.recv() for _ in range(3)] == [Text("a"), Text("b"), Binary(b"c")]
            with pytest.raises(TypeError):
                await ws.send(("nonsense", 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 20 * 2**20])
async def test_large_messages(ws_server: WsServer, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with trio.fail_after(20):
        async with statews.open_websocket(
            ws_server.url(), max_message_size=None, max_frame_size=None
        ) as ws:
            await ws.send(Binary(payload))
            assert await ws.recv() == Binary(payload)


async def test_fragmented_send(ws_server: WsServer) -> None:
    text = "ü" * 5000
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), fragment_size=1000) as ws:
            await ws.send(Text(text))
            assert await ws.recv() == Text(text)
            await ws.send_stream([b"ab", b"cd", b"ef"])
            assert await ws.recv() == Binary(b"abcdef")
            await ws.send_stream(["ab", "cé"])
            assert await ws.recv() == Text("abcé")


async def test_ping_pong(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            latency = await ws.ping(b"abc")
            assert 0 <= latency < 5
            latency = await ws.ping()
            assert 0 <= latency < 5
        async with statews.open_websocket(ws_server.url(), control_frames=True) as ws:
            await ws.send(("ping",))
            await ws.send(("ping", b"x"))
            assert await ws.recv() == Pong(b"")
            assert await ws.recv() == Pong(b"x")
            await ws.send("ping")  # a bare string is always text
            assert await ws.recv() == Text("ping")


async def test_subprotocol_and_headers(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, subprotocols=["chat.v2"])
    with trio.fail_after(5):
        async with statews.open_websocket(
            server.url("/headers"),
            protocols=["chat.v1", "chat.v2"],
            headers={"X-Trace": "t-1", "Authorization": "Bearer x"},
        ) as ws:
            assert ws.subprotocol == "chat.v2"
            assert ("Sec-WebSocket-Protocol", "chat.v2") in ws.response_headers
            message = await ws.recv()
            assert isinstance(message, Text)
            headers = {k.lower(): v for k, v in json.loads(message.data)}
            assert headers["x-trace"] == "t-1"
            assert headers["authorization"] == "Bearer x"
            assert headers["sec-websocket-protocol"] == "chat.v1, chat.v2"
    await server.server.aclose()


async def test_peername_sockname(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            assert ws.peername() == ("127.0.0.1", ws_server.port)
            host, port = ws.sockname()
            assert host == "127.0.0.1"
            assert port > 0
        with pytest.raises(statews.InvalidStateError, match="'closed'"):
            ws.peername()


async def test_ipv6(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, host="::1")
    with trio.fail_after(5):
        async with statews.open_websocket(server.url()) as ws:
            await ws.send(Text("v6"))
            assert await ws.recv() == Text("v6")
            assert ws.peername() == ("::1", server.port)
    await server.server.aclose()


async def test_client_close_with_code(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url("/wait-close"))
            assert ws.state == "idle"
            await ws.connect()
            await ws.close(4001, "bye")
            assert ws.state == "closed"
            reason = ws.closed_reason
            assert isinstance(reason, statews.ConnectionClosedError)  # 4001 is not a "normal" code
            assert (reason.code, reason.reason) == (4001, "bye")
            await ws.close()  # idempotent
            with pytest.raises(statews.ConnectionClosed):
                await ws.send(Text("late"))


async def test_server_close_is_reported_after_messages(ws_server: WsServer) -> None:
    with trio.fail_after(10):
        async with statews.open_websocket(ws_server.url("/send?n=1000")) as ws:
            received = [await ws.recv() for _ in range(1000)]
            assert [int.from_bytes(m.data[:4], "big") for m in received] == list(range(1000))  # type: ignore[union-attr]
            with pytest.raises(statews.ConnectionClosedOK) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1000, "done")
            assert info.value.rcvd == Close(1000, "done")


async def test_server_close_code_and_reason(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url("/close?code=4000&reason=go")) as ws:
            with pytest.raises(statews.ConnectionClosed) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (4000, "go")
            assert ws.state == "closed"


async def test_recv_timeout_leaves_connection_usable(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            with pytest.raises(statews.RecvTimeout):
                await ws.recv(timeout=0.05)
            with pytest.raises(TimeoutError):
                await ws.recv(timeout=0.01)
            await ws.send(Text("still here"))
            assert await ws.recv() == Text("still here")


async def test_active_true_delivers_to_owner(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            send, receive = trio.open_memory_channel[statews.Delivery](10)
            ws = await statews.start_link(
                nursery, ws_server.url("/send?n=5"), owner=send, active=True
            )
            await ws.connect()
            with pytest.raises(statews.ActiveModeError):
                await ws.recv()
            got = [await receive.receive() for _ in range(6)]
            assert all(isinstance(d, statews.Message) and d.ws is ws for d in got[:5])
            assert got[5] == statews.Closed(ws, 1000, "done")


async def test_active_once_then_passive(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url("/send?n=3"), active="once")
            await ws.connect()
            assert ws.mailbox is not None
            first = await ws.mailbox.receive()
            assert isinstance(first, statews.Message)
            assert int.from_bytes(first.frame.data[:4], "big") == 0  # type: ignore[union-attr]
            second = await ws.recv()  # back to passive after one delivery
            assert int.from_bytes(second.data[:4], "big") == 1  # type: ignore[union-attr]
            await ws.setopts(active="once")
            third = await ws.mailbox.receive()
            assert isinstance(third, statews.Message)
            assert int.from_bytes(third.frame.data[:4], "big") == 2  # type: ignore[union-attr]
            with pytest.raises(statews.ConnectionClosedOK):
                await ws.recv()


async def test_controlling_process_loses_nothing(ws_server: WsServer) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            first_send, first_receive = trio.open_memory_channel[statews.Delivery](0)
            second_send, second_receive = trio.open_memory_channel[statews.Delivery](100)
            ws = await statews.start_link(
                nursery, ws_server.url("/send?n=50"), owner=first_send, active=True
            )
            await ws.connect()
            seen = [await first_receive.receive() for _ in range(20)]
            await ws.controlling_process(second_send)
            while not isinstance(item := await second_receive.receive(), statews.Closed):
                seen.append(item)
            numbers = [int.from_bytes(m.frame.data[:4], "big") for m in seen]  # type: ignore[union-attr]
            assert numbers == list(range(50))


async def test_invalid_state_errors_name_the_state(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url())
            with pytest.raises(statews.InvalidStateError, match="'idle'"):
                await ws.send(Text("too early"))
            with pytest.raises(statews.InvalidStateError, match="'idle'"):
                ws.peername()
            await ws.connect()
            with pytest.raises(statews.InvalidStateError, match="'connected'"):
                await ws.connect()
            await ws.send(Close(1000, ""))
            assert ws.state in ("closing", "closed")
            if ws.state == "closing":
                with pytest.raises(statews.InvalidStateError, match="'closing'"):
                    await ws.send(Text("too late"))
            await ws.close()


async def test_close_idle_connection(ws_server: WsServer) -> None:
    async with trio.open_nursery() as nursery:
        ws = await statews.start_link(nursery, ws_server.url())
        await ws.close()
        assert ws.state == "closed"
        with pytest.raises(statews.InvalidStateError):
            await ws.connect()


async def test_cancelling_the_nursery_closes_the_connection(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url())
            await ws.connect()
            nursery.cancel_scope.cancel()
        assert ws.state == "closed"


async def test_concurrent_senders_never_interleave(ws_server: WsServer) -> None:
    messages = {f"{task}-{i}" * 50 for task in range(8) for i in range(50)}
    with trio.fail_after(10):
        async with statews.open_websocket(ws_server.url(), fragment_size=7) as ws:

            async def sender(task: int) -> None:
                for i in range(50):
                    await ws.send(Text(f"{task}-{i}" * 50))

            async with trio.open_nursery() as senders:
                for task in range(8):
                    senders.start_soon(sender, task)
            got = {(await ws.recv()).data for _ in range(len(messages))}  # type: ignore[union-attr]
            assert got == messages
