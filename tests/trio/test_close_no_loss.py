"""Nothing lost at close: every message the peer sent before its Close reaches the
application, whoever closes first and however full the inbox is, or the loss past
``closing_buffer_size`` is counted and reported.

Peers: the websockets server (its handler signals when every echo was handed to its
socket), Node's ``ws`` (it echoes synchronously, so every echo precedes its answer to
our Close), and scripted raw-TCP servers for the bound, the flood and the silent peer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import pytest
import trio
from peers import FrameReader, accept_upgrade, node_echo, serve_raw
from websockets.exceptions import ConnectionClosed as PeerClosed
from websockets.trio.server import ServerConnection, serve
from wire import close_frame, server_frame

import statews
from statews import Close, Closed, ConnectionClosedOK, Delivery, Message, Text

N = 1000
OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "close_timeout": 5}


async def _sent_all(nursery: trio.Nursery, url: str, **options: object) -> statews.WebSocket:
    """A connection to ``url`` that has sent ``Text("0")`` .. ``Text(str(N - 1))``."""
    ws = await statews.start_link(nursery, url, **OPTIONS, **options)
    await ws.connect()
    for i in range(N):
        await ws.send(Text(str(i)))
    return ws


@pytest.fixture(scope="module")
def node_port() -> Iterator[int]:
    with node_echo() as ports:
        yield ports[0]


class CountingEcho:
    """A websockets server echoing every message; ``echoed`` is set once ``n`` echoes
    were handed to the socket (so they precede any answer to our Close)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent = 0
        self.echoed = trio.Event()

    async def handler(self, conn: ServerConnection) -> None:
        try:
            async for message in conn:
                await conn.send(message)
                self.sent += 1
                if self.sent == self.n:
                    self.echoed.set()
        except PeerClosed:
            pass


@pytest.fixture
async def counting_echo(nursery: trio.Nursery) -> AsyncIterator[tuple[str, CountingEcho]]:
    echo = CountingEcho(N)
    server = await nursery.start(
        partial(serve, echo.handler, 0, host="127.0.0.1", compression=None, ping_interval=None)
    )
    port = server.listeners[0].socket.getsockname()[1]
    yield f"ws://127.0.0.1:{port}/", echo
    await server.aclose()


async def _drain(ws: statews.WebSocket) -> tuple[list[str], statews.ConnectionClosed]:
    got: list[str] = []
    while True:
        try:
            frame = await ws.recv()
        except statews.ConnectionClosed as closed:
            return got, closed
        assert isinstance(frame, Text)
        got.append(frame.data)


EXPECTED = [str(i) for i in range(N)]


async def test_issue_example_against_websockets(
    counting_echo: tuple[str, CountingEcho],
) -> None:
    """The issue's program: 1,000 echoes arrived, then close(): all 1,000 come out."""
    url, echo = counting_echo
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            ws = await _sent_all(nursery, url)
            await echo.echoed.wait()
            await ws.close()
            assert ws.state == "closed"
            got, closed = await _drain(ws)
    assert got == EXPECTED
    assert isinstance(closed, ConnectionClosedOK)
    assert (closed.code, closed.dropped_messages, closed.dropped_bytes) == (1000, 0, 0)


@pytest.mark.parametrize("how", ["close", "send_close"])
async def test_node_every_echo_before_close(node_port: int, how: str) -> None:
    """Node echoes each message before it reads our Close: close() right after the
    sends keeps all of them, with close() and with send(Close(...))."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            ws = await _sent_all(nursery, f"ws://127.0.0.1:{node_port}/")
            if how == "close":
                await ws.close()
            else:
                await ws.send(Close(1000, "bye"))
            got, closed = await _drain(ws)
    assert got == EXPECTED
    assert isinstance(closed, ConnectionClosedOK)
    assert closed.sent is not None
    assert closed.sent.code == 1000


async def test_close_from_another_task_while_recv_loops(node_port: int) -> None:
    got: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, f"ws://127.0.0.1:{node_port}/", **OPTIONS)
            await ws.connect()
            done = trio.Event()

            async def reader() -> None:
                nonlocal closed
                got[:], closed = await _drain(ws)
                done.set()

            closed: statews.ConnectionClosed | None = None
            nursery.start_soon(reader)
            for i in range(N):
                await ws.send(Text(str(i)))
            await ws.close()
            await done.wait()
    assert got == EXPECTED
    assert isinstance(closed, ConnectionClosedOK)


async def _deliveries(channel: trio.MemoryReceiveChannel[Delivery]) -> list[Delivery]:
    items: list[Delivery] = []
    while not items or isinstance(items[-1], Message):
        items.append(await channel.receive())
    return items


def _texts(items: list[Delivery]) -> list[str]:
    *messages, end = items
    assert isinstance(end, Closed), end
    assert (end.code, end.dropped_messages) == (1000, 0)
    texts = []
    for item in messages:
        assert isinstance(item, Message)
        assert isinstance(item.frame, Text)
        texts.append(item.frame.data)
    return texts


@pytest.mark.parametrize("active", [True, "once"])
async def test_active_modes_while_closing(node_port: int, active: bool | str) -> None:
    """active=True: everything reaches the owner before Closed. "once": one message to
    the owner, the rest stays for recv()."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            send, receive = trio.open_memory_channel[Delivery](0)
            url = f"ws://127.0.0.1:{node_port}/"
            ws = await _sent_all(nursery, url, owner=send, active=active)
            await ws.close()  # the owner has not read anything yet
            if active is True:
                assert _texts(await _deliveries(receive)) == EXPECTED
                return
            first = await receive.receive()
            assert isinstance(first, Message)
            assert first.frame == Text("0")
            got, closed = await _drain(ws)
            assert got == EXPECTED[1:]
            assert isinstance(closed, ConnectionClosedOK)


async def test_owner_and_mode_changed_during_closing(node_port: int) -> None:
    """Half the messages to one owner, the next to another, the rest by recv(): the
    three together are every message once, in order."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            first_send, first = trio.open_memory_channel[Delivery](0)
            second_send, second = trio.open_memory_channel[Delivery](0)
            url = f"ws://127.0.0.1:{node_port}/"
            ws = await _sent_all(nursery, url, owner=first_send, active=True)
            got: list[str] = []
            close_done = trio.Event()

            async def close() -> None:
                await ws.close()
                close_done.set()

            nursery.start_soon(close)
            for _ in range(300):
                item = await first.receive()
                assert isinstance(item, Message)
                assert isinstance(item.frame, Text)
                got.append(item.frame.data)
            await ws.controlling_process(second_send)
            for _ in range(300):
                item = await second.receive()
                assert isinstance(item, Message)
                assert isinstance(item.frame, Text)
                got.append(item.frame.data)
            await ws.setopts(active=False)
            await close_done.wait()
            rest, closed = await _drain(ws)
    assert got + rest == EXPECTED
    assert isinstance(closed, ConnectionClosedOK)


async def test_peer_closes_first_behind_unread_inbox(node_port: int) -> None:
    """The peer's Close waits behind messages we have not read; then we close too:
    nothing of what came before it is lost."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            ws = await _sent_all(nursery, f"ws://127.0.0.1:{node_port}/")
            await trio.sleep(0.2)  # let echoes pile up behind the full inbox
            await ws.close()
            got, closed = await _drain(ws)
    assert got == EXPECTED
    assert isinstance(closed, ConnectionClosedOK)


# ------------------------------------------------------------------ the bound


def _burst_server(messages: list[bytes]) -> Any:
    """A script that sends ``messages`` (binary) in one write, then answers our Close."""
    wire = b"".join(server_frame(0x2, m) for m in messages)

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream, wire)
        code = await FrameReader(stream).close_code()
        await stream.send_all(close_frame(code or 1000))

    return script


@pytest.mark.parametrize(
    ("limit", "kept", "dropped"),
    [
        (16 * 1000 - 16 * 100, 1000 - 100, 100),  # 100 messages past the bound
        (16 * 1000, 1000, 0),  # exactly at the bound: everything kept
        (16 * 1000 - 1, 999, 1),  # one byte short: the last one dropped
    ],
)
async def test_closing_buffer_bound_both_sides(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, limit: int, kept: int, dropped: int
) -> None:
    """max_queue messages stay in the inbox as before; what is read while closing is
    kept up to closing_buffer_size bytes; past it, counted, reported and logged."""
    messages = [i.to_bytes(4, "big") * 4 for i in range(16 + 1000)]  # 16 bytes each
    server = await serve_raw(nursery, _burst_server(messages))
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(
                inner, server.url(), max_queue=16, closing_buffer_size=limit, **OPTIONS
            )
            await ws.connect()
            await trio.sleep(0.1)  # the burst is in; the inbox holds max_queue messages
            with caplog.at_level(logging.WARNING, logger="statews.connection"):
                await ws.close()
            got: list[bytes] = []
            while True:
                try:
                    frame = await ws.recv()
                except statews.ConnectionClosed as exc:
                    closed = exc
                    break
                assert isinstance(frame, statews.Binary)
                got.append(frame.data)
    assert got == messages[: 16 + kept]
    assert (closed.dropped_messages, closed.dropped_bytes) == (dropped, 16 * dropped)
    assert closed.code == 1000
    warned = [r for r in caplog.records if "closing_buffer_size" in r.getMessage()]
    if dropped:
        assert "dropped" in str(closed)
        assert len(warned) == 1
    else:
        assert "dropped" not in str(closed)
        assert not warned


async def test_bound_reported_in_closed_delivery(nursery: trio.Nursery) -> None:
    messages = [bytes(100) for _ in range(50)]
    server = await serve_raw(nursery, _burst_server(messages))
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            send, receive = trio.open_memory_channel[Delivery](0)
            ws = await statews.start_link(
                inner, server.url(), owner=send, active=True, max_queue=4,
                closing_buffer_size=1000, **OPTIONS,
            )  # fmt: skip
            await ws.connect()
            await trio.sleep(0.1)
            await ws.close()
            items = await _deliveries(receive)
    end = items[-1]
    assert isinstance(end, Closed)
    # 4 in the owner's hands or the inbox, ~1 being sent, 10 kept while closing.
    delivered = len(items) - 1
    assert (end.dropped_messages, end.dropped_bytes) == (50 - delivered, 100 * (50 - delivered))
    assert end.dropped_messages > 0


async def test_flood_while_closing_is_bounded_by_time_and_memory(nursery: trio.Nursery) -> None:
    """A peer that floods data and never answers our Close: close() returns within
    close_timeout, and what was kept stays under the bound."""

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        chunk = server_frame(0x2, bytes(1000)) * 64
        with contextlib.suppress(trio.BrokenResourceError):  # until the client aborts
            while True:
                await stream.send_all(chunk)

    server = await serve_raw(nursery, script)
    limit = 256 * 1024
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            options = OPTIONS | {"close_timeout": 0.5}
            ws = await statews.start_link(inner, server.url(), closing_buffer_size=limit, **options)
            await ws.connect()
            start = trio.current_time()
            await ws.close()
            took = trio.current_time() - start
            kept = 0
            while True:
                try:
                    frame = await ws.recv()
                except statews.ConnectionClosed as exc:
                    closed = exc
                    break
                assert isinstance(frame, statews.Binary)
                kept += len(frame.data)
    assert 0.4 < took < 2.0
    assert kept <= limit + 16 * 1000  # the bound, plus the max_queue messages held before
    assert closed.dropped_messages > 0
    assert closed.code == 1006


async def test_silent_peer_close_within_close_timeout(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await trio.sleep_forever()

    server = await serve_raw(nursery, script)
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), **(OPTIONS | {"close_timeout": 0.3}))
            await ws.connect()
            start = trio.current_time()
            await ws.close()
            assert 0.25 < trio.current_time() - start < 1.5
            assert ws.state == "closed"
