"""Real peers for the tests, all on loopback: a `websockets` server and a scripted raw TCP server.

The `websockets` server runs in the test's own trio loop (websockets' trio server) and
serves a few paths that script its behaviour:

* ``/echo`` (and any other path): echoes every message.
* ``/headers``: sends the request headers as one JSON text message, then echoes.
* ``/send?n=N&size=S``: sends N binary messages of S bytes (numbered), then closes 1000.
* ``/close?code=C&reason=R``: closes at once with that code and reason.
* ``/wait-close``: receives until the client closes.

:func:`node_echo` runs Node's ``ws`` as an echo server in a child process
(``tests/node/echo_server.js``; ``npm ci --prefix tests/node`` installs it).

The raw server (:func:`serve_raw`) accepts TCP connections and runs a script
``async def script(stream: trio.SocketStream)`` per connection: for hostile and broken peers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from websockets.exceptions import ConnectionClosed as PeerClosed
from websockets.trio.server import Server, ServerConnection, serve
from wire import (
    BINARY,
    CLOSE,
    CONTINUATION,
    TEXT,
    accept_for,
    close_code,
    parse_frame,
    server_frame,
    upgrade_response,
)


async def scenario_handler(conn: ServerConnection) -> None:
    assert conn.request is not None
    url = urlsplit(conn.request.path)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    try:
        if url.path == "/headers":
            await conn.send(json.dumps([[k, v] for k, v in conn.request.headers.raw_items()]))
        elif url.path == "/send":
            size = int(query.get("size", "8"))
            for i in range(int(query["n"])):
                await conn.send(i.to_bytes(4, "big") + b"x" * max(0, size - 4))
            await conn.aclose(1000, "done")
            return
        elif url.path == "/close":
            await conn.aclose(int(query.get("code", "1000")), query.get("reason", ""))
            return
        async for message in conn:
            await conn.send(message)
    except PeerClosed:
        pass


@dataclass
class WsServer:
    server: Server
    host: str
    port: int

    def url(self, path: str = "/echo") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{path}"


async def start_ws_server(
    nursery: trio.Nursery, host: str = "127.0.0.1", **kwargs: object
) -> WsServer:
    kwargs.setdefault("compression", None)
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("ping_interval", None)
    server = await nursery.start(partial(serve, scenario_handler, 0, host=host, **kwargs))
    port = server.listeners[0].socket.getsockname()[1]
    return WsServer(server, host, port)


# ---------------------------------------------------------------- Node's ws

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")


@contextlib.contextmanager
def node_echo(deflate_configs: list[Any] | None = None) -> Iterator[list[int]]:
    """Node's ``ws`` echoing on 127.0.0.1, one port per perMessageDeflate setting of
    ``deflate_configs`` (default: one port, no compression); yields the ports.

    Skipped on a developer's machine without Node; in CI a missing peer is a failure,
    so that a broken install step cannot pass as green."""
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    if NODE is None:
        missing("node is not installed")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        missing("Node's ws is not installed: run npm ci --prefix tests/node")
    assert NODE is not None
    process = subprocess.Popen(
        [NODE, str(NODE_DIR / "echo_server.js"), json.dumps(deflate_configs or [False])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "the Node server did not start within 10 s"
        ports: list[int] = json.loads(process.stdout.readline())["ports"]
        yield ports
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- raw scripted server

Script = Callable[[trio.SocketStream], Awaitable[None]]


@dataclass
class RawServer:
    host: str
    port: int
    done: trio.Event

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{path}"


async def serve_raw(nursery: trio.Nursery, script: Script, host: str = "127.0.0.1") -> RawServer:
    """Listen on an ephemeral port; run ``script`` for each accepted connection."""
    listeners = await trio.open_tcp_listeners(0, host=host)
    port = listeners[0].socket.getsockname()[1]
    done = trio.Event()

    async def run(stream: trio.SocketStream) -> None:
        try:
            await script(stream)
        finally:
            done.set()
            await trio.aclose_forcefully(stream)

    nursery.start_soon(partial(trio.serve_listeners, run, listeners))
    return RawServer(host, port, done)


async def read_request(stream: trio.abc.ReceiveStream) -> tuple[bytes, dict[str, str]]:
    """Read an HTTP request head; return (raw head, lower-cased headers)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise EOFError("client closed during the request")
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return head, headers


async def accept_upgrade(stream: trio.abc.Stream, extra: bytes = b"") -> dict[str, str]:
    """Read the request and answer a valid 101; ``extra`` follows the header block."""
    _, headers = await read_request(stream)
    await stream.send_all(upgrade_response(accept_for(headers["sec-websocket-key"])) + extra)
    return headers


async def echo_until_close(
    stream: trio.abc.Stream, seen: list[tuple[int, bytes]] | None = None
) -> None:
    """Accept the upgrade, echo the client's data frames until its Close, then answer the
    Close with its own payload; every client frame goes into ``seen`` as (opcode, payload)."""
    await accept_upgrade(stream)
    reader = FrameReader(stream)
    while (frame := await reader.frame()) is not None:
        opcode, _, payload = frame
        if seen is not None:
            seen.append((opcode, payload))
        if opcode == CLOSE:
            await stream.send_all(server_frame(CLOSE, payload))
            return
        if opcode in (CONTINUATION, TEXT, BINARY):
            await stream.send_all(server_frame(opcode, payload))


class FrameReader:
    """Reads the client's (masked) frames on the server side of a raw script."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def frame(self) -> tuple[int, bool, bytes] | None:
        """(opcode, fin, unmasked payload), or None at EOF."""
        while (parsed := parse_frame(self.buffer)) is None:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buffer += chunk
        frame, end = parsed
        del self.buffer[:end]
        assert frame.masked, "client frames must be masked"
        return frame.opcode, frame.fin, frame.payload

    async def until(self, opcode: int) -> tuple[int, bool, bytes] | None:
        """Read frames up to the first with ``opcode`` and return it; None at EOF."""
        while (frame := await self.frame()) is not None and frame[0] != opcode:
            pass
        return frame

    async def close_code(self) -> int | None:
        """Read frames until the client's Close; return its code (1005 if empty)."""
        while (frame := await self.frame()) is not None:
            opcode, _, payload = frame
            if opcode == CLOSE:
                return close_code(payload)
        return None
