"""The declared lifecycle drives real connections: every transition, every operation.

The expected transitions and permissions are read from ``statews.lifecycle`` itself,
so this file holds no second copy of the lifecycle: it checks that real connections
go through every declared transition and that the runtime refuses exactly what the
declaration refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import trio
from peers import FrameReader, Script, WsServer, accept_upgrade, read_request, serve_raw
from wire import close_frame, server_frame

import statews
from statews import Close, Text
from statews.lifecycle import OPERATIONS, STATES, Lifecycle

Transition = tuple[str, str, str]
DECLARED: set[Transition] = {
    (t.source.id, event.id, t.target.id)
    for state in Lifecycle.states
    for t in state.transitions
    for event in t.events
}


class Recorder:
    """A lifecycle listener that records (source, event, target)."""

    def __init__(self) -> None:
        self.seen: list[Transition] = []

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self.seen.append((source.id, event, target.id))


async def started(
    nursery: trio.Nursery, url: str, **options: Any
) -> tuple[statews.WebSocket, Recorder]:
    # Attached as an application would: through start_link (so every path of the
    # declaration below is also what a listener given there observes).
    recorder = Recorder()
    ws = await statews.start_link(nursery, url, listeners=[recorder], **options)
    return ws, recorder


async def wait_for_state(ws: statews.WebSocket, state: str) -> None:
    while ws.state != state:
        await trio.sleep(0.005)


# ------------------------------------------------------------------ raw peers


async def silent(stream: trio.SocketStream) -> None:
    """Never answers the upgrade request."""
    await trio.sleep(5)


async def deaf(stream: trio.SocketStream) -> None:
    """Accepts the upgrade, then reads and answers nothing."""
    await accept_upgrade(stream)
    await trio.sleep(5)


async def refuses(stream: trio.SocketStream) -> None:
    await read_request(stream)
    await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


async def sends_invalid_utf8(stream: trio.SocketStream) -> None:
    """Accepts, sends a text frame that is not UTF-8, then answers the client's Close."""
    await accept_upgrade(stream)
    await stream.send_all(server_frame(0x1, b"\xc0\x80"))
    code = await FrameReader(stream).close_code()
    await stream.send_all(close_frame(code or 1000))


async def vanishes(stream: trio.SocketStream) -> None:
    """Accepts, then TCP closes without a Close."""
    await accept_upgrade(stream)


async def drops_after_the_close(stream: trio.SocketStream) -> None:
    await accept_upgrade(stream)
    await FrameReader(stream).close_code()  # then TCP closes without a Close back


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Session:
    """A scenario of one shape: start a connection to ``peer``, connect, then close or read.

    Calling it plays it and returns the transitions seen.
    """

    #: A path of the `websockets` server (see peers.scenario_handler), or a raw script.
    peer: str | Script = "/echo"
    options: Mapping[str, Any] = field(default_factory=dict)
    #: True: ``connect()`` succeeds; False: it is not called; an exception type: it raises that
    #: (and the scenario ends there).
    connect: bool | type[BaseException] = True
    #: Then ``"close"``: ``close()`` returns; an exception type: ``recv()`` raises it.
    then: Literal["close"] | type[statews.ConnectionClosed] = "close"

    async def __call__(self, nursery: trio.Nursery, server: WsServer) -> list[Transition]:
        if isinstance(self.peer, str):
            url = server.url(self.peer)
        else:
            url = (await serve_raw(nursery, self.peer)).url()
        ws, rec = await started(nursery, url, **self.options)
        if not isinstance(self.connect, bool):
            with pytest.raises(self.connect):
                await ws.connect()
            return rec.seen
        if self.connect:
            await ws.connect()
        if self.then == "close":
            await ws.close()
        else:
            with pytest.raises(self.then):
                await ws.recv()
        return rec.seen


async def closed_while_upgrading(nursery: trio.Nursery, server: WsServer) -> list[Transition]:
    raw = await serve_raw(nursery, silent)
    ws, rec = await started(nursery, raw.url())
    async with trio.open_nursery() as inner:

        async def connect() -> None:
            with pytest.raises(statews.ConnectionClosed):
                await ws.connect()

        inner.start_soon(connect)
        await wait_for_state(ws, "upgrading")
        await ws.close()
    return rec.seen


async def cancelled_while_connected(nursery: trio.Nursery, server: WsServer) -> list[Transition]:
    async with trio.open_nursery() as inner:
        ws, rec = await started(inner, server.url())
        await ws.connect()
        inner.cancel_scope.cancel()
    return rec.seen


async def cancelled_while_closing(nursery: trio.Nursery, server: WsServer) -> list[Transition]:
    raw = await serve_raw(nursery, deaf)
    async with trio.open_nursery() as inner:
        ws, rec = await started(inner, raw.url(), close_timeout=10)
        await ws.connect()
        await ws.send(Close(1000, ""))
        assert ws.state == "closing"
        inner.cancel_scope.cancel()
    return rec.seen


Scenario = Callable[[trio.Nursery, WsServer], Awaitable[list[Transition]]]
NORMAL_SESSION = Session()
SCENARIOS: dict[Transition, Scenario] = {
    ("idle", "connect", "upgrading"): NORMAL_SESSION,
    ("upgrading", "upgraded", "connected"): NORMAL_SESSION,
    ("connected", "close_requested", "closing"): NORMAL_SESSION,
    ("closing", "close_completed", "closed"): NORMAL_SESSION,
    ("connected", "close_received", "closing"): Session(
        "/close?code=1001", then=statews.ConnectionClosed
    ),
    ("upgrading", "upgrade_failed", "closed"): Session(refuses, connect=statews.HandshakeRejected),
    ("connected", "failed", "closing"): Session(sends_invalid_utf8, then=statews.ConnectionClosed),
    ("connected", "connection_lost", "closed"): Session(
        vanishes, then=statews.ConnectionClosedError
    ),
    ("closing", "close_timeout", "closed"): Session(deaf, {"close_timeout": 0.1}),
    ("closing", "connection_lost", "closed"): Session(drops_after_the_close),
    ("idle", "aborted", "closed"): Session(connect=False),
    ("upgrading", "aborted", "closed"): closed_while_upgrading,
    ("connected", "aborted", "closed"): cancelled_while_connected,
    ("closing", "aborted", "closed"): cancelled_while_closing,
}


def test_every_declared_transition_has_a_scenario() -> None:
    assert set(SCENARIOS) == DECLARED


@pytest.mark.parametrize("transition", sorted(SCENARIOS), ids="-".join)
async def test_transition_happens_on_a_real_connection(
    nursery: trio.Nursery, ws_server: WsServer, transition: Transition
) -> None:
    with trio.fail_after(5):
        seen = await SCENARIOS[transition](nursery, ws_server)
    assert transition in seen
    assert seen[-1][2] == "closed"  # every scenario ends closed
    assert set(seen) <= DECLARED


# ------------------------------------------------------------------ operations


async def put_in_state(nursery: trio.Nursery, ws_server: WsServer, state: str) -> statews.WebSocket:
    if state == "upgrading":
        raw = await serve_raw(nursery, silent)
        ws = await statews.start_link(nursery, raw.url())

        async def connect() -> None:
            with pytest.raises(statews.WebSocketError):
                await ws.connect()

        nursery.start_soon(connect)
        await wait_for_state(ws, "upgrading")
        return ws
    if state == "closing":
        raw = await serve_raw(nursery, deaf)
        ws = await statews.start_link(nursery, raw.url(), close_timeout=5)
        await ws.connect()
        await ws.send(Close(1000, ""))
        return ws
    ws = await statews.start_link(nursery, ws_server.url())
    if state in ("connected", "closed"):
        await ws.connect()
    if state == "closed":
        await ws.close()
    return ws


async def attempt(ws: statews.WebSocket, operation: str) -> None:
    if operation == "connect":
        await ws.connect()
    elif operation == "send":
        await ws.send(Text("x"))
    elif operation == "recv":
        await ws.recv(timeout=0.01)
    elif operation == "ping":
        with trio.move_on_after(0.05):
            await ws.ping()
    elif operation == "peername":
        ws.peername()
    elif operation == "sockname":
        ws.sockname()
    elif operation == "setopts":
        await ws.setopts(active=False)
    elif operation == "controlling_process":
        send, _ = trio.open_memory_channel[statews.Delivery](1)
        await ws.controlling_process(send)
    elif operation == "close":
        with trio.move_on_after(0.05):
            await ws.close()
    else:
        raise AssertionError(f"no attempt for {operation}")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_operations_follow_the_declaration(
    nursery: trio.Nursery, ws_server: WsServer, state: str, operation: str
) -> None:
    with trio.fail_after(5):
        ws = await put_in_state(nursery, ws_server, state)
        assert ws.state == state
        allowed = state in OPERATIONS[operation]
        try:
            await attempt(ws, operation)
        except statews.InvalidStateError as exc:
            assert not allowed, f"{operation} refused in {state}: {exc}"  # noqa: PT017
            assert repr(state) in str(exc)  # noqa: PT017
        except statews.ConnectionClosed:
            # Once closed, a refusal says how the connection ended.
            assert not allowed or operation == "recv"
            assert state == "closed" or operation == "recv"
        except (statews.RecvTimeout, statews.WebSocketError):
            assert allowed
        else:
            assert allowed, f"{operation} was not refused in {state}"
        nursery.cancel_scope.cancel()


async def test_the_runtime_asks_the_declaration(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Withdraw a permission in the table: the runtime follows it."""
    patched = dict(OPERATIONS)
    patched["peername"] = frozenset({"closing"})
    monkeypatch.setattr("statews.lifecycle.machine.OPERATIONS", patched)
    with trio.fail_after(5):
        async with statews.open_websocket(ws_server.url()) as ws:
            with pytest.raises(statews.InvalidStateError, match="'connected'"):
                ws.peername()
