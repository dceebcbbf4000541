"""The clients the benchmark compares, behind one small interface.

Each client is a :class:`Client`: ``connect(endpoints, deflate=...)`` is an async context
manager yielding a :class:`Conn` whose ``send`` and ``recv`` are the client's own bound
methods whenever the client's API allows it, so that the benchmark loop pays no adapter
call per message. ``text()`` and ``binary()`` turn a payload into what ``send`` takes,
outside the timed loops.

- ``statews``: ``statews.open_websocket`` (the package in this tree, or a copy loaded
  under another module name with :func:`load_statews_variant` to compare prototypes).
- ``websockets``: ``websockets.trio.client.connect`` (websockets >= 16).
- ``trio-websocket``: ``trio_websocket.open_websocket_url``, default buffer sizes.
- ``httpx-ws``: ``httpx_ws.aconnect_ws`` (wsproto over httpx/httpcore, on trio through
  anyio), its own ``httpx.AsyncClient`` per connection as by default.
- ``picows`` (``runtime = "asyncio"``): picows's ``ws_connect`` on asyncio, a reference
  from outside the trio ecosystem (a Cython client with a callback API).
- ``limit``: ``trio.open_tcp_stream`` to a raw TCP echo server, messages framed with a
  2-byte big-endian length prefix (0xFFFF escapes to a 4-byte length for big messages):
  the same work (send a message, receive its echo) with no WebSocket at all. Connected
  with ``coalesce=True`` (the stream scenario), its sends go through a writer task that
  sends what has accumulated, as statews's writer does.

A client whose package is not installed is reported and skipped by ``run.py``
(:func:`make_client` raises :class:`Unavailable`).

Invariants: every client runs with permessage-deflate off unless ``deflate=True``, no
keepalive pings, and no message size limit (the 16 MiB scenario must pass); everything
else is the client's default, as an application would get it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

#: Read sizes of the limit client (bytes): at least statews's, up to 1 MiB for the rest
#: of a large message.
LIMIT_RECEIVE_SIZE = 64 * 1024
LIMIT_MAX_RECEIVE_SIZE = 1024 * 1024
#: Cap on message size given to the clients that require one (bytes).
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Endpoints:
    """Where the echo servers listen (from the server's JSON line)."""

    ws: str  # ws:// URL, permessage-deflate off
    ws_deflate: str  # ws:// URL, permessage-deflate on
    tcp: tuple[str, int]  # the length-prefixed TCP echo


@dataclass
class Conn:
    """An open connection: ``await send(prepared)``, ``await recv()``."""

    send: Callable[[Any], Awaitable[None]]
    recv: Callable[[], Awaitable[Any]]
    text: Callable[[str], Any]
    binary: Callable[[bytes], Any]


class Unavailable(Exception):
    """The client's package is not installed (or cannot be imported)."""


class Client:
    """A client under test; ``supports_deflate`` says whether it runs the deflate scenario,
    ``runtime`` which event loop its scenarios run on (``"trio"`` or ``"asyncio"``)."""

    name = "?"
    supports_deflate = False
    runtime = "trio"

    def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> Any:
        """An async context manager yielding a :class:`Conn`.

        ``idle``: the connection will only be held open (the idle scenario); the WebSocket
        clients ignore it, their reader tasks run anyway. ``coalesce``: a burst of sends
        follows (the stream scenario); only the limit client changes its writing for it.
        """
        raise NotImplementedError


def _import(client: str, module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{client}: {exc} (pip install the bench extra)") from exc


def _identity(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------- statews


def load_statews_variant(name: str, path: str) -> ModuleType:
    """Import the statews package directory ``path`` as module ``name`` (e.g. a patched copy).

    statews uses relative imports only, so a renamed copy imports side by side with the
    original and both can be measured in the same run, interleaved.
    """
    init = Path(path) / "__init__.py"
    if not init.exists():
        raise SystemExit(f"--variant {name}={path}: {init} does not exist")
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(Path(path))]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class StatewsClient(Client):
    """statews (or a variant of it loaded by :func:`load_statews_variant`)."""

    supports_deflate = True

    def __init__(self, name: str = "statews", module: ModuleType | None = None) -> None:
        if module is None:
            import statews  # noqa: PLC0415 - imported when selected only

            module = statews
        self.name = name
        self.module = module

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        mod = self.module
        if deflate:
            opened = mod.open_websocket(
                endpoints.ws_deflate,
                ping_interval=None,
                max_message_size=None,
                max_frame_size=None,
            )
        else:
            opened = mod.open_websocket(
                endpoints.ws,
                compression=None,
                ping_interval=None,
                max_message_size=None,
                max_frame_size=None,
            )
        async with opened as ws:
            yield Conn(ws.send, ws.recv, mod.Text, mod.Binary)


# --------------------------------------------------------------------------- websockets


class WebsocketsClient(Client):
    """websockets' trio client (``websockets.trio.client.connect``)."""

    name = "websockets"
    supports_deflate = True

    def __init__(self) -> None:
        self._connect = _import(self.name, "websockets.trio.client").connect

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        if deflate:
            opened = self._connect(endpoints.ws_deflate, ping_interval=None, max_size=None)
        else:
            opened = self._connect(
                endpoints.ws, compression=None, ping_interval=None, max_size=None
            )
        async with opened as ws:
            yield Conn(ws.send, ws.recv, _identity, _identity)


# --------------------------------------------------------------------------- trio-websocket


class TrioWebsocketClient(Client):
    """trio-websocket (``trio_websocket.open_websocket_url``); it has no permessage-deflate."""

    name = "trio-websocket"

    def __init__(self) -> None:
        self._open = _import(self.name, "trio_websocket").open_websocket_url

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        if deflate:
            raise ValueError("trio-websocket has no permessage-deflate")
        async with self._open(endpoints.ws, max_message_size=MAX_MESSAGE) as ws:
            yield Conn(ws.send_message, ws.get_message, _identity, _identity)


# --------------------------------------------------------------------------- httpx-ws


class HttpxWsClient(Client):
    """httpx-ws (``httpx_ws.aconnect_ws``: wsproto over httpx) on trio through anyio; it
    has no permessage-deflate."""

    name = "httpx-ws"

    def __init__(self) -> None:
        self._connect = _import(self.name, "httpx_ws").aconnect_ws
        self._events = _import(self.name, "wsproto.events")

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        if deflate:
            raise ValueError("httpx-ws has no permessage-deflate")
        events = self._events
        opened = self._connect(
            endpoints.ws,
            max_message_size_bytes=MAX_MESSAGE,
            keepalive_ping_interval_seconds=None,
        )
        async with opened as ws:
            yield Conn(ws.send, ws.receive, events.TextMessage, events.BytesMessage)


# --------------------------------------------------------------------------- picows


class PicowsClient(Client):
    """picows on asyncio (a reference from outside trio): frames arrive in a listener
    callback and are queued for ``recv``; ``send`` writes at once (it never waits)."""

    name = "picows"
    runtime = "asyncio"

    def __init__(self) -> None:
        self._picows = _import(self.name, "picows")

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        import asyncio  # noqa: PLC0415 - only this client runs on asyncio

        if deflate:
            raise ValueError("picows has no permessage-deflate")
        picows = self._picows
        text_type, binary_type = picows.WSMsgType.TEXT, picows.WSMsgType.BINARY
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Listener(picows.WSListener):  # type: ignore[misc, name-defined]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type in (text_type, binary_type):
                    received.put_nowait(frame.get_payload_as_bytes())
                elif frame.msg_type == picows.WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        transport, _ = await picows.ws_connect(Listener, endpoints.ws, max_frame_size=MAX_MESSAGE)
        send_frame = transport.send

        async def send(prepared: tuple[Any, bytes]) -> None:
            send_frame(*prepared)

        try:
            yield Conn(
                send,
                received.get,
                lambda text: (text_type, text.encode()),
                lambda data: (binary_type, data),
            )
        finally:
            transport.send_close(picows.WSCloseCode.OK)
            await transport.wait_disconnected()


# --------------------------------------------------------------------------- the limit


class _Framed:
    """Length-prefixed messages over a trio stream: the cheapest client that does the work."""

    __slots__ = ("_buf", "_stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    async def send(self, message: bytes | str) -> None:
        data = message.encode() if isinstance(message, str) else message
        n = len(data)
        if n < 0xFFFF:
            await self._stream.send_all(n.to_bytes(2, "big") + data)
        else:
            await self._stream.send_all(b"\xff\xff" + n.to_bytes(4, "big"))
            await self._stream.send_all(data)

    async def recv(self) -> bytes:
        buf = self._buf
        receive = self._stream.receive_some
        while True:
            have = len(buf)
            missing = 0
            if have >= 2:
                n = (buf[0] << 8) | buf[1]
                start = 2
                if n == 0xFFFF:
                    if have < 6:
                        n = 0xFFFF  # the 4-byte length is not in yet
                    else:
                        n = int.from_bytes(buf[2:6], "big")
                        start = 6
                end = start + n
                if (start == 6 or n != 0xFFFF) and have >= end:
                    with memoryview(buf) as view:
                        message = view[start:end].tobytes()
                    del buf[:end]
                    return message
                missing = end - have
            # The length is known once the prefix is in: read what is missing of a large
            # message in big reads (the cheapest way to receive it).
            data = await receive(min(max(missing, LIMIT_RECEIVE_SIZE), LIMIT_MAX_RECEIVE_SIZE))
            if not data:
                raise EOFError("the echo server closed the connection")
            buf += data


#: The coalescing limit's back-pressure bound and largest write: statews's defaults
#: (``write_limit``, the writer's ``COALESCE_LIMIT``).
LIMIT_WRITE_LIMIT = 64 * 1024
LIMIT_COALESCE = 256 * 1024


class _CoalescingFramed(_Framed):
    """:class:`_Framed` whose sends only queue; a writer task (:meth:`run`) sends what has
    accumulated in one ``send_all``, as statews's writer does. ``send`` waits only while
    ``LIMIT_WRITE_LIMIT`` bytes are queued."""

    __slots__ = ("_has_output", "_out", "_room")

    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self._out = bytearray()
        self._has_output = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()

    async def send(self, message: bytes | str) -> None:
        data = message.encode() if isinstance(message, str) else message
        while len(self._out) >= LIMIT_WRITE_LIMIT:
            await self._room.park()
        n = len(data)
        self._out += n.to_bytes(2, "big") if n < 0xFFFF else b"\xff\xff" + n.to_bytes(4, "big")
        self._out += data
        self._has_output.unpark()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def run(self) -> None:
        out = self._out
        while True:
            if not out:
                await self._has_output.park()
                continue
            chunk = bytes(out[:LIMIT_COALESCE])
            del out[:LIMIT_COALESCE]
            await self._stream.send_all(chunk)
            self._room.unpark_all()


class LimitClient(Client):
    """Raw trio TCP with a 2-byte length prefix: what the WebSocket clients are measured against.

    Its "connect" is TCP connect, one 200-byte exchange standing for the upgrade request
    and response, and close: the floor of a connection that does one round trip. Held
    ``idle``, it parks one task in ``receive_some`` (as every WebSocket client's reader
    does: an idle connection must still notice what the peer sends). With ``coalesce``,
    sends go through a writer task (:class:`_CoalescingFramed`).
    """

    name = "limit"
    HANDSHAKE = b"x" * 200

    @asynccontextmanager
    async def connect(
        self,
        endpoints: Endpoints,
        *,
        deflate: bool = False,
        idle: bool = False,
        coalesce: bool = False,
    ) -> AsyncIterator[Conn]:
        if deflate:
            raise ValueError("the limit client has no permessage-deflate")
        host, port = endpoints.tcp
        stream = await trio.open_tcp_stream(host, port)
        try:
            framed = _CoalescingFramed(stream) if coalesce else _Framed(stream)
            if coalesce:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(framed.run)  # type: ignore[attr-defined]
                    await framed.send(self.HANDSHAKE)
                    await framed.recv()
                    yield Conn(framed.send, framed.recv, _identity, _identity)
                    nursery.cancel_scope.cancel()
                return
            await framed.send(self.HANDSHAKE)
            await framed.recv()
            conn = Conn(framed.send, framed.recv, _identity, _identity)
            if idle:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(stream.receive_some, LIMIT_RECEIVE_SIZE)
                    yield conn
                    nursery.cancel_scope.cancel()
            else:
                yield conn
        finally:
            await stream.aclose()


# --------------------------------------------------------------------------- registry

#: Client names in the order the table lists them.
CLIENT_NAMES = ("limit", "statews", "websockets", "trio-websocket", "httpx-ws", "picows")


def make_client(name: str) -> Client:
    """A client by name (one of :data:`CLIENT_NAMES`).

    Raises:
        Unavailable: its package is not installed.
    """
    factories: dict[str, Callable[[], Client]] = {
        "limit": LimitClient,
        "statews": StatewsClient,
        "websockets": WebsocketsClient,
        "trio-websocket": TrioWebsocketClient,
        "httpx-ws": HttpxWsClient,
        "picows": PicowsClient,
    }
    return factories[name]()
