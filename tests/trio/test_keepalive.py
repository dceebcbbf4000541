"""Keepalive: pings every ``ping_interval``, 1011 when a pong is ``ping_timeout`` late,
``ping()`` latency, and no ping between the fragments of a streamed message.

Peers: a scripted raw server that records every frame the client sends (with the time
it arrived) and answers pings as told, and a real `websockets` server whose own frame
log shows what it received.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trio
from peers import FrameReader, accept_upgrade, serve_raw, start_ws_server
from wire import close_code, server_frame

import statews
from statews import Binary, Close, Text
from statews.core.errors import ConnectionClosedError

PING, PONG, CLOSE, CONTINUATION = 0x9, 0xA, 0x8, 0x0


@dataclass
class Peer:
    """What the raw server saw: (arrival time, opcode, fin, payload) per client frame."""

    url: str = ""
    frames: list[tuple[float, int, bool, bytes]] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float | None = None

    def times(self, opcode: int) -> list[float]:
        return [at for at, op, _, _ in self.frames if op == opcode]


async def start_peer(
    nursery: trio.Nursery,
    *,
    answer_pings: bool = True,
    pong_delay: float = 0.0,
    read_pause: float = 0.0,
) -> Peer:
    """A raw server that records frames, answers pings with pongs (after ``pong_delay``)
    unless told not to, pauses ``read_pause`` after each frame (a slow reader), and
    echoes the client's Close."""
    peer = Peer()
    sending = trio.Lock()  # pongs go out from their own tasks

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        reader = FrameReader(stream)
        async with trio.open_nursery() as pongs:
            while (frame := await reader.frame()) is not None:
                opcode, fin, payload = frame
                peer.frames.append((trio.current_time(), opcode, fin, payload))
                if opcode == PING and answer_pings:
                    pongs.start_soon(pong, stream, payload)
                elif opcode == CLOSE:
                    peer.close_code = close_code(payload)
                    peer.closed_at = trio.current_time()
                    pongs.cancel_scope.cancel()
                    async with sending:
                        await stream.send_all(server_frame(CLOSE, payload[:2]))
                    return
                await trio.sleep(read_pause)

    async def pong(stream: trio.SocketStream, payload: bytes) -> None:
        await trio.sleep(pong_delay)
        async with sending:
            await stream.send_all(server_frame(PONG, payload))

    peer.url = (await serve_raw(nursery, script)).url()
    return peer


async def test_pings_every_interval_and_answered(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=0.05, ping_timeout=1) as ws:
            await trio.sleep(0.4)
            assert ws.state == "connected"
    pings = [(at, payload) for at, op, _, payload in peer.frames if op == PING]
    assert 4 <= len(pings) <= 9
    assert len({payload for _, payload in pings}) == len(pings)  # a fresh payload each
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(pings)]
    assert min(gaps) >= 0.045  # the interval is between pings, never a burst
    assert peer.close_code == 1000


async def test_websockets_server_sees_pings(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("tests.keepalive.server")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    server = await start_ws_server(nursery, logger=logger)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), ping_interval=0.05, ping_timeout=0.5) as ws:
            await trio.sleep(0.3)
            await ws.send(Text("still here"))
            assert await ws.recv() == Text("still here")
    received = [r for r in caplog.records if r.msg == "< %s" and isinstance(r.args, tuple)]
    pings = [r for r in received if str(r.args[0]).startswith("PING")]  # type: ignore[index]
    pongs = [r for r in caplog.records if r.msg == "> %s" and "PONG" in r.getMessage()]
    assert len(pings) >= 3
    assert len(pongs) >= len(pings) - 1  # the last one may still be in flight at close
    await server.server.aclose()


async def test_no_pong_fails_with_1011(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, answer_pings=False)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, peer.url, ping_interval=0.05, ping_timeout=0.1)
            await ws.connect()
            begin = trio.current_time()
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            elapsed = trio.current_time() - begin
            assert ws.state == "closed"
    assert (info.value.rcvd or info.value.sent) == Close(1011, "keepalive ping timeout") or (
        info.value.rcvd is not None and info.value.rcvd.code == 1011
    )
    assert isinstance(info.value.__cause__, TimeoutError)
    assert "keepalive" in str(info.value.__cause__)
    assert peer.close_code == 1011  # on the wire
    assert 0.14 <= elapsed < 1.0  # one interval, then the timeout
    assert peer.times(PING), "a ping went out before the close"
    assert peer.closed_at is not None
    assert peer.closed_at - peer.times(PING)[0] >= 0.095


async def test_no_pong_fails_when_the_peer_does_not_echo_the_close(
    nursery: trio.Nursery,
) -> None:
    async def deaf(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        await trio.sleep(10)  # reads nothing, answers nothing

    server = await serve_raw(nursery, deaf)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(
                inner, server.url(), ping_interval=0.05, ping_timeout=0.05, close_timeout=0.2
            )
            await ws.connect()
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
    assert info.value.code == 1006  # RFC 6455 7.1.5: no Close received
    assert info.value.rcvd is None
    assert info.value.sent is not None
    assert info.value.sent.code == 1011


async def test_no_timeout_means_waiting(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, answer_pings=False)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=0.05, ping_timeout=None) as ws:
            await trio.sleep(0.3)
            assert ws.state == "connected"
    # The first ping is never answered, so the loop waits on it: one ping only.
    assert len(peer.times(PING)) == 1


async def test_no_interval_means_no_pings(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=None) as ws:
            await trio.sleep(0.2)
            await ws.send(Binary(b"x"))
    assert peer.times(PING) == []


async def test_slow_pong_within_timeout_is_fine(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, pong_delay=0.1)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=0.05, ping_timeout=0.3) as ws:
            await trio.sleep(0.5)
            assert ws.state == "connected"
    assert len(peer.times(PING)) >= 2
    assert peer.close_code == 1000


async def test_ping_returns_the_latency(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, pong_delay=0.1)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=None) as ws:
            latency = await ws.ping(b"payload")
            assert 0.1 <= latency < 1.0
            latencies = []

            async def one(data: bytes) -> None:
                latencies.append(await ws.ping(data))

            async with trio.open_nursery() as pings:
                for i in range(3):
                    pings.start_soon(one, b"p%d" % i)
            assert len(latencies) == 3
            assert all(0.1 <= x < 1.0 for x in latencies)
    assert next(payload for _, op, _, payload in peer.frames if op == PING) == b"payload"


async def test_a_cancelled_ping_forgets_its_payload(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, answer_pings=False)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=None) as ws:
            for _ in range(3):  # the same payload again: nobody waits for the last one
                with trio.move_on_after(0.05) as waited:
                    await ws.ping(b"same")
                assert waited.cancelled_caught
            assert ws.stats.pings_sent == 3
    assert [payload for _, op, _, payload in peer.frames if op == PING] == [b"same"] * 3


async def test_ping_fails_when_the_connection_ends(nursery: trio.Nursery) -> None:
    peer = await start_peer(nursery, answer_pings=False)
    with trio.fail_after(5):
        async with statews.open_websocket(peer.url, ping_interval=None) as ws:
            outcome: list[BaseException] = []

            async def waiting_ping() -> None:
                try:
                    await ws.ping()
                except statews.ConnectionClosed as exc:
                    outcome.append(exc)

            async with trio.open_nursery() as tasks:
                tasks.start_soon(waiting_ping)
                await trio.sleep(0.05)
                await ws.close()
            assert len(outcome) == 1


def fragment_positions(peer: Peer) -> tuple[int, int]:
    """Indices (in ``peer.frames``) of the first and the last frame of the streamed
    message: a data frame without FIN, up to the continuation frame with FIN."""
    first = next(i for i, (_, op, fin, _) in enumerate(peer.frames) if op in (1, 2) and not fin)
    last = next(
        i
        for i, (_, op, fin, _) in enumerate(peer.frames)
        if i > first and op == CONTINUATION and fin
    )
    return first, last


async def test_no_ping_between_fragments(nursery: trio.Nursery) -> None:
    # A slow reader and write_limit=1 make every fragment wait for the writer, so the
    # message takes many keepalive intervals to go out.
    peer = await start_peer(nursery, read_pause=0.0005)
    chunks = [bytes([i % 256]) * 512 for i in range(400)]
    with trio.fail_after(10):
        async with statews.open_websocket(
            peer.url, ping_interval=0.002, ping_timeout=2, write_limit=1, compression=None
        ) as ws:
            await trio.sleep(0.02)  # some pings before the message
            begin = trio.current_time()
            await ws.send_stream(chunks)
            duration = trio.current_time() - begin
            await trio.sleep(0.02)  # and after it
            await ws.send(Binary(b"after"))
    first, last = fragment_positions(peer)
    inside = [op for _, op, _, _ in peer.frames[first : last + 1]]
    assert inside == [2] + [CONTINUATION] * (len(chunks) - 1)
    assert duration > 0.01, "the message must span several keepalive intervals"
    before = [at for at in peer.times(PING) if at < peer.frames[first][0]]
    after = [at for at in peer.times(PING) if at > peer.frames[last][0]]
    assert before, "keepalive pings before the message"
    assert after, "keepalive pings resume after the message"
    payload = b"".join(p for _, op, _, p in peer.frames[first : last + 1])
    assert payload == b"".join(chunks)


async def test_no_ping_while_a_streamed_message_waits_for_its_source(
    nursery: trio.Nursery,
) -> None:
    peer = await start_peer(nursery)

    async def slow_source() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 100
            await trio.sleep(0.03)  # the application is producing the next chunk

    with trio.fail_after(5):
        async with statews.open_websocket(
            peer.url, ping_interval=0.01, ping_timeout=1, compression=None
        ) as ws:
            await trio.sleep(0.03)
            await ws.send_stream(slow_source())
            await trio.sleep(0.03)
    first, last = fragment_positions(peer)
    inside = [op for _, op, _, _ in peer.frames[first : last + 1]]
    assert inside == [2, CONTINUATION, CONTINUATION, CONTINUATION, CONTINUATION]
    assert peer.frames[last][0] - peer.frames[first][0] >= 0.1  # ten keepalive intervals
    assert any(at < peer.frames[first][0] for at in peer.times(PING))
    assert any(at > peer.frames[last][0] for at in peer.times(PING))
