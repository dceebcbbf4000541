"""The hostile-server table (:mod:`cases`), run row by row against the real client.

For every row: the application sees the expected exception (type, code, cause), the
server saw the expected close code on the wire (or no frame at all), the connection is
``closed`` and its tasks are gone within the row's bound, and the server's script ran
to its end (the client did not leave TCP hanging). Also the request-side table: options
that would inject CR, LF or NUL are refused before any connection is made.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

import statews
from statews import ConnectionClosed, Frame

from .cases import BASE_OPTIONS, CASES, INJECTIONS, Case, Injection
from .conftest import TLSSetup
from .harness import Seen, serve_steps


async def _drive(ws: statews.WebSocket, case: Case) -> tuple[BaseException, list[Frame], float]:
    """Run the client side of ``case``; return the error, messages read, and when it came."""
    start = trio.current_time()
    if case.phase == "handshake":
        with pytest.raises(case.expect) as info:
            await ws.connect()
        return info.value, [], trio.current_time() - start
    await ws.connect()
    await trio.sleep(case.idle)
    if case.action == "close":
        await ws.close()
    received: list[Frame] = []
    while True:
        try:
            received.append(await ws.recv())
        except ConnectionClosed as exc:
            return exc, received, trio.current_time() - start


def _check_error(case: Case, error: BaseException) -> None:
    assert isinstance(error, case.expect), repr(error)
    if case.code is not None:
        if isinstance(error, statews.HandshakeRejected):
            assert error.status == case.code
        elif isinstance(error, ConnectionClosed):
            # How the connection ended: the peer's Close, else the one we failed it with.
            ended = error.rcvd or error.sent
            assert (ended.code if ended else 1006) == case.code, repr(error)
            # RFC 6455 7.1.5: without the peer's Close, the close code is 1006.
            assert error.code == (error.rcvd.code if error.rcvd else 1006), repr(error)
        else:
            assert getattr(error, "code", None) == case.code, repr(error)
    cause = error.__cause__
    if case.cause is not None:
        assert isinstance(cause, case.cause), repr(cause)
        if isinstance(cause, statews.ProtocolError):
            assert cause.code == case.code, repr(cause)
    if isinstance(error, ConnectionClosed) and isinstance(cause, statews.RemoteProtocolError):
        # Our own failure, never dressed up as the peer's Close.
        assert error.rcvd is None
    if case.check is not None:
        case.check(error)


def _check_wire(case: Case, seen: Seen) -> None:
    if case.wire is None:
        assert seen.close_code is None, seen.frames
        assert seen.frames == [], seen.frames
    else:
        assert seen.close_code == case.wire, seen.frames
        # The Close is the last thing the client sent.
        assert seen.frames[-1][0] == 0x8
    if case.tls in ("untrusted", "wrong-host", "plaintext"):
        assert seen.headers is None, "no request may be sent over a refused TLS connection"
    if case.server_check is not None:
        case.server_check(seen)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_server(
    case: Case, nursery: trio.Nursery, tls_setups: dict[str, TLSSetup]
) -> None:
    tls = tls_setups[case.tls] if case.tls is not None else None
    server, seen = await serve_steps(nursery, case.steps, tls.server if tls else None)
    options = {**BASE_OPTIONS, **case.options}
    if tls is not None:
        options["ssl_options"] = tls.client
    scheme = "ws" if tls is None else "wss"
    with trio.fail_after(case.within):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, f"{scheme}://127.0.0.1:{server.port}/", **options)
            error, received, elapsed = await _drive(ws, case)
            assert ws.state == "closed"
        # The nursery is done: every task of the connection ended. The server's script
        # ends only when the client's TCP end reached it.
        await server.done.wait()
    _check_error(case, error)
    if case.received is not None:
        assert tuple(received) == case.received
    assert elapsed >= case.at_least, f"{elapsed:.3f} s: the timeout was not waited for"
    if case.connections is not None:
        assert seen.connections == case.connections
    _check_wire(case, seen)


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "ids must be unique"


async def _connect(nursery: trio.Nursery, url: str, options: dict[str, Any]) -> None:
    ws = await statews.start_link(nursery, url, **options)
    await ws.connect()


@pytest.mark.parametrize("injection", INJECTIONS, ids=[i.id for i in INJECTIONS])
async def test_request_injection_refused_before_connecting(
    injection: Injection, nursery: trio.Nursery
) -> None:
    server, seen = await serve_steps(nursery, ())
    url = injection.url.format(port=server.port)
    options = {**BASE_OPTIONS, **injection.options}
    with trio.fail_after(2):
        async with trio.open_nursery() as inner:
            with pytest.raises(statews.OptionsError):
                await _connect(inner, url, options)
        # Give a connection that was (wrongly) attempted time to reach the server.
        await trio.sleep(0.05)
    assert seen.connections == 0
