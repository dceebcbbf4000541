"""WebSockets over HTTP/2 against our scripted h2 server (tests/h2peer.py): the cases a
real server will not produce on demand (no extended CONNECT, resets, GOAWAY, closed
windows, a stream limit, oversized headers) and h2c with prior knowledge."""

from __future__ import annotations

from collections.abc import Callable

import h2.settings
import pytest
import trio
import trustme
from h2peer import (
    H2Peer,
    PeerConnection,
    PeerStream,
    echo_frames,
    echo_script,
    peer_context,
    start_h2_peer,
)
from peers import WsServer, echo_until_close
from wire import BINARY, TEXT, server_frame

import statews
from statews import Binary, ConnectionClosed, HandshakeRejected, InvalidHandshake, Text
from statews.core.h2opening import HTTP2Error
from statews.trio.http2 import STREAM_WINDOW

Settings = h2.settings.SettingCodes


def options(
    peer: H2Peer, cafile: str, mode: str = "auto", path: str = "/chat", **extra: object
) -> statews.Options:
    settings: dict[str, object] = {"http2": mode, "compression": None, "ping_interval": None}
    if peer.tls:
        settings["ssl_options"] = {"cafile": cafile}
    return statews.Options.from_url(peer.url(path), **{**settings, **extra})


async def echo_check(ws: statews.WebSocket, text: str = "hi") -> None:
    await ws.send(text)
    assert await ws.recv() == Text(text)


async def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (the caller bounds the time)."""
    while not condition():
        await trio.sleep(0.01)


# ------------------------------------------------------- no extended CONNECT: fallback


async def test_auto_falls_back_to_http11_on_a_new_connection(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str
) -> None:
    """The server selects h2 but has no SETTINGS_ENABLE_CONNECT_PROTOCOL: the HTTP/2
    connection is closed, the upgrade goes over HTTP/1.1 on a new one, and the next
    WebSocket to that origin goes straight to HTTP/1.1."""
    peer = await start_h2_peer(
        nursery,
        echo_script,
        connect_protocol=False,
        context=peer_context(ca, ["h2", "http/1.1"]),
        http11=echo_until_close,
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            first = await statews.start_link(inner, options(peer, cafile))
            await first.connect()
            assert first.http_version == "1.1"
            await echo_check(first)
            assert peer.connections == 2
            assert peer.streams == []  # no CONNECT was sent to a server without RFC 8441
            await wait_for(lambda: peer.h2_connections[0].goaway_received)
            second = await statews.start_link(inner, options(peer, cafile))
            await second.connect()
            assert second.http_version == "1.1"
            await echo_check(second)
            assert peer.connections == 3
            assert len(peer.h2_connections) == 1  # not tried again
            await first.close()
            await second.close()


async def test_auto_uses_http11_on_the_same_connection_when_alpn_says_so(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str
) -> None:
    peer = await start_h2_peer(
        nursery, echo_script, context=peer_context(ca, ["http/1.1"]), http11=echo_until_close
    )
    with trio.fail_after(10):
        async with statews.open_websocket(options(peer, cafile)) as ws:
            assert ws.http_version == "1.1"
            await echo_check(ws)
    assert peer.connections == 1


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "h2c"])
async def test_always_without_extended_connect_is_a_clear_error(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str, tls: bool
) -> None:
    context = peer_context(ca, ["h2", "http/1.1"]) if tls else None
    peer = await start_h2_peer(nursery, echo_script, connect_protocol=False, context=context)
    with trio.fail_after(10), pytest.raises(InvalidHandshake, match="ENABLE_CONNECT_PROTOCOL"):
        async with statews.open_websocket(options(peer, cafile, "always")):
            pass  # pragma: no cover


async def test_always_when_alpn_selects_http11_is_a_clear_error(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str
) -> None:
    peer = await start_h2_peer(
        nursery, echo_script, context=peer_context(ca, ["http/1.1"]), http11=echo_until_close
    )
    with trio.fail_after(10), pytest.raises(InvalidHandshake, match="did not select h2"):
        async with statews.open_websocket(options(peer, cafile, "always")):
            pass  # pragma: no cover


async def test_h2c_prior_knowledge_for_ws_with_always(nursery: trio.Nursery, cafile: str) -> None:
    peer = await start_h2_peer(nursery, echo_script)
    with trio.fail_after(10):
        async with statews.open_websocket(options(peer, cafile, "always")) as ws:
            assert ws.http_version == "2"
            await echo_check(ws)
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == Binary(b"\x00" * 100_000)
    request = peer.streams[0].headers
    assert request[":method"] == "CONNECT"
    assert request[":protocol"] == "websocket"
    assert request[":scheme"] == "http"
    assert request[":path"] == "/chat"
    assert request[":authority"] == f"localhost:{peer.port}"
    assert request["sec-websocket-version"] == "13"
    assert "sec-websocket-key" not in request


async def test_h2c_to_an_http11_server_is_a_clear_error(ws_server: WsServer) -> None:
    """Prior knowledge to a server that speaks HTTP/1.1 only (the websockets server)."""
    settings = statews.Options.from_url(ws_server.url(), http2="always")
    with trio.fail_after(10), pytest.raises(InvalidHandshake, match="no HTTP/2 from the server"):
        async with statews.open_websocket(settings):
            pass  # pragma: no cover


# ----------------------------------------------------------------- the CONNECT answer


async def test_non_200_status_is_rejected_with_the_status(
    nursery: trio.Nursery, cafile: str
) -> None:
    async def refuse(conn: PeerConnection, stream: PeerStream) -> None:
        await stream.respond(403, [("retry-after", "7")])
        await stream.end()

    peer = await start_h2_peer(nursery, refuse)
    with trio.fail_after(10):
        with pytest.raises(HandshakeRejected) as caught:
            async with statews.open_websocket(options(peer, cafile, "always")):
                pass  # pragma: no cover
        assert caught.value.status == 403
        assert caught.value.retry_after == 7
        # Its only stream ended: the client closes the HTTP/2 connection.
        await peer.h2_connections[0].closed.wait()
        assert peer.h2_connections[0].goaway_received


async def test_header_block_over_the_limit_is_a_typed_error(
    nursery: trio.Nursery, cafile: str
) -> None:
    async def huge(conn: PeerConnection, stream: PeerStream) -> None:
        await stream.respond(200, [("x-padding", "a" * (100 * 1024))])
        await trio.sleep_forever()

    peer = await start_h2_peer(nursery, huge)
    with trio.fail_after(10), pytest.raises(InvalidHandshake) as caught:
        async with statews.open_websocket(options(peer, cafile, "always")):
            pass  # pragma: no cover
    cause = caught.value.__cause__
    assert isinstance(cause, HTTP2Error)
    assert "header" in str(cause).lower()


# ------------------------------------------------------------- resets and GOAWAY


async def test_rst_stream_mid_message_is_1006_with_the_http2_error(
    nursery: trio.Nursery, cafile: str
) -> None:
    """The peer resets one stream in the middle of a fragmented message: that WebSocket
    ends with 1006, the HTTP/2 error as the cause; the other on the connection goes on."""

    async def script(conn: PeerConnection, stream: PeerStream) -> None:
        if stream.headers[":path"] == "/reset":
            await stream.respond(200)
            await stream.send(server_frame(TEXT, b"half a mess", fin=False))
            await trio.sleep(0.1)
            await stream.rst(2)  # INTERNAL_ERROR
            return
        await echo_script(conn, stream)

    peer = await start_h2_peer(nursery, script)
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            other = await statews.start_link(inner, options(peer, cafile, "always"))
            await other.connect()
            reset = await statews.start_link(inner, options(peer, cafile, "always", "/reset"))
            await reset.connect()
            with pytest.raises(ConnectionClosed) as caught:
                await reset.recv()
            assert caught.value.code == 1006
            cause = caught.value.__cause__
            assert isinstance(cause, HTTP2Error)
            assert cause.error_code == 2
            assert "reset" in str(cause)
            await echo_check(other)
            await other.close()
    assert peer.connections == 1


async def test_goaway_with_streams_open_ends_each_with_1006(
    nursery: trio.Nursery, cafile: str
) -> None:
    """GOAWAY ends every stream of the connection (h2 accepts no frame after it): 1006 with
    the HTTP/2 error as cause; the next WebSocket gets a new connection."""
    peer = await start_h2_peer(nursery, echo_script)
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            sockets = [
                await statews.start_link(inner, options(peer, cafile, "always")) for _ in range(3)
            ]
            for ws in sockets:
                await ws.connect()
            assert len(peer.h2_connections) == 1
            await peer.h2_connections[0].goaway(11)  # ENHANCE_YOUR_CALM
            for ws in sockets:
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.recv()
                assert caught.value.code == 1006
                cause = caught.value.__cause__
                assert isinstance(cause, HTTP2Error)
                assert cause.error_code == 11
                assert "GOAWAY" in str(cause)
            again = await statews.start_link(inner, options(peer, cafile, "always"))
            await again.connect()
            await echo_check(again)
            await again.close()
    assert len(peer.h2_connections) == 2


# -------------------------------------------------------------------- flow control


async def test_send_blocks_on_a_closed_window_and_resumes_on_window_update(
    nursery: trio.Nursery, cafile: str
) -> None:
    """The peer grants 16 KiB per stream and acknowledges nothing: exactly 16 KiB leave,
    ``send`` blocks once ``write_limit`` is queued (nothing piles up), and WINDOW_UPDATE
    lets both messages through whole."""
    window, size = 16 * 1024, 200_000
    peer = await start_h2_peer(
        nursery, echo_script, settings={Settings.INITIAL_WINDOW_SIZE: window}, auto_window=False
    )
    first, second = b"\x01" * size, b"\x02" * size
    with trio.fail_after(10):
        async with statews.open_websocket(
            options(peer, cafile, "always", write_limit=64 * 1024)
        ) as ws:
            await ws.send(first)  # taken by the writer: the queue was empty
            with trio.move_on_after(0.5) as blocked:
                await ws.send(second)
            assert blocked.cancelled_caught, "send did not wait for the window"
            stream = peer.streams[0]
            await wait_for(lambda: stream.held >= window)
            await trio.sleep(0.1)
            assert stream.held == window  # what left: the window, not a byte more
            async with trio.open_nursery() as sending:
                sending.start_soon(ws.send, second)  # (the cancelled one queued nothing)
                await stream.open_window()
                assert await ws.recv() == Binary(first)  # echoed by the peer
                assert await ws.recv() == Binary(second)


async def test_a_reader_that_stops_closes_its_window(nursery: trio.Nursery, cafile: str) -> None:
    """The application reads nothing: the client acknowledges only what its reader took
    (the inbox holds ``max_queue`` messages), so the peer's window reaches zero with a
    bounded amount sent; reading reopens it and everything arrives."""
    count, size = 64, 64 * 1024
    flooding: list[PeerStream] = []

    async def flood(conn: PeerConnection, stream: PeerStream) -> None:
        await stream.respond(200)
        flooding.append(stream)
        for i in range(count):
            await stream.send(server_frame(BINARY, i.to_bytes(4, "big") * (size // 4)))
        await echo_frames(stream)

    peer = await start_h2_peer(nursery, flood)
    with trio.fail_after(20):
        async with statews.open_websocket(options(peer, cafile, "always", max_queue=2)) as ws:
            await wait_for(lambda: bool(flooding))
            stream = flooding[0]
            conn = stream.peer.h2
            await wait_for(lambda: conn.local_flow_control_window(stream.stream_id) <= 0)
            await trio.sleep(0.2)  # nothing more moves
            assert conn.local_flow_control_window(stream.stream_id) <= 0
            assert stream.sent <= STREAM_WINDOW + 4 * (size + 10), stream.sent
            assert stream.sent < count * size
            for i in range(count):
                assert await ws.recv() == Binary(i.to_bytes(4, "big") * (size // 4))


# ------------------------------------------------------------ MAX_CONCURRENT_STREAMS


async def test_more_streams_than_the_limit_open_another_connection(
    nursery: trio.Nursery, cafile: str
) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS = 2 and 5 WebSockets: three connections (2 + 2 + 1),
    never more streams on one than allowed; a stream that ends makes room for the next."""
    peer = await start_h2_peer(nursery, echo_script, settings={Settings.MAX_CONCURRENT_STREAMS: 2})
    with trio.fail_after(15):
        async with trio.open_nursery() as inner:
            sockets = [
                await statews.start_link(inner, options(peer, cafile, "always", f"/s{i}"))
                for i in range(5)
            ]
            async with trio.open_nursery() as connecting:
                for ws in sockets:
                    connecting.start_soon(ws.connect)
            for i, ws in enumerate(sockets):
                await echo_check(ws, f"m{i}")
            per_connection = [len(conn.streams) for conn in peer.h2_connections]
            assert sorted(per_connection) == [1, 2, 2]
            assert peer.connections == 3
            # One of a full connection ends: the next WebSocket takes its place.
            full = next(conn for conn in peer.h2_connections if len(conn.streams) == 2)
            leaving = next(
                sockets[int(s.headers[":path"][2:])] for s in peer.streams if s.peer is full
            )
            await leaving.close()
            late = await statews.start_link(inner, options(peer, cafile, "always", "/late"))
            await late.connect()
            await echo_check(late)
            assert peer.connections == 3
            assert peer.streams[-1].headers[":path"] == "/late"
            assert peer.streams[-1].peer is full
            for ws in [*sockets, late]:
                await ws.close()


async def test_a_reset_wakes_a_send_waiting_for_the_window(
    nursery: trio.Nursery, cafile: str
) -> None:
    """The writer waits for a window that will never open; the peer resets the stream:
    the WebSocket ends with 1006 at once, its writer woken, nothing left hanging."""
    peer = await start_h2_peer(
        nursery,
        echo_script,
        settings={Settings.INITIAL_WINDOW_SIZE: 1024},
        auto_window=False,
    )
    with trio.fail_after(5):
        async with statews.open_websocket(options(peer, cafile, "always")) as ws:
            await ws.send(b"\x00" * 100_000)
            await wait_for(lambda: bool(peer.streams) and peer.streams[0].held == 1024)
            await peer.streams[0].rst(8)  # CANCEL
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            assert caught.value.code == 1006
            assert isinstance(caught.value.__cause__, HTTP2Error)
            with pytest.raises(ConnectionClosed):
                await ws.send("after the reset")
        assert ws.state == "closed"
