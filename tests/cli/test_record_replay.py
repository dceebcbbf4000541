"""Record and replay: ``statews connect --record`` against real servers, replayed by
``statews serve --replay`` (a subprocess) and by :mod:`statews.testing` (in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from peers import WsServer
from test_cli import ENV, ROOT, err, statews

import statews as sw
from statews.cli.transcript import FORMAT, VERSION, TranscriptError, read_transcript
from statews.testing import REPLAY_MISMATCH, echo_server, replay_server


def lines(*records: dict[str, object]) -> str:
    header = {"kind": "header", "format": FORMAT, "version": VERSION}
    handshake = {"kind": "handshake", "t": 0, "url": "ws://127.0.0.1/"}
    return "".join(json.dumps(r) + "\n" for r in (header, handshake, *records))


def message(t: float, direction: str, data: str) -> dict[str, object]:
    return {"kind": "message", "t": t, "direction": direction, "type": "text", "data": data}


ECHO = lines(
    message(0.0, "out", "hello"),
    message(0.01, "in", "hello"),
    {"kind": "close", "t": 0.02, "direction": "out", "code": 1000, "reason": ""},
)


async def talk(url: str, *texts: str) -> tuple[list[sw.Frame], int, str]:
    """Send ``texts``, receive as many messages (or until the end), close."""
    received: list[sw.Frame] = []
    with trio.fail_after(10):
        async with sw.open_websocket(url) as ws:
            try:
                for text in texts:
                    await ws.send(text)
                for _ in texts:
                    received.append(await ws.recv())
                await ws.close()
            except sw.ConnectionClosed:
                pass
            closed = ws.closed_reason
    assert closed is not None
    return received, closed.code, closed.reason


async def record(tmp_path: Path, url: str, *args: str) -> Path:
    path = tmp_path / "session.jsonl"
    result = await statews("connect", url, "--record", str(path), *args)
    assert result.returncode == 0, err(result)
    return path


async def serve_command(*args: str) -> tuple[trio.Process, str]:
    server = await trio.lowlevel.open_process(
        [sys.executable, "-m", "statews", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    assert server.stdout is not None
    line = b""
    with trio.fail_after(10):
        while not line.endswith(b"\n"):
            chunk = await server.stdout.receive_some(100)
            assert chunk, "statews serve exited before printing its port"
            line += chunk
    return server, f"ws://127.0.0.1:{int(line)}/"


async def stop(server: trio.Process) -> bytes:
    server.terminate()
    with trio.move_on_after(5):
        await server.wait()
    if server.returncode is None:
        server.kill()
        await server.wait()
    assert server.stderr is not None
    with trio.fail_after(5):
        return b"".join([chunk async for chunk in server.stderr])


# --- the round trip --------------------------------------------------------------------


async def test_a_recorded_session_replays_in_process(ws_server: WsServer, tmp_path: Path) -> None:
    url = ws_server.url("/echo?token=secret-value")
    path = await record(tmp_path, url, "--send", "one", "--send", "two", "-b", "-H", "Cookie: c=1")
    text = path.read_text()
    assert "secret-value" not in text
    assert "c=1" not in text
    transcript = read_transcript(path)
    assert "token=***" in transcript.handshake.url
    assert ("Cookie", "***") in transcript.handshake.request_headers
    assert [r.direction for r in transcript.records] == ["out", "out", "in", "in", "out"]
    async with replay_server(path, fast=True) as server:
        received, code, _ = await talk(server.url, "x")  # a different client: strict fails
        assert code == REPLAY_MISMATCH
        assert received == []
    assert [str(d) for d in server.differences] == [
        "line 3: expected binary 3 bytes 6f6e65, got text 'x'"
    ]
    async with replay_server(path, fast=True) as server:
        with trio.fail_after(10):
            async with sw.open_websocket(server.url) as ws:
                await ws.send(b"one")
                await ws.send(b"two")
                assert await ws.recv() == sw.Binary(b"one")
                assert await ws.recv() == sw.Binary(b"two")
                await ws.close()
                assert ws.closed_reason is not None
                assert ws.closed_reason.code == 1000
    assert server.differences == []


async def test_a_recorded_session_replays_with_statews_serve(tmp_path: Path) -> None:
    async with echo_server() as echo:
        path = await record(tmp_path, echo.url, "--send", "a", "--send", "b", "--json")
        original = await statews("connect", echo.url, "--send", "a", "--send", "b", "--json")
    server, url = await serve_command("--replay", str(path))
    try:
        replayed = await statews("connect", url, "--send", "a", "--send", "b", "--json")
        diverged = await statews("connect", url, "--send", "a", "--send", "c", "--json")
    finally:
        log = await stop(server)

    def body(result: subprocess.CompletedProcess[bytes]) -> list[object]:
        return [json.loads(line) for line in result.stdout.splitlines()][1:]  # not the URL

    assert replayed.returncode == 0, err(replayed)
    assert body(replayed) == body(original)
    assert body(replayed)[-1] == {"event": "closed", "code": 1000, "reason": ""}
    assert diverged.returncode == 5
    assert body(diverged)[-1] == {
        "event": "closed",
        "code": REPLAY_MISMATCH,
        "reason": "replay: line 4: expected text 'b', got text 'c'",
    }
    assert b"replay: line 4: expected text 'b', got text 'c'" in log


# --- modes -----------------------------------------------------------------------------


async def test_loose_mode_ignores_what_the_client_sends(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(ECHO)
    async with replay_server(path, fast=True, loose=True) as server:
        received, code, _ = await talk(server.url, "something else")
    assert received == [sw.Text("hello")]
    assert code == 1000
    assert server.differences == []
    async with replay_server(path, fast=True) as server:
        received, code, reason = await talk(server.url, "something else")
    assert code == REPLAY_MISMATCH
    assert "expected text 'hello', got text 'something else'" in reason
    assert len(server.differences) == 1


async def test_a_client_closing_early_is_a_difference(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(ECHO)
    async with replay_server(path, fast=True) as server:
        await talk(server.url)  # closes at once
    assert [str(d) for d in server.differences] == ["line 3: expected text 'hello', got close 1000"]


async def test_the_server_side_close_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        lines(
            message(0.0, "in", "welcome"),
            {"kind": "close", "t": 0.0, "direction": "in", "code": 1001, "reason": "bye"},
        )
    )
    async with replay_server(path) as server:
        with trio.fail_after(10):
            async with sw.open_websocket(server.url) as ws:
                assert await ws.recv() == sw.Text("welcome")
                with pytest.raises(sw.ConnectionClosed):
                    await ws.recv()
                assert ws.closed_reason is not None
                assert (ws.closed_reason.code, ws.closed_reason.reason) == (1001, "bye")
    assert server.differences == []


async def test_recorded_delays_are_kept_unless_fast(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(lines(message(0.3, "in", "first"), message(0.6, "in", "second")))
    async with replay_server(path) as server:
        with trio.fail_after(10):
            async with sw.open_websocket(server.url) as ws:
                start = trio.current_time()
                assert await ws.recv() == sw.Text("first")
                first = trio.current_time() - start
                assert await ws.recv() == sw.Text("second")
                second = trio.current_time() - start
    assert first >= 0.25
    assert second >= 0.55
    async with replay_server(path, fast=True) as server:
        received, _, _ = await talk(server.url)
    assert received == []  # nothing asked for: no second measurement, only that it serves


async def test_the_echo_server_helper(nursery: trio.Nursery) -> None:
    async with echo_server() as server:
        assert server.url == f"ws://127.0.0.1:{server.port}/"
        received, code, _ = await talk(server.url, "ping")
    assert received == [sw.Text("ping")]
    assert code == 1000


# --- malformed transcripts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("not json\n", ":1: not JSON"),
        ('{"kind": "header", "format": "other"}\n', "not a transcript"),
        ('{"kind": "header", "format": "statews-transcript", "version": 99}\n', "version 99"),
        (lines()[: lines().index("\n") + 1], "no handshake"),
        (lines({"kind": "frame", "t": 0}), ":3: unknown record kind 'frame'"),
        (lines(message(-1, "in", "x")), "'t' is -1.0"),
        (lines({**message(0, "up", "x")}), "'direction' is 'up'"),
        (lines({**message(0, "in", "x"), "type": "binary", "data": "%%"}), "not valid base64"),
        (lines({"kind": "close", "t": 0, "direction": "in", "code": 5}), "'code' is 5"),
        (
            lines(
                {"kind": "close", "t": 0, "direction": "in", "code": 1000}, message(0, "in", "x")
            ),
            ":4: a record after the close record",
        ),
        (lines({"kind": "message", "t": 0, "direction": "in", "type": "text"}), "without 'data'"),
    ],
)
def test_malformed_transcripts_are_named(text: str, problem: str) -> None:
    with pytest.raises(TranscriptError, match=r"^<transcript>") as caught:
        read_transcript(text.splitlines())
    assert problem in str(caught.value)


async def test_statews_serve_exits_3_on_a_malformed_transcript(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind": "header"}\n')
    result = await statews("serve", "--port", "0", "--replay", str(path))
    assert result.returncode == 3
    assert (
        err(result).strip() == f"statews: {path}:1: not a transcript: the first record"
        " must be a 'statews-transcript' header"
    )
    missing = await statews("serve", "--port", "0", "--replay", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 3
    assert "cannot read" in err(missing)


async def test_record_is_refused_with_reconnect(tmp_path: Path) -> None:
    result = await statews("connect", "ws://127.0.0.1:1/", "--record", "x", "-r")
    assert result.returncode == 2
    assert "--record records one connection" in err(result)
