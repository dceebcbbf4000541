"""HTTP/2 peers for the RFC 8441 tests, on loopback: hypercorn and a scripted h2 server.

:func:`start_hypercorn` runs hypercorn (trio worker, in the test's own loop) over TLS with
ALPN h2, serving :func:`echo_app`, an ASGI app that records every WebSocket scope
(``http_version``, the client's address: one port per TCP connection) and serves:

* ``/echo``: echoes every message;
* ``/close/CODE``: closes with CODE and returns at once (hypercorn then forgets the
  stream: the client's Close in answer crashes its connection, hypercorn issue #329);
* ``/close-wait/CODE``: closes with CODE, then waits for the disconnect;
* ``/flood/N/SIZE``: sends N binary messages of SIZE bytes, then echoes.

:func:`start_h2_peer` is our own HTTP/2 server built with ``h2``'s server side over a raw
trio TCP listener (TLS optional, ALPN h2 / http/1.1): it sends the SETTINGS it is given
and runs ``script(peer, stream)`` for every request; :class:`PeerStream` gives the script
the stream's bytes (a ``receive_some``, so :class:`peers.FrameReader` reads frames) and
the HTTP/2 moves (respond, send, reset, GOAWAY, window updates). A TLS connection on
which the client selected no h2 is answered as HTTP/1.1 by ``http11``.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio
import trustme
from hypercorn.config import Config
from hypercorn.trio import serve
from peers import FrameReader
from wire import CLOSE, server_frame


@dataclass
class Scope:
    http_version: str
    client: tuple[str, int]
    path: str
    subprotocols: list[str]
    close_code: int | None = None


@dataclass
class Hypercorn:
    #: 0 on a Unix socket.
    port: int
    tls: bool = True
    scopes: list[Scope] = field(default_factory=list)
    stop: trio.Event = field(default_factory=trio.Event)
    #: Sockets of other tests that held the port's number when the server bound it.
    unrelated: frozenset[tuple[str, str]] = frozenset()

    def established(self) -> int:
        """How many TCP connections the server has open (ESTABLISHED, its side)."""
        return len(_established(self.port) - self.unrelated)

    def url(self, path: str = "/echo") -> str:
        return f"{'wss' if self.tls else 'ws'}://localhost:{self.port or ''}{path}"


def echo_app(server: Hypercorn) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        assert scope["type"] == "websocket"
        client = tuple(scope["client"] or ("unix", 0))  # None on a Unix socket
        record = Scope(scope["http_version"], client, scope["path"], scope["subprotocols"])
        server.scopes.append(record)
        await receive()  # websocket.connect
        subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        parts = scope["path"].strip("/").split("/")
        if parts[0] in ("close", "close-wait"):
            await send({"type": "websocket.close", "code": int(parts[1])})
            if parts[0] == "close-wait":  # the client's Close reaches a stream still open
                record.close_code = (await receive()).get("code")
            return
        if parts[0] == "flood":
            for i in range(int(parts[1])):
                await send(
                    {"type": "websocket.send", "bytes": i.to_bytes(4, "big") * (int(parts[2]) // 4)}
                )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record.close_code = message.get("code")
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


async def start_hypercorn(
    nursery: trio.Nursery,
    ca: trustme.CA,
    tmp_path: Any,
    *,
    bind: str = "127.0.0.1:0",
    tls: bool = True,
) -> Hypercorn:
    """hypercorn on ``bind`` (``unix:PATH`` for a Unix socket), with TLS for localhost and
    ALPN h2 and http/1.1 (or without TLS: h2c with prior knowledge, or HTTP/1.1), stopped
    by ``stop``."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "h2cert.pem", tmp_path / "h2key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    config = Config()
    config.bind = [bind]
    if tls:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    server = Hypercorn(0, tls)
    binds = await nursery.start(
        partial(serve, echo_app(server), config, shutdown_trigger=server.stop.wait)
    )
    if not bind.startswith("unix:"):
        server.port = int(binds[0].rsplit(":", 1)[1])
        # bind(0) with SO_REUSEADDR may pick the local port of a client socket another
        # test still has open: its row has the same local address and is not ours.
        server.unrelated = frozenset(_established(server.port))
    return server


def _established(port: int) -> set[tuple[str, str]]:
    """The ESTABLISHED TCP sockets whose local address is 127.0.0.1:``port`` (local and
    remote address, as Linux's /proc/net/tcp writes them)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {(row[1], row[2]) for row in rows if row[1] == local and row[3] == "01"}


# ------------------------------------------------------------------ the scripted h2 peer


class PeerStream:
    """One request stream on the scripted peer's side."""

    def __init__(self, peer: PeerConnection, stream_id: int, headers: list[tuple[str, str]]):
        self.peer = peer
        self.stream_id = stream_id
        self.headers = dict(headers)
        self._data = bytearray()
        self.ended = False
        self.reset = False
        #: DATA payload bytes sent to the client so far.
        self.sent = 0
        self._wake = trio.Event()

    def _kick(self) -> None:
        self._wake.set()
        self._wake = trio.Event()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._data and not self.ended and not self.reset:
            await self._wake.wait()
        data = bytes(self._data[: max_bytes or len(self._data)])
        del self._data[: len(data)]
        return data

    async def respond(self, status: int = 200, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.peer.h2.send_headers(self.stream_id, [(":status", str(status)), *headers])
        await self.peer.flush()

    async def send(self, data: bytes, *, end: bool = False) -> None:
        """DATA frames, waiting for the client's windows."""
        conn = self.peer.h2
        view = memoryview(data)
        while view:
            room = min(conn.local_flow_control_window(self.stream_id), conn.max_outbound_frame_size)
            if room <= 0:
                await self.peer.window_changed()
                continue
            conn.send_data(self.stream_id, bytes(view[:room]))
            self.sent += room if room < len(view) else len(view)
            view = view[room:]
            await self.peer.flush()
        if end:
            conn.end_stream(self.stream_id)
            await self.peer.flush()

    async def send_all(self, data: bytes) -> None:
        """:meth:`send`, as a trio stream's method (for the helpers of peers.py)."""
        await self.send(data)

    @property
    def held(self) -> int:
        """Bytes received and not yet given back as window (``auto_window=False``)."""
        return self.peer.held.get(self.stream_id, 0)

    async def open_window(self) -> None:
        """Give back the window held (WINDOW_UPDATE on the stream and the connection) and
        from now on acknowledge this stream's data as it arrives."""
        held = self.peer.held.pop(self.stream_id, 0)
        self.peer.acknowledged.add(self.stream_id)
        if held:
            self.peer.h2.increment_flow_control_window(held, self.stream_id)
            self.peer.h2.increment_flow_control_window(held)
        await self.peer.flush()

    async def end(self) -> None:
        self.peer.h2.end_stream(self.stream_id)
        await self.peer.flush()

    async def rst(self, code: int = 8) -> None:
        self.peer.h2.reset_stream(self.stream_id, code)
        await self.peer.flush()


class PeerConnection:
    """One client connection on the scripted peer's side.

    With ``auto_window`` the client's DATA is acknowledged as it arrives; without, the
    windows stay as consumed (``held``) until :meth:`PeerStream.open_window`.
    """

    def __init__(
        self, stream: trio.abc.Stream, settings: dict[int, int], *, auto_window: bool = True
    ) -> None:
        self.stream = stream
        self.auto_window = auto_window
        self.held: dict[int, int] = {}
        #: Streams acknowledged as their data arrives even without ``auto_window``.
        self.acknowledged: set[int] = set()
        #: The client sent GOAWAY.
        self.goaway_received = False
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.streams: dict[int, PeerStream] = {}
        self._lock = trio.Lock()
        self._window = trio.Event()
        self.closed = trio.Event()

    async def flush(self) -> None:
        async with self._lock:
            data = self.h2.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def window_changed(self) -> None:
        await self._window.wait()

    async def goaway(self, code: int = 0) -> None:
        self.h2.close_connection(code)
        await self.flush()


PeerScript = Callable[[PeerConnection, PeerStream], Awaitable[None]]


@dataclass
class H2Peer:
    port: int
    tls: bool
    connections: int = 0
    streams: list[PeerStream] = field(default_factory=list)
    h2_connections: list[PeerConnection] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"{'wss' if self.tls else 'ws'}://localhost:{self.port}{path}"


async def start_h2_peer(
    nursery: trio.Nursery,
    script: PeerScript,
    *,
    connect_protocol: bool = True,
    settings: dict[int, int] | None = None,
    context: ssl.SSLContext | None = None,
    http11: Callable[[trio.abc.Stream], Awaitable[None]] | None = None,
    auto_window: bool = True,
) -> H2Peer:
    """Listen on 127.0.0.1; speak HTTP/2 (h2c, or TLS with ``context``) to each client;
    ``settings`` are sent with ENABLE_CONNECT_PROTOCOL (1, or absent without
    ``connect_protocol``); ``auto_window``: see :class:`PeerConnection`."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    peer = H2Peer(listeners[0].socket.getsockname()[1], context is not None)
    values = {h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol)}
    values.update(settings or {})
    if not connect_protocol:
        del values[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL]

    async def run(sock: trio.SocketStream) -> None:
        peer.connections += 1
        stream: trio.abc.Stream = sock
        try:
            if context is not None:
                tls = trio.SSLStream(sock, context, server_side=True)
                await tls.do_handshake()
                stream = tls
                if tls.selected_alpn_protocol() != "h2":
                    assert http11 is not None, "the client did not select h2"
                    await http11(tls)
                    return
            conn = PeerConnection(stream, values, auto_window=auto_window)
            peer.h2_connections.append(conn)
            await _serve_h2(peer, conn, script)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    nursery.start_soon(partial(trio.serve_listeners, run, listeners))
    return peer


async def _serve_h2(peer: H2Peer, conn: PeerConnection, script: PeerScript) -> None:
    conn.h2.initiate_connection()
    await conn.flush()
    async with trio.open_nursery() as nursery:
        while True:
            try:
                data = await conn.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                break  # the client went away (caught here: the nursery would group it)
            if not data:
                break
            for event in conn.h2.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    stream = PeerStream(conn, event.stream_id, event.headers)  # type: ignore[arg-type]
                    conn.streams[event.stream_id] = stream
                    peer.streams.append(stream)
                    nursery.start_soon(_run_script, script, conn, stream)
                elif isinstance(event, h2.events.DataReceived):
                    stream = conn.streams[event.stream_id]
                    stream._data += event.data
                    size = event.flow_controlled_length
                    if conn.auto_window or event.stream_id in conn.acknowledged:
                        conn.h2.acknowledge_received_data(size, event.stream_id)
                    else:
                        conn.held[event.stream_id] = conn.held.get(event.stream_id, 0) + size
                    stream._kick()
                elif isinstance(event, h2.events.StreamEnded):
                    conn.streams[event.stream_id].ended = True
                    conn.streams[event.stream_id]._kick()
                elif isinstance(event, h2.events.StreamReset):
                    conn.streams[event.stream_id].reset = True
                    conn.streams[event.stream_id]._kick()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    conn.goaway_received = True
                elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                    conn._window.set()
                    conn._window = trio.Event()
            await conn.flush()
        nursery.cancel_scope.cancel()
    conn.closed.set()


async def echo_script(conn: PeerConnection, stream: PeerStream) -> None:
    """Accept the WebSocket (200), then :func:`echo_frames`."""
    await stream.respond(200)
    await echo_frames(stream)


async def echo_frames(stream: PeerStream) -> None:
    """Echo the client's data frames until its Close, then answer the Close with its
    payload and END_STREAM."""
    reader = FrameReader(stream)
    while (frame := await reader.frame()) is not None:
        opcode, fin, payload = frame
        if opcode == CLOSE:
            await stream.send(server_frame(CLOSE, payload), end=True)
            return
        await stream.send(server_frame(opcode, payload, fin=fin))


async def _run_script(script: PeerScript, conn: PeerConnection, stream: PeerStream) -> None:
    """``script``, ended quietly when the client goes away under it."""
    with contextlib.suppress(
        trio.BrokenResourceError, trio.ClosedResourceError, h2.exceptions.ProtocolError
    ):
        await script(conn, stream)


def peer_context(ca: trustme.CA, alpn: list[str]) -> ssl.SSLContext:
    """A server TLS context for localhost from ``ca`` selecting among ``alpn``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    context.set_alpn_protocols(alpn)
    return context
