"""No loss: every message the server sent before its Close reaches the application, in
order and once, then the end; in passive mode, active mode, active "once", and across
changes of owner and of mode half way.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import pytest
import trio
from peers import FrameReader, accept_upgrade, serve_raw
from wire import close_frame, server_frame

import statews
from statews import Binary, Closed, Delivery, Frame, Message, Text

N = 500
OPTIONS: dict[str, Any] = {
    "compression": None,
    "ping_interval": None,
    "close_timeout": 0.5,
    "max_queue": 8,
}
EXPECTED: list[Frame] = [Text(str(i)) if i % 2 else Binary(i.to_bytes(4, "big")) for i in range(N)]


async def _serve_burst(nursery: trio.Nursery, close_codes: list[int | None]) -> str:
    """A server that sends :data:`EXPECTED` in random pieces, then Close 1000."""
    rng = random.Random(500)
    wire = b"".join(
        server_frame(0x1, m.data.encode()) if isinstance(m, Text) else server_frame(0x2, m.data)
        for m in EXPECTED
        if isinstance(m, Text | Binary)
    ) + close_frame(1000, b"done")

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        pos = 0
        while pos < len(wire):
            step = rng.choice([1, 7, 100, 1500, 9000])
            await stream.send_all(wire[pos : pos + step])
            pos += step
            if rng.random() < 0.05:
                await trio.sleep(0.001)
        close_codes.append(await FrameReader(stream).close_code())

    server = await serve_raw(nursery, script)
    return server.url()


def _frames(items: list[Delivery], ws: statews.WebSocket) -> list[Frame]:
    """The messages of ``items``, checking each is for ``ws`` and ends with one Closed."""
    *messages, end = items
    assert isinstance(end, Closed), end
    assert (end.ws, end.code, end.reason) == (ws, 1000, "done")
    frames = []
    for item in messages:
        assert isinstance(item, Message), item
        assert item.ws is ws
        frames.append(item.frame)
    return frames


async def _until_end(channel: trio.MemoryReceiveChannel[Delivery], into: list[Delivery]) -> None:
    while not isinstance(into[-1] if into else None, Closed):
        into.append(await channel.receive())


async def _read_all(ws: statews.WebSocket, into: list[Frame]) -> None:
    while True:
        into.append(await ws.recv())


async def test_passive(nursery: trio.Nursery) -> None:
    codes: list[int | None] = []
    url = await _serve_burst(nursery, codes)
    got: list[Frame] = []
    with trio.fail_after(10):
        async with statews.open_websocket(url, **OPTIONS) as ws:
            with pytest.raises(statews.ConnectionClosedOK) as info:
                await _read_all(ws, got)
            assert (info.value.code, info.value.reason) == (1000, "done")
    assert got == EXPECTED
    assert codes == [1000]


@pytest.mark.parametrize("switch_owner", [False, True], ids=["same-owner", "owner-changes"])
async def test_active_true(nursery: trio.Nursery, switch_owner: bool) -> None:
    codes: list[int | None] = []
    url = await _serve_burst(nursery, codes)
    items: list[Delivery] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, url, active=True, **OPTIONS)
            first = ws.mailbox
            assert first is not None
            await ws.connect()
            while len(items) < N // 2:
                items.append(await first.receive())
                if len(items) % 50 == 0:
                    await trio.sleep(0.002)  # the mailbox fills; the deliverer waits
            if switch_owner:
                await trio.sleep(0.01)  # the old mailbox is full: a delivery is pending
                send, receive = trio.open_memory_channel[Delivery](3)
                await ws.controlling_process(send)
                # What was already in the old owner's mailbox was delivered to it.
                while True:
                    try:
                        items.append(first.receive_nowait())
                    except trio.WouldBlock:
                        break
                await _until_end(receive, items)
            else:
                await _until_end(first, items)
            assert ws.state == "closed"
    assert _frames(items, ws) == EXPECTED
    assert codes == [1000]


@pytest.mark.parametrize("switch_owner", [False, True], ids=["same-owner", "owner-changes"])
async def test_active_once(nursery: trio.Nursery, switch_owner: bool) -> None:
    codes: list[int | None] = []
    url = await _serve_burst(nursery, codes)
    items: list[Delivery] = []
    rng = random.Random(1)
    with trio.fail_after(20):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, url, active="once", **OPTIONS)
            mailbox = ws.mailbox
            assert mailbox is not None
            await ws.connect()
            while not items or not isinstance(items[-1], Closed):
                items.append(await mailbox.receive())
                # One delivery per "once": nothing else arrives until it is set again.
                await trio.sleep(0 if rng.random() < 0.9 else 0.001)
                with pytest.raises(trio.WouldBlock):
                    mailbox.receive_nowait()
                if switch_owner and len(items) == N // 2:
                    send, mailbox = trio.open_memory_channel[Delivery](1)
                    await ws.controlling_process(send)
                if not isinstance(items[-1], Closed):
                    await ws.setopts(active="once")
    assert _frames(items, ws) == EXPECTED
    assert codes == [1000]


@pytest.mark.parametrize("first", ["passive", "active"])
async def test_mode_changes_half_way(
    nursery: trio.Nursery, first: Literal["passive", "active"]
) -> None:
    """Thirds in alternating modes: passive/active/passive or active/passive/active."""
    codes: list[int | None] = []
    url = await _serve_burst(nursery, codes)
    got: list[Frame] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, url, active=first == "active", **OPTIONS)
            mailbox = ws.mailbox
            assert mailbox is not None
            await ws.connect()
            active = first == "active"
            third = 0
            while True:
                if len(got) >= (third + 1) * (N // 3) and third < 2:
                    third += 1
                    active = not active
                    await ws.setopts(active=active)
                    if not active:  # what the mailbox already holds was delivered
                        while True:
                            try:
                                item = mailbox.receive_nowait()
                            except trio.WouldBlock:
                                break
                            assert isinstance(item, Message)
                            got.append(item.frame)
                if active:
                    item = await mailbox.receive()
                    if isinstance(item, Closed):
                        assert item.code == 1000
                        break
                    assert isinstance(item, Message)
                    got.append(item.frame)
                else:
                    try:
                        got.append(await ws.recv())
                    except statews.ConnectionClosedOK:
                        break
            assert third == 2
    assert got == EXPECTED
    assert codes == [1000]
