"""The built-in echo server (statews.server), against a raw TCP client and statews.

The raw client writes its messages and its Close in one TCP write, the case where
websockets alone answers the Close before the handler has echoed what preceded it.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys

import pytest
import trio
from test_cli import ENV, ROOT, printed_port
from wire import CLOSE, client_frame, close_body, parse_frames

import statews
from statews.cli.server import EchoServer, serve_echo


async def read_server_frames(stream: trio.SocketStream) -> list[tuple[int, bytes]]:
    """Every (unmasked) frame the server sends until it closes TCP."""
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return [(frame.opcode, frame.payload) for frame in parse_frames(data)]


async def open_raw(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return stream


@pytest.mark.parametrize("count", [1, 50, 500])
async def test_every_message_before_the_close_is_echoed_first(
    nursery: trio.Nursery, count: int
) -> None:
    server = await nursery.start(serve_echo, "127.0.0.1", 0)
    with trio.fail_after(10):
        stream = await open_raw(server.port)
        burst = b"".join(client_frame(0x1, str(i).encode()) for i in range(count))
        await stream.send_all(burst + client_frame(CLOSE, close_body(1000)))
        frames = await read_server_frames(stream)
        await stream.aclose()
    assert frames[:-1] == [(0x1, str(i).encode()) for i in range(count)]
    assert frames[-1] == (CLOSE, close_body(1000))


async def test_a_client_leaving_after_its_close_ends_the_connection(
    nursery: trio.Nursery,
) -> None:
    server = await nursery.start(serve_echo, "127.0.0.1", 0)
    with trio.fail_after(10):
        stream = await open_raw(server.port)
        await stream.send_all(client_frame(CLOSE, close_body(1000)))
        await stream.aclose()
        # The server lives on and serves the next client.
        async with statews.open_websocket(server.url) as ws:
            await ws.send(statews.Text("still here"))
            assert await ws.recv() == statews.Text("still here")


async def test_cancelled_server_closes_its_clients_with_1001(nursery: trio.Nursery) -> None:
    scope = trio.CancelScope()

    async def run(*, task_status: trio.TaskStatus[EchoServer]) -> None:
        with scope:
            await serve_echo("127.0.0.1", 0, task_status=task_status)

    server = await nursery.start(run)
    with trio.fail_after(10):
        async with statews.open_websocket(server.url) as ws:
            scope.cancel()
            with pytest.raises(statews.ConnectionClosed) as closed:
                await ws.recv()
    assert closed.value.code == 1001


async def test_serve_interrupted_closes_clients_with_1001_and_logs_listening_once() -> None:
    command = [sys.executable, "-m", "statews", "serve", "--port", "0"]
    with trio.fail_after(15):
        server = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT
        )
        try:
            url = f"ws://127.0.0.1:{await printed_port(server)}/"
            async with statews.open_websocket(url) as ws:
                await ws.send(statews.Text("hi"))
                assert await ws.recv() == statews.Text("hi")
                server.send_signal(signal.SIGINT)
                with pytest.raises(statews.ConnectionClosed) as closed:
                    await ws.recv()
            assert await server.wait() == 0
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()
    assert closed.value.code == 1001
    assert server.stderr is not None
    log = (await server.stderr.receive_some(65536)).decode()
    assert [line for line in log.splitlines() if "listening" in line] == [
        f"statews.server: echo server listening on {url}"
    ]
    assert "Traceback" not in log
