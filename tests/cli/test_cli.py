"""The ``statews`` command, run for real (``python -m statews``) against real servers.

Servers are the in-process `websockets` server of peers.py (it runs in the test's trio
loop while the command runs in a subprocess), raw scripted servers, and the command's
own ``statews serve``. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from peers import FrameReader, WsServer, accept_upgrade, read_request, serve_raw
from wire import server_frame

from statews.cli.command import Exit, exit_code_for
from statews.cli.console import describe
from statews.cli.stdin import lines
from statews.core.errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeRejected,
    OptionsError,
    RemoteProtocolError,
)
from statews.core.events import Binary, Close, Ping, Text

ROOT = Path(__file__).resolve().parents[2]
# The command must not go through a proxy from the environment, and must find statews.
ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


async def statews(
    *args: str, stdin: bytes | Any = b"", env: dict[str, str] | None = None, timeout: float = 10
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m statews ARGS``; at most ``timeout`` seconds."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "statews", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env or ENV,
            cwd=ROOT,
        )


async def printed_port(server: trio.Process) -> int:
    """The port a ``statews serve`` subprocess prints as its first line of output."""
    assert server.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        chunk = await server.stdout.receive_some(100)
        assert chunk, "statews serve exited before printing its port"
        line += chunk
    return int(line)


def out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode()


def records(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out(result).splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *fragments: str) -> None:
    lines = err(result).splitlines()
    assert len(lines) == 1, err(result)
    assert lines[0].startswith("statews: ")
    for fragment in fragments:
        assert fragment in lines[0]


# --- connect ---------------------------------------------------------------------------


async def test_serve_then_connect_json() -> None:
    command = [sys.executable, "-m", "statews", "serve", "--port", "0", "--print-port"]
    with trio.fail_after(15):
        server = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT
        )
        try:
            port = await printed_port(server)
            result = await statews(
                "connect", f"ws://127.0.0.1:{port}/", "--send", "hello", "--send", "wörld", "--json"
            )
        finally:
            server.terminate()
            await server.wait()
    assert result.returncode == 0, err(result)
    assert records(result) == [
        {"event": "connected", "url": f"ws://127.0.0.1:{port}/", "subprotocol": None},
        {"direction": "in", "type": "text", "data": "hello"},
        {"direction": "in", "type": "text", "data": "wörld"},
        {"event": "closed", "code": 1000, "reason": ""},
    ]
    assert server.stderr is not None
    log = (await server.stderr.receive_some(65536)).decode()
    assert f"listening on ws://127.0.0.1:{port}/" in log
    assert re.search(r"127\.0\.0\.1:\d+: connected, path /", log)
    assert "closed with 1000 after 2 messages received" in log


async def test_connect_send_prints_echoes(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), "--send", "a b", "--send", "", "--send", "c")
    assert result.returncode == 0, err(result)
    assert out(result) == "a b\n\nc\n"
    assert err(result).splitlines() == [
        f"connected to {ws_server.url()}",
        "closed: code 1000 (normal closure)",
    ]


async def test_connect_verbose_shows_sent_and_transitions(ws_server: WsServer) -> None:
    result = await statews("-v", "connect", ws_server.url(), "--send", "x")
    assert result.returncode == 0, err(result)
    assert out(result) == "x\n"
    log = err(result)
    assert "> x" in log.splitlines()
    transitions = re.findall(r"statews\.lifecycle: \w+: (\w+) -> (\w+)", log)
    assert transitions == [
        ("idle", "upgrading"),
        ("upgrading", "connected"),
        ("connected", "closing"),
        ("closing", "closed"),
    ]


async def test_connect_binary_messages(ws_server: WsServer) -> None:
    url = ws_server.url("/send?n=2&size=40")
    result = await statews("connect", url, "--count", "2")
    assert result.returncode == 0, err(result)
    expected = [i.to_bytes(4, "big") + b"x" * 36 for i in range(2)]
    assert out(result) == "".join(
        f"base64:{base64.b64encode(data).decode()}\n" for data in expected
    )
    result = await statews("connect", url, "--count", "2", "--json")
    assert result.returncode == 0, err(result)
    data = [r["data"] for r in records(result) if r.get("direction") == "in"]
    assert [base64.b64decode(d) for d in data] == [
        i.to_bytes(4, "big") + b"x" * 36 for i in range(2)
    ]


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, "bye", Exit.OK),
        (1001, "", Exit.OK),
        (1011, "oops", Exit.PROTOCOL),
        (4000, "app", Exit.PROTOCOL),
    ],
)
async def test_connect_exit_code_follows_the_servers_close(
    ws_server: WsServer, code: int, reason: str, expected: Exit
) -> None:
    # --count: the end of stdin must not close first; the server does.
    url = ws_server.url(f"/close?code={code}&reason={reason}")
    result = await statews("connect", url, "--count", "1", "--json")
    assert result.returncode == expected, err(result)
    assert records(result)[-1] == {"event": "closed", "code": code, "reason": reason}
    if expected is Exit.PROTOCOL:
        assert f"code {code}" in err(result).splitlines()[-1]


async def test_connect_reads_stdin_lines_until_count(ws_server: WsServer) -> None:
    result = await statews(
        "connect", ws_server.url(), "--count", "3", stdin="one\ntwo\r\nthré".encode()
    )
    assert result.returncode == 0, err(result)
    assert out(result) == "one\ntwo\nthré\n"


async def test_connect_end_of_stdin_closes(ws_server: WsServer) -> None:
    result = await statews("connect", ws_server.url(), stdin=b"x\ny\n")
    assert result.returncode == 0, err(result)
    assert err(result).splitlines()[-1] == "closed: code 1000 (normal closure)"
    # The end of input waits for the echoes (--wait) before closing.
    assert out(result) == "x\ny\n"


async def test_connect_reads_stdin_from_a_file(ws_server: WsServer, tmp_path: Path) -> None:
    (tmp_path / "lines.txt").write_text("first\nsecond\n", encoding="utf-8")
    with open(tmp_path / "lines.txt", "rb") as stdin:
        result = await statews("connect", ws_server.url(), "--count", "2", stdin=stdin)
    assert result.returncode == 0, err(result)
    assert out(result) == "first\nsecond\n"


@pytest.mark.parametrize("active", ["once", "true"])
async def test_connect_active_modes(ws_server: WsServer, active: str) -> None:
    sends = ["--send", "1", "--send", "2", "--send", "3"]
    result = await statews("connect", ws_server.url(), "--active", active, *sends)
    assert result.returncode == 0, err(result)
    assert out(result) == "1\n2\n3\n"


async def test_connect_headers_and_protocols(ws_server: WsServer) -> None:
    result = await statews(
        "connect",
        ws_server.url("/headers"),
        "-H",
        "X-Trace: t-1",
        "-H",
        "X-Empty:",
        "--protocol",
        "chat",
        "--count",
        "1",
        "--json",
    )
    assert result.returncode == 0, err(result)
    headers = json.loads(records(result)[1]["data"])
    assert ["X-Trace", "t-1"] in headers
    assert ["X-Empty", ""] in headers
    assert ["Sec-WebSocket-Protocol", "chat"] in headers


async def test_connect_with_a_config_file(ws_server: WsServer, tmp_path: Path) -> None:
    config = tmp_path / "conns.toml"
    config.write_text(
        f'[connections.echo]\nurl = "{ws_server.url()}"\nactive = "once"\n'
        '[connections.other]\nurl = "ws://127.0.0.1:1/"\n',
        encoding="utf-8",
    )
    result = await statews("connect", str(config), "--name", "echo", "--send", "hi", "--json")
    assert result.returncode == 0, err(result)
    assert records(result)[1] == {"direction": "in", "type": "text", "data": "hi"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connect_refused_is_a_handshake_failure() -> None:
    result = await statews("connect", f"ws://127.0.0.1:{_closed_port()}/", "--send", "x")
    assert result.returncode == Exit.HANDSHAKE
    assert_one_line_error(result, "cannot connect")
    assert out(result) == ""


async def test_connect_rejected_is_a_handshake_failure(nursery: trio.Nursery) -> None:
    async def reject(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    server = await serve_raw(nursery, reject)
    result = await statews("connect", server.url(), "--send", "x")
    assert result.returncode == Exit.HANDSHAKE
    assert_one_line_error(result, "403")


async def test_connect_protocol_violation(nursery: trio.Nursery) -> None:
    async def violate(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream, extra=server_frame(0x3, b""))  # reserved opcode
        await FrameReader(stream).close_code()

    server = await serve_raw(nursery, violate)
    result = await statews("connect", server.url(), "--count", "1", "--json")
    assert result.returncode == Exit.PROTOCOL, err(result)
    assert records(result)[-1]["sent"] == 1002
    assert_one_line_error(result, "1002")


async def test_connect_timeout(ws_server: WsServer) -> None:
    url = ws_server.url("/wait-close")
    result = await statews("connect", url, "--count", "1", "--timeout", "0.3")
    assert result.returncode == Exit.TIMEOUT
    assert err(result).splitlines()[-1] == "statews: timed out after 0.3 s (0 of 1 messages)"


@pytest.mark.parametrize(
    ("args", "expected", "fragment"),
    [
        (["connect", "ws://h/", "--protocol", "bad proto"], Exit.OPTIONS, "protocols"),
        (["connect", "http://h/"], Exit.OPTIONS, "ws:// or wss://"),
        (["connect", "missing.toml"], Exit.OPTIONS, "missing.toml: cannot read"),
        (["connect", "ws://h/", "-H", "no colon"], Exit.USAGE, "-H expects"),
        (["connect", "ws://h/", "--name", "x"], Exit.USAGE, "--name"),
        (["connect", "ws://h/", "-H", "Upgrade: x"], Exit.OPTIONS, "'Upgrade'"),
    ],
)
async def test_connect_bad_command_lines(args: list[str], expected: Exit, fragment: str) -> None:
    result = await statews(*args)
    assert result.returncode == expected
    assert_one_line_error(result, fragment)


async def test_argparse_usage_errors_exit_2() -> None:
    result = await statews("connect", "ws://h/", "--count", "-1")
    assert result.returncode == Exit.USAGE
    assert "Traceback" not in err(result)


async def test_serve_on_a_busy_port() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        result = await statews("serve", "--port", str(port))
    finally:
        await listeners[0].aclose()
    assert result.returncode == Exit.ERROR
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


# --- check, schema, diagram, demo -------------------------------------------------------

EXAMPLES = sorted((ROOT / "specs/examples").iterdir())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_check_examples(path: Path) -> None:
    env = {**ENV, "STATEWS_TOKEN": "s3cret-token"}
    text = path.read_text(encoding="utf-8")
    names = re.findall(r"^\[connections\.(\w+)\]$", text, re.MULTILINE)
    if path.suffix == ".json":
        names = list(json.loads(text).get("connections", {}))
    for name in names or [None]:
        result = await statews("check", str(path), *(["--name", name] if name else []), env=env)
        assert result.returncode == 0, err(result)
        options = json.loads(out(result))
        assert options["host"]
        assert "s3cret-token" not in out(result)  # secrets are masked


async def test_check_masks_the_token() -> None:
    env = {**ENV, "STATEWS_TOKEN": "s3cret-token"}
    result = await statews("check", "specs/examples/multi.toml", "--name", "feed", env=env)
    assert result.returncode == 0, err(result)
    assert ["Authorization", "***"] in json.loads(out(result))["headers"]


async def test_check_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[connections.feed]\nurl = "ws://h/"\nmax_queue = 0\n', encoding="utf-8")
    result = await statews("check", str(bad))
    assert result.returncode == Exit.OPTIONS
    assert_one_line_error(result, str(bad), "connections.feed.max_queue")
    assert out(result) == ""


async def test_check_missing_variable() -> None:
    result = await statews("check", "specs/examples/multi.toml", "--name", "feed")
    assert result.returncode == Exit.OPTIONS
    assert_one_line_error(result, "STATEWS_TOKEN", "connections.feed.headers.Authorization")


async def test_schema_is_the_committed_schema() -> None:
    result = await statews("schema")
    assert result.returncode == 0
    assert out(result) == (ROOT / "specs/options.schema.json").read_text(encoding="utf-8")


async def test_diagram_is_the_committed_diagram(tmp_path: Path) -> None:
    result = await statews("diagram")
    assert result.returncode == 0
    assert out(result) == (ROOT / "diagrams/lifecycle.mmd").read_text(encoding="utf-8")
    result = await statews("diagram", "--format", "md", "-o", str(tmp_path / "t.md"))
    assert result.returncode == 0
    assert out(result) == ""
    assert "| idle      | Connect " in (tmp_path / "t.md").read_text(encoding="utf-8")


async def test_demo() -> None:
    result = await statews("demo")
    assert result.returncode == 0, err(result)
    lines = out(result).splitlines()
    transitions = [tuple(m) for m in re.findall(r"^lifecycle: (\w+) -> (\w+)", out(result), re.M)]
    assert transitions == [
        ("idle", "upgrading"),
        ("upgrading", "connected"),
        ("connected", "closing"),
        ("closing", "closed"),
    ]
    assert re.fullmatch(r"echo server: listening on ws://127\.0\.0\.1:\d+/", lines[0])
    assert "lifecycle: idle" in lines
    assert "< hello, statews" in lines
    assert "< [binary 8 bytes] 0001020304050607" in lines
    assert any(re.fullmatch(r"ping: pong after \d+\.\d\d ms", line) for line in lines)
    assert lines[-2:] == ["closed: code 1000 (normal closure)", "final state: closed"]
    assert err(result) == ""


# --- in-process pieces ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], ["a", "b"]),
        ([b"a", b"b\nc"], ["ab", "c"]),
        ([b"crlf\r\n", b"\n"], ["crlf", ""]),
        ([b"caf\xc3", b"\xa9\n\xff\n"], ["café", "\ufffd"]),
        ([], []),
    ],
)
async def test_lines(chunks: list[bytes], expected: list[str]) -> None:
    pending = list(chunks)

    async def receive(size: int) -> bytes:
        await trio.lowlevel.checkpoint()
        return pending.pop(0) if pending else b""

    seen: list[str] = []

    async for line in lines(receive):
        seen.append(line)
    assert seen == expected


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (Text("héllo"), "héllo"),
        (Binary(b""), "[binary 0 bytes]"),
        (Binary(bytes(range(40))), "[binary 40 bytes] " + bytes(range(32)).hex() + "..."),
        (Ping(b"\x01"), "[ping 1 bytes] 01"),
        (Close(1000, "bye"), "[close 1000 bye]"),
    ],
)
def test_describe(frame: Text | Binary | Ping | Close, text: str) -> None:
    assert describe(frame) == text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OptionsError("x"), Exit.OPTIONS),
        (ConnectError("x"), Exit.HANDSHAKE),
        (HandshakeRejected(403, "Forbidden", [], b""), Exit.HANDSHAKE),
        (ConnectTimeout("x"), Exit.TIMEOUT),
        (RemoteProtocolError("x"), Exit.PROTOCOL),
        (ConnectionClosedError(None, None), Exit.PROTOCOL),
        (ConnectionClosedOK(Close(1000), Close(1000)), Exit.OK),
        (RuntimeError("bug"), Exit.ERROR),
    ],
)
def test_exit_code_for(error: BaseException, code: Exit) -> None:
    assert exit_code_for(error) is code
