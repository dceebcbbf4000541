"""Observing a connection: lifecycle listeners given to start_link (errors contained),
frame and pong hooks, and ws.stats, against real servers on loopback."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from peers import WsServer, start_ws_server

import statews
from statews import Binary, Text
from statews.core.events import Fragment, Frame

OPTIONS: dict[str, Any] = {"ping_interval": None, "compression": None}


class Recorder:
    def __init__(self) -> None:
        self.transitions: list[tuple[str, str, str]] = []
        self.entered: list[str] = []
        self.received: list[Frame | Fragment] = []
        self.sent: list[Frame] = []
        self.rtts: list[float] = []

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self.transitions.append((source.id, event, target.id))

    def on_enter_state(self, state: Any) -> None:
        self.entered.append(state.id)

    def on_frame_received(self, ws: statews.WebSocket, frame: Frame | Fragment) -> None:
        self.received.append(frame)

    def on_frame_sent(self, ws: statews.WebSocket, frame: Frame) -> None:
        self.sent.append(frame)

    def on_pong(self, ws: statews.WebSocket, rtt: float) -> None:
        self.rtts.append(rtt)


class Broken:
    """Every hook raises: the connection must not notice."""

    def after_transition(self, event: str) -> None:
        raise RuntimeError(f"listener bug at {event}")

    def on_enter_closed(self) -> None:
        raise RuntimeError("listener bug at closed")

    def on_frame_received(self, ws: statews.WebSocket, frame: Frame) -> None:
        raise RuntimeError("frame hook bug")

    def on_frame_sent(self, ws: statews.WebSocket, frame: Frame) -> None:
        raise RuntimeError("frame hook bug")

    def on_pong(self, ws: statews.WebSocket, rtt: float) -> None:
        raise RuntimeError("pong hook bug")


async def test_listeners_and_hooks_see_a_session(ws_server: WsServer) -> None:
    recorder = Recorder()
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), listeners=[recorder], **OPTIONS) as ws:
            await ws.send("a")
            await ws.send(b"b")
            assert await ws.recv() == Text("a")
            assert await ws.recv() == Binary(b"b")
            rtt = await ws.ping()
    assert recorder.transitions == [
        ("idle", "connect", "upgrading"),
        ("upgrading", "upgraded", "connected"),
        ("connected", "close_requested", "closing"),
        ("closing", "close_completed", "closed"),
    ]
    assert recorder.entered == ["idle", "upgrading", "connected", "closing", "closed"]
    assert recorder.sent[:2] == [Text("a"), Binary(b"b")]
    assert recorder.sent[-1] == statews.Close(1000, "")  # close() is seen too
    assert [f for f in recorder.received if isinstance(f, Text | Binary)] == [
        Text("a"),
        Binary(b"b"),
    ]
    assert any(isinstance(f, statews.Pong) for f in recorder.received)
    assert recorder.rtts == [pytest.approx(rtt, abs=0.05)]


async def test_listener_errors_are_contained_and_logged(
    ws_server: WsServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    with trio.fail_after(5), caplog.at_level(logging.ERROR, logger="statews.lifecycle"):
        async with statews.open_websocket(
            ws_server.url(), listeners=[Broken(), recorder], **OPTIONS
        ) as ws:
            await ws.send("still works")
            assert await ws.recv() == Text("still works")
            await ws.ping()
        assert ws.state == "closed"
    assert recorder.transitions[-1] == ("closing", "close_completed", "closed")
    failures = [r.getMessage() for r in caplog.records]
    assert any("after_transition" in m for m in failures)
    assert any("on_enter_closed" in m for m in failures)
    assert any("on_frame_received" in m for m in failures)
    assert any("on_pong" in m for m in failures)


async def test_no_listener_means_no_hooks(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), **OPTIONS) as ws:
            assert ws._hooks is None
            assert ws._inbox.on_frame is None


async def test_stats_count_messages_bytes_frames_and_pings(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url(), **OPTIONS) as ws:
            for _ in range(10):
                await ws.send("héllo")  # 6 bytes of UTF-8
            await ws.send_stream([b"ab", b"cd"])
            for _ in range(11):
                await ws.recv()
            await ws.ping()
            await ws.ping()
            stats = ws.stats
    assert (stats.messages_out, stats.messages_in) == (11, 11)
    assert (stats.payload_bytes_out, stats.payload_bytes_in) == (64, 64)
    # 10 text frames + 2 fragments + 2 pings out; the server echoes the stream whole.
    assert stats.frames_out == 14
    assert stats.frames_in == 11 + 2  # + 2 pongs
    # Masked client frames: 6 header bytes per small frame.
    assert stats.bytes_out == 10 * (6 + 6) + 2 * (6 + 2) + 2 * (6 + 4)
    assert stats.bytes_in == 10 * (2 + 6) + (2 + 4) + 2 * (2 + 4) + 0
    assert (stats.pings_sent, stats.pongs_received) == (2, 2)
    assert stats.last_rtt is not None
    assert stats.mean_rtt is not None
    assert stats.mean_rtt > 0
    assert stats.inbox_depth == 0
    assert set(stats.state_seconds) == {"idle", "upgrading", "connected"}
    assert all(v >= 0 for v in stats.state_seconds.values())
    assert "11 messages in" in stats.summary()


async def test_stats_wire_bytes_below_payload_with_deflate(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, compression="deflate")
    text = "statews " * 1000
    with trio.fail_after(5):
        async with statews.open_websocket(server.url(), ping_interval=None) as ws:
            await ws.send(text)
            assert await ws.recv() == Text(text)
            stats = ws.stats
    assert stats.payload_bytes_in == stats.payload_bytes_out == len(text)
    assert stats.bytes_out < len(text) / 10
    assert stats.bytes_in < len(text) / 10


async def test_stats_reader_paused_and_inbox_depth(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery)
    with trio.fail_after(5):
        async with statews.open_websocket(
            server.url("/send?n=50&size=8"), max_queue=4, **OPTIONS
        ) as ws:
            await trio.sleep(0.2)  # the inbox fills; the reader waits for us
            assert ws.stats.inbox_depth == 4
            got = [await ws.recv() for _ in range(50)]
            stats = ws.stats
    assert len(got) == 50
    assert stats.reader_paused >= 0.15
    assert stats.messages_in == 50


async def test_connect_verbose_prints_the_stats(ws_server: WsServer) -> None:
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "statews", "connect", "-v", ws_server.url()]
    with trio.fail_after(10):
        result = await trio.run_process(
            [*command, "--send", "x", "--send", "yz"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    stats_lines = [line for line in stderr.splitlines() if line.startswith("stats: ")]
    assert len(stats_lines) == 1
    assert stats_lines[0].startswith("stats: 2 messages in (3 bytes")
    assert "2 out (3 bytes" in stats_lines[0]
