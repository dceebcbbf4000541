"""WebSockets over HTTP/2 (RFC 8441) against hypercorn, a real RFC 8441 server over TLS."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trustme
from h2peer import Hypercorn, start_hypercorn
from test_proxy import ProxyProcess, _microsocks, _tinyproxy
from wire import CLOSE, client_frame, close_body

import statews
from statews import Binary, ConnectionClosed, ConnectionClosedOK, Text

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def hypercorn(nursery: trio.Nursery, ca: trustme.CA, tmp_path: Path) -> Hypercorn:
    server = await start_hypercorn(nursery, ca, tmp_path)
    yield server  # type: ignore[misc]
    server.stop.set()


def options(
    server: Hypercorn, cafile: str, path: str = "/echo", **extra: object
) -> statews.Options:
    settings: dict[str, object] = {"http2": "auto", "ssl_options": {"cafile": cafile}}
    return statews.Options.from_url(server.url(path), **{**settings, **extra})


async def test_echo_over_http2(hypercorn: Hypercorn, cafile: str) -> None:
    with trio.fail_after(20):
        async with statews.open_websocket(options(hypercorn, cafile)) as ws:
            assert ws.http_version == "2"
            await ws.send("hello")
            assert await ws.recv() == Text("hello")
            await ws.send(b"\x00\x01")
            assert await ws.recv() == Binary(b"\x00\x01")
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(big)
            assert await ws.recv() == Binary(big)
            assert ws.peername()[1] == hypercorn.port
        assert isinstance(ws.closed_reason, ConnectionClosedOK)
        assert ws.closed_reason.rcvd is not None
        assert ws.closed_reason.rcvd.code == 1000
    assert [scope.http_version for scope in hypercorn.scopes] == ["2"]


async def test_never_stays_on_http11(hypercorn: Hypercorn, cafile: str) -> None:
    with trio.fail_after(10):
        async with statews.open_websocket(options(hypercorn, cafile, http2="never")) as ws:
            assert ws.http_version == "1.1"
            await ws.send("x")
            assert await ws.recv() == Text("x")
    assert [scope.http_version for scope in hypercorn.scopes] == ["1.1"]


async def test_fifty_websockets_share_one_connection(hypercorn: Hypercorn, cafile: str) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sockets = [
                await statews.start_link(nursery, options(hypercorn, cafile)) for _ in range(50)
            ]
            async with trio.open_nursery() as connecting:
                for ws in sockets:
                    connecting.start_soon(ws.connect)

            async def echo(ws: statews.WebSocket, i: int) -> None:
                await ws.send(f"n{i}")
                assert await ws.recv() == Text(f"n{i}")

            async with trio.open_nursery() as talking:
                for i, ws in enumerate(sockets):
                    talking.start_soon(echo, ws, i)
            assert {ws.http_version for ws in sockets} == {"2"}
            assert hypercorn.established() == 1  # the server's side: one TCP connection
            async with trio.open_nursery() as closing:
                for ws in sockets:
                    closing.start_soon(ws.close)
        # The nursery ended: the HTTP/2 connection's task ended with the last WebSocket.
    clients = {scope.client for scope in hypercorn.scopes}
    assert len(hypercorn.scopes) == 50
    assert len(clients) == 1, clients
    assert {scope.http_version for scope in hypercorn.scopes} == {"2"}


#: Why test_server_close_code fails; test_hypercorn_329_reproduction proves it.
HYPERCORN_329 = (
    "hypercorn's bug (pgjones/hypercorn#329; fixes in PRs #312, #334, #365, none merged as of"
    " 0.18.0): a DATA frame on a stream whose ASGI app already returned raises KeyError in"
    " H2Protocol._handle_events and kills the TCP connection, so our echo of its Close (RFC"
    " 6455 5.5.1, a DATA frame legal on the half-closed stream, RFC 9113 5.1) crashes it"
)


@pytest.mark.xfail(reason=HYPERCORN_329, strict=True)
async def test_server_close_code(hypercorn: Hypercorn, cafile: str) -> None:
    with trio.fail_after(10):
        async with statews.open_websocket(options(hypercorn, cafile, "/close/4001")) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 4001


async def test_server_close_code_app_waiting(hypercorn: Hypercorn, cafile: str) -> None:
    """The server closes first (4001) and its app waits for the disconnect: our Close echo
    and END_STREAM complete the handshake at once, and the connection ends with the stream."""
    with trio.fail_after(10):
        start = trio.current_time()
        async with statews.open_websocket(options(hypercorn, cafile, "/close-wait/4001")) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
        assert trio.current_time() - start < 2  # not a close_timeout
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 4001
    assert caught.value.sent is not None
    assert caught.value.sent.code == 4001
    # hypercorn saw the stream end cleanly (1000 in ASGI: its disconnect carries no code).
    assert [scope.close_code for scope in hypercorn.scopes] == [1000]


async def test_hypercorn_329_reproduction(ca: trustme.CA, tmp_path: Path) -> None:
    """The xfail above is hypercorn's bug, shown with h2 alone (no statews): open a
    WebSocket stream, let the app close it and return (Close, then END_STREAM), answer with
    a Close in a DATA frame: hypercorn raises KeyError. When this test fails, hypercorn is
    fixed: drop the xfail."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2"])

    async def client(port: int) -> None:
        tls = trio.SSLStream(
            await trio.open_tcp_stream("127.0.0.1", port), context, server_hostname="localhost"
        )
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        request = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/close/4001"),
            (":authority", f"localhost:{port}"),
            ("sec-websocket-version", "13"),
        ]
        conn.send_headers(1, request)
        await tls.send_all(conn.data_to_send())
        ended = False
        while not ended:
            data = await tls.receive_some(65536)
            assert data, "hypercorn closed the connection before ending the stream"
            ended = any(isinstance(e, h2.events.StreamEnded) for e in conn.receive_data(data))
            await tls.send_all(conn.data_to_send())
        await trio.sleep(0.1)  # the app has returned by then, whatever the scheduling
        conn.send_data(1, client_frame(CLOSE, close_body(4001)), end_stream=True)
        await tls.send_all(conn.data_to_send())
        with contextlib.suppress(trio.BrokenResourceError):  # hypercorn drops the connection
            while await tls.receive_some(65536):
                pass

    with trio.fail_after(10), pytest.RaisesGroup(KeyError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            server = await start_hypercorn(nursery, ca, tmp_path)
            await client(server.port)
            server.stop.set()


async def test_client_close_code_reaches_server(hypercorn: Hypercorn, cafile: str) -> None:
    """hypercorn's ASGI disconnect does not carry the client's code; its Close echoes it."""
    with trio.fail_after(10):
        async with statews.open_websocket(options(hypercorn, cafile)) as ws:
            start = trio.current_time()
            await ws.close(4002, "bye")
            # Done with the closing handshake (END_STREAM with our Close), not a timeout.
            assert trio.current_time() - start < 2
    closed = ws.closed_reason
    assert closed is not None
    assert closed.sent is not None
    assert closed.sent.code == 4002
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4002


async def test_deflate_and_subprotocol_negotiated(hypercorn: Hypercorn, cafile: str) -> None:
    with trio.fail_after(10):
        async with statews.open_websocket(options(hypercorn, cafile, protocols=["chat"])) as ws:
            assert ws.http_version == "2"
            assert ws.extensions == ("permessage-deflate",)
            assert ws.subprotocol == "chat"
            text = "compressible " * 10_000
            await ws.send(text)
            assert await ws.recv() == Text(text)
    assert hypercorn.scopes[0].subprotocols == ["chat"]


async def test_slow_reader_does_not_stall_the_others(hypercorn: Hypercorn, cafile: str) -> None:
    """One WebSocket is flooded (8 MiB) and reads nothing: its stream window closes, the
    other WebSocket on the same connection keeps flowing; then the slow one reads it all."""
    count, size = 128, 64 * 1024
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            slow = await statews.start_link(
                nursery, options(hypercorn, cafile, f"/flood/{count}/{size}", compression=None)
            )
            fast = await statews.start_link(nursery, options(hypercorn, cafile))
            await slow.connect()
            await fast.connect()
            await trio.sleep(0.3)  # the flood fills the slow stream's window
            for i in range(50):
                await fast.send(f"m{i}")
                assert await fast.recv() == Text(f"m{i}")
            for i in range(count):
                message = await slow.recv()
                assert message == Binary(i.to_bytes(4, "big") * (size // 4))
            await slow.close()
            await fast.close()
    assert len({scope.client for scope in hypercorn.scopes}) == 1


async def test_the_connection_closes_with_its_last_websocket(
    hypercorn: Hypercorn, cafile: str
) -> None:
    """No idle pool: the HTTP/2 connection lives while a WebSocket uses it and is closed
    (GOAWAY, then the socket) as the last one ends, as the server sees it."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            first = await statews.start_link(nursery, options(hypercorn, cafile))
            second = await statews.start_link(nursery, options(hypercorn, cafile))
            await first.connect()
            await second.connect()
            assert hypercorn.established() == 1
            await first.close()
            await trio.sleep(0.2)
            assert hypercorn.established() == 1  # the other WebSocket still uses it
            await second.send("still here")
            assert await second.recv() == Text("still here")
            await second.close()
            while hypercorn.established():  # gone at once, not after a timeout
                await trio.sleep(0.01)
            # The nursery is still open: the connection ended with its last stream.
            third = await statews.start_link(nursery, options(hypercorn, cafile))
            await third.connect()
            assert hypercorn.established() == 1  # a new one
            await third.close()
    assert len({scope.client for scope in hypercorn.scopes}) == 2


async def test_a_header_http2_forbids(hypercorn: Hypercorn, cafile: str) -> None:
    """A connection-specific header (RFC 9113 8.2.2): "always" refuses it before any I/O
    (no connection is opened for it), "auto" upgrades over HTTP/1.1, which may carry it."""
    headers = {"Keep-Alive": "timeout=5"}
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(
                nursery, options(hypercorn, cafile, http2="always", headers=headers)
            )
            with pytest.raises(statews.OptionsError, match="Keep-Alive"):
                await ws.connect()
            assert hypercorn.established() == 0
            async with statews.open_websocket(options(hypercorn, cafile, headers=headers)) as ws:
                assert ws.http_version == "1.1"
                await ws.send("over HTTP/1.1")
                assert await ws.recv() == Text("over HTTP/1.1")
    assert [scope.http_version for scope in hypercorn.scopes] == ["1.1"]


# ------------------------------------------------------ what runs under the HTTP/2 layer


@pytest.fixture(params=["http", "socks5"], ids=["tinyproxy-connect", "microsocks-socks5"])
def proxy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ProxyProcess]]:
    start = _tinyproxy if request.param == "http" else _microsocks
    for process in start(tmp_path, auth=False):  # one: the proxy, stopped after the test
        yield request.param, process


async def test_through_a_proxy(
    hypercorn: Hypercorn, cafile: str, proxy: tuple[str, ProxyProcess]
) -> None:
    """wss through tinyproxy's CONNECT tunnel or microsocks' SOCKS5 one, ALPN h2 inside
    it: two WebSockets share the one tunnel."""
    scheme, process = proxy
    proxied = options(hypercorn, cafile, proxy=process.url(scheme))
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            sockets = [await statews.start_link(nursery, proxied) for _ in range(2)]
            for i, ws in enumerate(sockets):
                await ws.connect()
                assert ws.http_version == "2"
                assert ws.peername()[1] == process.port
                await ws.send(f"via proxy {i}")
                assert await ws.recv() == Text(f"via proxy {i}")
            for ws in sockets:
                await ws.close()
    assert [scope.http_version for scope in hypercorn.scopes] == ["2", "2"]
    assert len({scope.client for scope in hypercorn.scopes}) == 1  # one tunnel


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "h2c"])
async def test_over_a_unix_socket(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str, tmp_path: Path, tls: bool
) -> None:
    """hypercorn on a Unix socket: TLS with ALPN h2 (auto), or h2c with prior knowledge
    (always), for two WebSockets."""
    path = tmp_path / "h2.sock"
    server = await start_hypercorn(nursery, ca, tmp_path, bind=f"unix:{path}", tls=tls)
    settings = options(server, cafile, unix_path=str(path), http2="auto" if tls else "always")
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            sockets = [await statews.start_link(inner, settings) for _ in range(2)]
            for ws in sockets:
                await ws.connect()
                assert ws.http_version == "2"
                await ws.send("over unix")
                assert await ws.recv() == Text("over unix")
            for ws in sockets:
                await ws.close()
    assert [scope.http_version for scope in server.scopes] == ["2", "2"]
    server.stop.set()
