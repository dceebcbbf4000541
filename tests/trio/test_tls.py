"""wss:// against a real `websockets` server with a throw-away CA (trustme), and a
connection over an already-connected stream."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme
from peers import start_ws_server

import statews
from statews import Binary, Text


async def test_wss_echo_with_verification(
    nursery: trio.Nursery, server_context: ssl.SSLContext, cafile: str
) -> None:
    server = await start_ws_server(nursery, ssl=server_context)
    url = f"wss://localhost:{server.port}/echo"
    with trio.fail_after(5):
        async with statews.open_websocket(url, ssl_options={"cafile": cafile}) as ws:
            assert ws.options.secure
            await ws.send(Text("secret"))
            assert await ws.recv() == Text("secret")
            await ws.send(Binary(b"\x00" * 100_000))
            assert await ws.recv() == Binary(b"\x00" * 100_000)
            assert ws.peername()[1] == server.port
    await server.server.aclose()


async def test_wss_untrusted_certificate_fails_with_tls_error(
    nursery: trio.Nursery, server_context: ssl.SSLContext
) -> None:
    server = await start_ws_server(nursery, ssl=server_context)
    with trio.fail_after(5):
        with pytest.raises(statews.TLSError) as info:
            async with statews.open_websocket(f"wss://localhost:{server.port}/"):
                pass
    assert isinstance(info.value.__cause__, ssl.SSLError)
    await server.server.aclose()


async def test_wss_wrong_hostname_fails(
    nursery: trio.Nursery, server_context: ssl.SSLContext, cafile: str
) -> None:
    server = await start_ws_server(nursery, ssl=server_context)
    with trio.fail_after(5):
        with pytest.raises(statews.TLSError, match=r"example\.org"):
            async with statews.open_websocket(
                f"wss://localhost:{server.port}/",
                ssl_options={"cafile": cafile, "server_hostname": "example.org"},
            ):
                pass
    await server.server.aclose()


async def test_wss_with_a_ready_context(
    nursery: trio.Nursery, server_context: ssl.SSLContext, ca: trustme.CA
) -> None:
    server = await start_ws_server(nursery, ssl=server_context)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with trio.fail_after(5):
        async with statews.open_websocket(
            f"wss://127.0.0.1:{server.port}/echo", ssl_options={"context": context}
        ) as ws:
            await ws.send(Text("ip"))
            assert await ws.recv() == Text("ip")
    await server.server.aclose()


async def test_upgrade_over_an_already_connected_stream(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), stream=stream)
            await ws.connect()
            await ws.send(Text("tunnelled"))
            assert await ws.recv() == Text("tunnelled")
            assert ws.sockname() == stream.socket.getsockname()[:2]
            await ws.close()
            assert ws.state == "closed"
    await server.server.aclose()
