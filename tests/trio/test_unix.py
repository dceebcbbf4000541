"""Connections over a Unix domain socket (``unix_path``) to a real `websockets` server."""

from __future__ import annotations

import json
import socket
import ssl
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from peers import scenario_handler
from websockets.trio.server import Server, serve

import statews
from statews import Options, Text
from statews.core.errors import ConnectError, OptionsError
from statews.options.config import load_config


async def serve_unix(
    nursery: trio.Nursery, path: Path, tls: ssl.SSLContext | None = None
) -> Server:
    """A `websockets` server (see peers.scenario_handler) listening on ``path``."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen()
    server: Server = await nursery.start(
        partial(
            serve,
            scenario_handler,
            listeners=[trio.SocketListener(sock)],
            compression=None,
            ping_interval=None,
            ssl=tls,
        )
    )
    return server


async def test_echo_over_a_unix_socket(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = tmp_path / "ws.sock"
    await serve_unix(nursery, path)
    with trio.fail_after(5):
        async with statews.open_websocket(
            "ws://example.invalid:8080/headers", unix_path=str(path)
        ) as ws:
            message = await ws.recv()
            assert isinstance(message, Text)
            headers = dict(json.loads(message.data))
            assert headers["Host"] == "example.invalid:8080"
            await ws.send(Text("over the socket"))
            assert await ws.recv() == Text("over the socket")
            assert ws.peername() == (str(path), 0)
            assert ws.sockname() == ("", 0)  # the client's end has no name
        assert ws.state == "closed"


async def test_tls_over_a_unix_socket(nursery: trio.Nursery, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("ws.example").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    path = tmp_path / "wss.sock"
    await serve_unix(nursery, path, tls=server_context)
    with trio.fail_after(5):
        async with statews.open_websocket(
            "wss://ws.example/echo", unix_path=str(path), ssl_options={"context": client_context}
        ) as ws:
            await ws.send(Text("tls"))
            assert await ws.recv() == Text("tls")


async def test_the_environment_proxy_is_not_used(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ws.sock"
    await serve_unix(nursery, path)
    monkeypatch.setenv("ws_proxy", "http://127.0.0.1:9")  # nothing listens there
    with trio.fail_after(5):
        async with statews.open_websocket("ws://h/echo", unix_path=str(path)) as ws:
            await ws.send(Text("direct"))
            assert await ws.recv() == Text("direct")


async def test_an_explicit_proxy_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(5), pytest.raises(OptionsError, match="unix_path") as info:
        async with statews.open_websocket(
            "ws://h/", unix_path=str(tmp_path / "x.sock"), proxy="http://127.0.0.1:9"
        ):
            pass
    assert info.value.option == "proxy"


@pytest.mark.parametrize("kind", ["missing", "not listening"])
async def test_unreachable_socket(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "gone.sock"
    if kind == "not listening":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))  # bound, never listening: connecting is refused
    with trio.fail_after(5), pytest.raises(ConnectError, match="Unix socket") as info:
        async with statews.open_websocket("ws://h/", unix_path=str(path)):
            pass
    # The transport's ConnectError itself, not wrapped in a second one.
    assert isinstance(info.value.__cause__, OSError)
    assert not isinstance(info.value.__cause__, ConnectError)


def test_unix_path_option(tmp_path: Path) -> None:
    assert Options(host="h").unix_path is None
    with pytest.raises(OptionsError) as info:
        Options(host="h", unix_path="")
    assert info.value.option == "unix_path"
    config = tmp_path / "conn.toml"
    config.write_text('url = "ws://h/"\nunix_path = "run/ws.sock"\n')
    assert load_config(config).unix_path == str(tmp_path / "run" / "ws.sock")
