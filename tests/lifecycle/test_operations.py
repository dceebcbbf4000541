"""Every key of OPERATIONS is asked of the declared machine by the runtime: withdraw a
permission in the table and the operation is refused, naming itself and the state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from peers import WsServer

import statews
from statews.lifecycle import OPERATIONS, Operation

# operation -> (the state it is tried in, the call)
CALLS: dict[Operation, tuple[str, Callable[[statews.WebSocket, Any], Awaitable[object]]]] = {}


def _call(operation: Operation, state: str) -> Any:
    def register(function: Callable[[statews.WebSocket, Any], Awaitable[object]]) -> Any:
        CALLS[operation] = (state, function)
        return function

    return register


@_call("connect", "idle")
async def _connect(ws: statews.WebSocket, _: Any) -> object:
    return await ws.connect()


@_call("send", "connected")
async def _send(ws: statews.WebSocket, _: Any) -> object:
    return await ws.send("x")


@_call("recv", "connected")
async def _recv(ws: statews.WebSocket, _: Any) -> object:
    return await ws.recv(timeout=1)


@_call("ping", "connected")
async def _ping(ws: statews.WebSocket, _: Any) -> object:
    return await ws.ping()


@_call("peername", "connected")
async def _peername(ws: statews.WebSocket, _: Any) -> object:
    await trio.lowlevel.checkpoint()
    return ws.peername()


@_call("sockname", "connected")
async def _sockname(ws: statews.WebSocket, _: Any) -> object:
    await trio.lowlevel.checkpoint()
    return ws.sockname()


@_call("setopts", "connected")
async def _setopts(ws: statews.WebSocket, _: Any) -> object:
    return await ws.setopts(active=False)


@_call("controlling_process", "connected")
async def _controlling_process(ws: statews.WebSocket, channel: Any) -> object:
    return await ws.controlling_process(channel)


@_call("close", "connected")
async def _close(ws: statews.WebSocket, _: Any) -> object:
    return await ws.close()


def test_every_operation_has_a_call() -> None:
    assert set(CALLS) == set(OPERATIONS)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_withdrawn_permission_is_refused(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch, operation: Operation
) -> None:
    state, call = CALLS[operation]
    assert state in OPERATIONS[operation]  # allowed there by the real table
    patched = dict(OPERATIONS)
    patched[operation] = OPERATIONS[operation] - {state}
    monkeypatch.setattr("statews.lifecycle.machine.OPERATIONS", patched)
    owner, _receive = trio.open_memory_channel[statews.Delivery](1)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url(), ping_interval=None)
            if state == "connected":
                await ws.connect()
            assert ws.state == state
            with pytest.raises(statews.InvalidStateError) as info:
                await call(ws, owner)
            message = str(info.value)
            assert operation.replace("_", " ") in message or operation in message
            assert repr(state) in message
            nursery.cancel_scope.cancel()
