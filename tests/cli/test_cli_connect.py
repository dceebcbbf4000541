"""``statews connect`` flags and endings, run for real against servers on loopback.

Peers: the command's own ``statews serve``, the `websockets` server of peers.py, Node's
``ws`` (tests/node/echo_server.js) and raw scripted servers. Every subprocess is bounded.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from peers import (
    FrameReader,
    WsServer,
    accept_upgrade,
    echo_until_close,
    node_echo,
    read_request,
    serve_raw,
)
from test_cli import ENV, ROOT, assert_one_line_error, err, out, printed_port, records, statews
from wire import close_frame, server_frame

from statews.cli.command import Exit, exit_code_for
from statews.cli.console import parse_message, session_failure
from statews.cli.targets import option_overrides
from statews.core.errors import ConnectionClosedOK
from statews.core.events import Close

SEQ = "".join(f"{i}\n" for i in range(1, 1001)).encode()


# --- peers -----------------------------------------------------------------------------


@pytest.fixture
async def serve_command() -> AsyncIterator[str]:
    """``statews serve`` in a subprocess; yields its URL."""
    command = [sys.executable, "-m", "statews", "serve", "--port", "0"]
    server = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT
    )
    try:
        with trio.fail_after(10):
            port = await printed_port(server)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.terminate()
        with trio.move_on_after(5):
            await server.wait()
        if server.returncode is None:
            server.kill()
            await server.wait()


@pytest.fixture
def node_url() -> Iterator[str]:
    """Node's ws echo server (peers.node_echo); yields its URL."""
    with node_echo() as (port,):
        yield f"ws://127.0.0.1:{port}/"


# --- A: nothing lost at the end of input -----------------------------------------------


async def test_seq_1000_against_statews_serve(serve_command: str) -> None:
    result = await statews("connect", serve_command, stdin=SEQ, timeout=30)
    assert result.returncode == 0, err(result)
    assert result.stdout == SEQ


async def test_seq_1000_against_websockets(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), stdin=SEQ, timeout=30)
    assert result.returncode == 0, err(result)
    assert result.stdout == SEQ


async def test_seq_1000_against_node_ws(node_url: str) -> None:
    result = await statews("connect", node_url, stdin=SEQ, timeout=30)
    assert result.returncode == 0, err(result)
    assert result.stdout == SEQ


async def test_wait_bounds_the_quiet_period(ws_server: WsServer) -> None:
    url = ws_server.url("/wait-close")  # never answers
    started = time.monotonic()
    result = await statews("connect", url, "--wait", "0", stdin=b"x\n")
    quick = time.monotonic() - started
    assert result.returncode == 0, err(result)
    started = time.monotonic()
    result = await statews("connect", url, "--wait", "2.5", stdin=b"x\n")
    slow = time.monotonic() - started
    assert result.returncode == 0, err(result)
    assert slow >= 2.5 > quick


def test_dropped_messages_make_the_exit_status() -> None:
    closed = ConnectionClosedOK(Close(1000), Close(1000), dropped_messages=2, dropped_bytes=10)
    failure = session_failure(closed, we_closed=True)
    assert failure is not None
    assert exit_code_for(failure) is Exit.DROPPED
    assert "2 message(s), 10 bytes" in str(failure)
    assert session_failure(ConnectionClosedOK(Close(1000), Close(1000)), we_closed=True) is None


async def test_dropped_messages_exit_7_end_to_end(nursery: trio.Nursery) -> None:
    """A server that answers our Close only after a burst larger than the closing
    buffer: the command prints what was kept, reports the loss and exits 7."""

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream)
        code = await FrameReader(stream).close_code()
        burst = b"".join(server_frame(0x1, f"late {i}".encode()) for i in range(5))
        await stream.send_all(burst + close_frame(code or 1000))

    server = await serve_raw(nursery, script)
    result = await statews("connect", server.url(), "--wait", "0", "-o", "closing_buffer_size=13")
    assert result.returncode == Exit.DROPPED, err(result)
    assert out(result) == "late 0\nlate 1\n"  # 6 + 6 bytes fit in 13
    assert "3 message(s), 18 bytes" in err(result)


# --- C: output -------------------------------------------------------------------------


async def test_piped_output_is_bare_json(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), "--send", '{"a": 1}')
    assert result.returncode == 0, err(result)
    assert json.loads(out(result)) == {"a": 1}
    jq = shutil.which("jq")
    if jq is not None:
        command = f"{sys.executable} -m statews connect {ws_server.url()} --send '{{\"a\": 1}}'"
        with trio.fail_after(10):
            piped = await trio.run_process(
                ["sh", "-c", f"{command} | {jq} -c ."], capture_stdout=True, env=ENV, cwd=ROOT
            )
        assert piped.stdout == b'{"a":1}\n'


async def test_prefix_flag_and_terminal(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), "--send", "x", "--prefix")
    assert out(result) == "< x\n"
    # stdout a terminal: the prefix by default.
    main, tty = pty.openpty()
    try:
        with trio.fail_after(10):
            process = await trio.run_process(
                [sys.executable, "-m", "statews", "connect", ws_server.url(), "--send", "y"],
                stdout=tty,
                stderr=subprocess.DEVNULL,
                env=ENV,
                cwd=ROOT,
                check=False,
            )
        os.close(tty)
        tty = -1
        data = b""
        while True:
            try:
                chunk = os.read(main, 1024)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(main)
        if tty >= 0:
            os.close(tty)
    assert process.returncode == 0
    assert data.replace(b"\r\n", b"\n") == b"< y\n"


async def test_binary_round_trip(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), "-b", "--send", "héllo")
    assert result.returncode == 0, err(result)
    (line,) = out(result).splitlines()
    assert line.startswith("base64:")
    assert parse_message(line) == "héllo".encode()
    url = ws_server.url("/send?n=3&size=300")
    result = await statews("connect", url, "--count", "3")
    assert [parse_message(line) for line in out(result).splitlines()] == [
        i.to_bytes(4, "big") + b"x" * 296 for i in range(3)
    ]
    assert parse_message("plain text") == "plain text"


# --- D: flags --------------------------------------------------------------------------


async def test_one_message(nursery: trio.Nursery) -> None:
    seen: list[tuple[int, bytes]] = []
    server = await serve_raw(nursery, lambda s: echo_until_close(s, seen))
    result = await statews("connect", server.url(), "-1", stdin=b"first\nsecond\n")
    assert result.returncode == 0, err(result)
    assert out(result) == "first\n"
    assert seen == [(0x1, b"first"), (0x8, (1000).to_bytes(2, "big"))]
    result = await statews("connect", server.url(), "-1", "--send", "a", "--send", "b")
    assert result.returncode == Exit.USAGE
    assert_one_line_error(result, "-1")


async def late_message(stream: trio.SocketStream) -> None:
    """Send "late" 1.5 s after the upgrade (unless the client closed first), then close."""
    await accept_upgrade(stream)
    reader = FrameReader(stream)
    with trio.move_on_after(1.5):
        code = await reader.close_code()
        await stream.send_all(close_frame(code or 1000))
        return
    await stream.send_all(server_frame(0x1, b"late") + close_frame(1000))
    await reader.close_code()


async def test_no_close_stays_connected(nursery: trio.Nursery) -> None:
    server = await serve_raw(nursery, late_message)
    result = await statews("connect", server.url(), "--wait", "0", "-n")
    assert result.returncode == 0, err(result)
    assert out(result) == "late\n"
    result = await statews("connect", server.url(), "--wait", "0")
    assert result.returncode == 0, err(result)
    assert out(result) == ""


async def test_insecure(nursery: trio.Nursery, server_context: Any, tmp_path: Path) -> None:
    from peers import start_ws_server  # noqa: PLC0415

    server = await start_ws_server(nursery, ssl=server_context)
    url = f"wss://127.0.0.1:{server.port}/echo"
    result = await statews("connect", url, "--send", "x")
    assert result.returncode == Exit.HANDSHAKE
    result = await statews("connect", url, "--send", "x", "-k", "-q")
    assert result.returncode == 0, err(result)
    assert out(result) == "x\n"
    assert err(result).splitlines() == [
        "statews: warning: --insecure: the server's TLS certificate and host name are NOT verified"
    ]


async def test_quiet(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), "--send", "x", "-q")
    assert result.returncode == 0
    assert (out(result), err(result)) == ("x\n", "")


async def test_origin_and_bare_host_port(ws_server: WsServer) -> None:
    target = f"127.0.0.1:{ws_server.port}/headers"
    result = await statews("connect", target, "--origin", "https://a.example", "--count", "1")
    assert result.returncode == 0, err(result)
    assert ["Origin", "https://a.example"] in json.loads(out(result))
    result = await statews("connect", f"127.0.0.1:{ws_server.port}", "--send", "hi", "--json")
    assert records(result)[0]["url"] == f"ws://127.0.0.1:{ws_server.port}/"


async def test_show_ping(nursery: trio.Nursery) -> None:
    from peers import start_ws_server  # noqa: PLC0415

    server = await start_ws_server(nursery, ping_interval=0.2)  # websockets pings us
    args = ["connect", server.url(), "--ping-interval", "0.2", "--show-ping", "--wait", "1"]
    result = await statews(*args, "--json", stdin=b"x\n")
    assert result.returncode == 0, err(result)
    kinds = [r.get("type", r.get("event")) for r in records(result)]
    assert "ping" in kinds  # the server's
    assert "pong" in kinds  # our pings' round trips (and their pongs)
    rtts = [r["round_trip"] for r in records(result) if "round_trip" in r]
    assert rtts
    assert all(0 <= t < 1 for t in rtts)
    result = await statews(*args, stdin=b"x\n")
    assert "ping: pong after" in err(result)
    assert any(line.startswith("[ping 4 bytes] ") for line in out(result).splitlines())


async def test_interactive_ping_and_close(serve_command: str) -> None:
    # statews serve echoes what came before our Close; the websockets server may not
    # (its handler's echo fails once the Close that followed "hello" was read).
    stdin = b"/ping\n/ping abc\nhello\n/close 4000 bye\nnever sent\n"
    result = await statews("connect", serve_command, "--json", stdin=stdin)
    assert result.returncode == 0, err(result)
    rows = records(result)
    assert [r for r in rows if r.get("direction") == "in"] == [
        {"direction": "in", "type": "text", "data": "hello"}
    ]
    assert len([r for r in rows if r.get("event") == "pong"]) == 2
    assert rows[-1] == {"event": "closed", "code": 4000, "reason": "bye"}
    result = await statews("connect", serve_command, stdin=b"/close 99\nx\n")
    assert "/close 99" in err(result)  # a bad code is refused, the session goes on
    assert out(result) == "x\n"


async def drop_first_connection(stream: trio.SocketStream, count: list[int]) -> None:
    count.append(1)
    if len(count) == 1:
        await accept_upgrade(stream)
        await FrameReader(stream).frame()
        return  # TCP closed without a Close
    await echo_until_close(stream, [])


async def test_reconnect(nursery: trio.Nursery) -> None:
    attempts: list[int] = []
    server = await serve_raw(nursery, lambda s: drop_first_connection(s, attempts))
    result = await statews("connect", server.url(), "-r", "--send", "hello")
    assert result.returncode == 0, err(result)
    assert out(result) == "hello\n"
    assert len(attempts) == 2
    assert "reconnecting" in err(result)
    attempts.clear()
    result = await statews("connect", server.url(), "--send", "hello")
    assert result.returncode == Exit.PROTOCOL


async def test_option_flags(ws_server: WsServer) -> None:
    url = ws_server.url("/headers")
    result = await statews(
        "connect", url, "-o", "compression=null", "-o", "ping_interval=5", "--count", "1"
    )
    assert result.returncode == 0, err(result)
    names = [name.lower() for name, _ in json.loads(out(result))]
    assert "sec-websocket-extensions" not in names
    result = await statews("connect", url, "-o", "deflate.compress_level=1", "--count", "1")
    assert "sec-websocket-extensions" in out(result).lower()


@pytest.mark.parametrize(
    ("option", "expected", "fragment"),
    [
        ("max_queue=0", Exit.OPTIONS, "max_queue"),
        ("bogus=1", Exit.OPTIONS, "unknown option 'bogus'"),
        ("deflate.compress_level=10", Exit.OPTIONS, "deflate.compress_level"),
        ("ping_interval=soon", Exit.OPTIONS, "ping_interval"),
        ("no-equals", Exit.USAGE, "-o expects key=value"),
    ],
)
async def test_bad_option_flags(option: str, expected: Exit, fragment: str) -> None:
    result = await statews("connect", "ws://127.0.0.1:1/", "-o", option)
    assert result.returncode == expected
    assert_one_line_error(result, fragment)


def test_option_overrides_values() -> None:
    assert option_overrides(
        ["a.b=1", "t=true", "n=null", "s=hello", "f=1.5", "l=[1, 2]", "q='x y'", "d.c=2"]
    ) == {
        "a": {"b": 1},
        "t": True,
        "n": None,
        "s": "hello",
        "f": 1.5,
        "l": [1, 2],
        "q": "x y",
        "d": {"c": 2},
    }


# --- E, F, G: errors, help, diagrams, pipes --------------------------------------------


async def test_verbose_rejection_shows_the_response(nursery: trio.Nursery) -> None:
    async def reject(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 403 Forbidden\r\nX-Why: testing\r\nContent-Length: 7\r\n\r\ngo away"
        )

    server = await serve_raw(nursery, reject)
    result = await statews("connect", "-v", server.url(), "--send", "x")
    assert result.returncode == Exit.HANDSHAKE
    log = err(result).splitlines()
    assert "  HTTP 403 Forbidden" in log
    assert "  X-Why: testing" in log
    assert "  body: b'go away'" in log


async def test_help_shows_defaults_and_unknown_flags_show_the_command_usage() -> None:
    result = await statews("connect", "--help")
    assert result.returncode == 0
    assert "(default: 1.0)" in out(result)
    result = await statews("serve", "--help")
    assert "(default: 8765)" in out(result)
    result = await statews("connect", "ws://127.0.0.1:1/", "--bogus")
    assert result.returncode == Exit.USAGE
    assert err(result).startswith("usage: statews connect ")
    assert "unrecognized arguments: --bogus" in err(result)


async def test_svg_without_pydot(tmp_path: Path) -> None:
    (tmp_path / "pydot.py").write_text("raise ImportError('no pydot here')\n", encoding="utf-8")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), ENV["PYTHONPATH"]])}
    result = await statews("diagram", "--format", "svg", env=env)
    assert result.returncode == Exit.OPTIONS
    assert_one_line_error(result, "pip install 'statews[diagrams]'")


@pytest.mark.parametrize("reader", ["head -1", "exec 0<&-"])
async def test_output_into_a_closed_pipe_ends_quietly(reader: str) -> None:
    command = f"{sys.executable} -m statews schema | {{ {reader}; }}"
    with trio.fail_after(10):
        result = await trio.run_process(
            ["sh", "-c", command], capture_stdout=True, capture_stderr=True, env=ENV, cwd=ROOT
        )
    assert err(result) == ""
    if reader.startswith("head"):
        assert out(result) == "{\n"
