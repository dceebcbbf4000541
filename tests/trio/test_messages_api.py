"""The message API as websockets users expect it, against the websockets server:
``send(str)`` is text, ``send(bytes-like)`` binary, frames check their types when built,
``async for message in ws`` ends quietly on a normal close, and a failed handshake is
named by every later call."""

from __future__ import annotations

from typing import Any, get_args

import pytest
import trio
from peers import WsServer, accept_upgrade, serve_raw
from wire import close_frame, server_frame

import statews
from statews import Binary, Close, Ping, Pong, Text
from statews.core.events import to_frame
from statews.lifecycle import STATES, StateName

OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None}


async def test_send_str_is_text_and_bytes_like_is_binary(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), **OPTIONS) as ws:
            for sent, echoed in [
                ("text", Text("text")),
                ("ping", Text("ping")),  # never a Ping: hackney's atoms are 1-tuples
                ("close", Text("close")),
                (b"\x00\x01", Binary(b"\x00\x01")),
                (bytearray(b"ba"), Binary(b"ba")),
                (memoryview(b"mv"), Binary(b"mv")),
                (Text("frame"), Text("frame")),
                (("text", "tuple"), Text("tuple")),
                (("binary", b"tb"), Binary(b"tb")),
            ]:
                await ws.send(sent)
                assert await ws.recv() == echoed
            assert ws.state == "connected"


@pytest.mark.parametrize(
    ("form", "frame"),
    [
        (("ping",), Ping()),
        (("pong",), Pong()),
        (("close",), Close()),
        (("ping", b"p"), Ping(b"p")),
        (("pong", "p"), Pong(b"p")),
        (("close", 1001, "away"), Close(1001, "away")),
        (("text", b"caf\xc3\xa9"), Text("café")),
        ("ping", Text("ping")),
        (b"ping", Binary(b"ping")),
    ],
)
def test_to_frame_forms(form: Any, frame: statews.Frame) -> None:
    assert to_frame(form) == frame


@pytest.mark.parametrize(
    "bad", [123, None, ("ping", b"x", b"y"), ("close", "1000", ""), (), ("nope", b"")]
)
def test_to_frame_refuses(bad: Any) -> None:
    with pytest.raises(TypeError):
        to_frame(bad)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Text(b"x"), "Text.data"),
        (lambda: Binary("x"), "Binary.data"),
        (lambda: Ping("x"), "Ping.data"),
        (lambda: Pong(1), "Pong.data"),
        (lambda: Close("1000"), "Close.code"),
        (lambda: Close(True), "Close.code"),
        (lambda: Close(1000, b"r"), "Close.reason"),
    ],
)
def test_frames_refuse_wrong_types_when_built(build: Any, field: str) -> None:
    with pytest.raises(TypeError, match=field):
        build()


def test_bytes_like_payloads_become_bytes() -> None:
    assert Binary(bytearray(b"a")).data == b"a"
    assert type(Binary(memoryview(b"a")).data) is bytes
    assert Ping(bytearray(b"p")) == Ping(b"p")


async def test_send_refuses_non_messages_before_any_io(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), **OPTIONS) as ws:
            with pytest.raises(TypeError, match="send\\(\\) takes str"):
                await ws.send(123)  # type: ignore[arg-type]
            await ws.send("still fine")
            assert await ws.recv() == Text("still fine")


async def test_async_for_ends_quietly_on_normal_close(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url("/send?n=5&size=8"), **OPTIONS) as ws:
            got = [message async for message in ws]
    assert [m.data[:4] for m in got if isinstance(m, Binary)] == [
        i.to_bytes(4, "big") for i in range(5)
    ]
    assert len(got) == 5


@pytest.mark.parametrize("code", [1001])
async def test_async_for_ends_quietly_on_going_away(ws_server: WsServer, code: int) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(f"/close?code={code}"), **OPTIONS) as ws:
            assert [message async for message in ws] == []


async def test_async_for_raises_on_abnormal_close(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream, server_frame(0x1, b"one") + server_frame(0x1, b"two"))
        await stream.send_all(close_frame(4000, b"app"))

    server = await serve_raw(nursery, script)
    got: list[statews.Frame] = []
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), **OPTIONS) as ws:
            with pytest.raises(statews.ConnectionClosedError) as caught:  # noqa: PT012
                async for message in ws:
                    got.append(message)
    assert got == [Text("one"), Text("two")]
    assert (caught.value.code, caught.value.reason) == (4000, "app")


def test_state_literal_is_the_declared_states() -> None:
    assert set(get_args(StateName)) == set(STATES)


async def test_timed_out_handshake_is_named_by_later_calls(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    server = await serve_raw(nursery, silent)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), **OPTIONS)
            with pytest.raises(statews.ConnectTimeout):
                await ws.connect(timeout=0.1)
            with pytest.raises(statews.ConnectionClosedError) as caught:
                await ws.send("late")
            with pytest.raises(statews.ConnectionClosedError) as caught_recv:
                await ws.recv()
    for error in (caught.value, caught_recv.value):
        assert "ConnectTimeout: connect and upgrade took longer than 0.1 s" in str(error)
        assert isinstance(error.__cause__, statews.ConnectTimeout)


async def test_mailbox(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url(), active=True, **OPTIONS)
            await ws.connect()
            await ws.send("m")
            item = await ws.mailbox.receive()
            assert isinstance(item, statews.Message)
            assert item.frame == Text("m")
            other, _receive = trio.open_memory_channel[statews.Delivery](1)
            await ws.controlling_process(other)
            with pytest.raises(statews.WebSocketError, match="no mailbox"):
                _ = ws.mailbox
            await ws.close()
