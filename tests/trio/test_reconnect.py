"""connect_forever: the backoff rule, the retry rule, and reconnecting against real peers.

Backoffs are tens of milliseconds with ``jitter=0`` so that waits are exact lower
bounds; scripted raw servers refuse, fail and close in the ways a real service does.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from peers import FrameReader, WsServer, accept_upgrade, echo_until_close, read_request, serve_raw
from wire import close_frame, server_frame, upgrade_response

import statews
from statews.core.errors import (
    ConnectError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeRejected,
    InvalidHandshake,
    OptionsError,
    RedirectError,
    TLSError,
)
from statews.trio.reconnect import Attempts, Backoff, connect_forever, is_transient

FAST: dict[str, Any] = {"backoff_initial": 0.05, "backoff_factor": 2.0, "jitter": 0.0}

# ------------------------------------------------------------------ the rules


def test_backoff_grows_to_its_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=30, factor=2, jitter=0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(10**6) == 30  # no overflow
    assert Backoff(initial=1, maximum=1, factor=1, jitter=0).delay(50) == 1


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_jitter_takes_at_most_its_fraction(draw: float) -> None:
    backoff = Backoff(initial=1, maximum=8, factor=2, jitter=0.5)
    for n in range(1, 8):
        full = min(8, 2 ** (n - 1))
        delay = backoff.delay(n, lambda: draw)
        assert delay == pytest.approx(full * (1 - 0.5 * draw))
        assert full / 2 <= delay <= full


def test_jitter_spreads_waits() -> None:
    delays = {Backoff(jitter=1.0).delay(3) for _ in range(50)}
    assert len(delays) > 40
    assert all(0 <= d <= 2.0 for d in delays)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"initial": 0}, "backoff_initial"),
        ({"initial": -1}, "backoff_initial"),
        ({"initial": float("nan")}, "backoff_initial"),
        ({"initial": 5, "maximum": 1}, "backoff_max"),
        ({"maximum": float("inf")}, "backoff_max"),
        ({"factor": 0.5}, "backoff_factor"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": True}, "jitter"),
        ({"initial": "1"}, "backoff_initial"),
    ],
)
def test_backoff_validation(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(OptionsError) as info:
        Backoff(**kwargs)  # type: ignore[arg-type]
    assert info.value.option == option


def rejected(status: int) -> HandshakeRejected:
    return HandshakeRejected(status, "", [], b"")


def broken_handshake() -> InvalidHandshake:
    error = InvalidHandshake("connection broke during the handshake")
    error.__cause__ = trio.BrokenResourceError()
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectError("refused"), True),
        (ConnectTimeout("slow"), True),
        (broken_handshake(), True),
        (rejected(500), True),
        (rejected(502), True),
        (rejected(503), True),
        (rejected(429), True),
        (rejected(400), False),
        (rejected(401), False),
        (rejected(403), False),
        (rejected(404), False),
        (rejected(302), False),
        (InvalidHandshake("wrong Sec-WebSocket-Accept"), False),
        (TLSError("certificate verify failed"), False),
        (RedirectError("loop"), False),
        (OptionsError("bad"), False),
        (ValueError("not ours"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_invalid_arguments_fail_before_any_io() -> None:
    for kwargs in ({"max_attempts": 0}, {"max_attempts": 1.5}, {"backoff_factor": 0}):
        with pytest.raises(OptionsError):
            async with connect_forever("ws://127.0.0.1:1/", **kwargs):
                pytest.fail("entered")
    with pytest.raises(OptionsError):
        async with connect_forever("http://127.0.0.1/"):
            pytest.fail("entered")


# ------------------------------------------------------------------ peers

Behaviour = Callable[[trio.SocketStream], Awaitable[None]]


async def serve_in_turn(nursery: trio.Nursery, *behaviours: Behaviour) -> list[int]:
    """A raw server: connection n runs behaviours[n] (the last one repeats); returns the
    list the server appends each connection's number to, and its port at the end."""
    seen: list[int] = []

    async def script(stream: trio.SocketStream) -> None:
        index = len(seen)
        seen.append(index)
        await behaviours[min(index, len(behaviours) - 1)](stream)

    server = await serve_raw(nursery, script)
    seen.append(server.port)  # popped by the caller
    return seen


async def start(nursery: trio.Nursery, *behaviours: Behaviour) -> tuple[str, list[int]]:
    seen = await serve_in_turn(nursery, *behaviours)
    port = seen.pop()
    return f"ws://127.0.0.1:{port}/", seen


async def reset(stream: trio.SocketStream) -> None:
    await read_request(stream)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()  # RST: the connection breaks during the handshake


def status(code: int, extra: str = "") -> Behaviour:
    async def answer(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(f"HTTP/1.1 {code} Nope\r\n{extra}Content-Length: 0\r\n\r\n".encode())

    return answer


async def accept_then_close_1000(stream: trio.SocketStream) -> None:
    await accept_upgrade(stream, close_frame(1000, b"bye"))
    await FrameReader(stream).close_code()


async def accept_then_drop(stream: trio.SocketStream) -> None:
    await accept_upgrade(stream, server_frame(0x1, b"hi"))
    # TCP ends without a Close frame: 1006


async def accept_then_close_1011(stream: trio.SocketStream) -> None:
    await accept_upgrade(stream, close_frame(1011))
    await FrameReader(stream).close_code()


async def consume(attempts: Attempts) -> list[statews.WebSocket]:
    """The usual loop: read until the connection ends, then let the policy decide."""
    seen = []
    async for ws in attempts:
        seen.append(ws)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            continue
    return seen


# ------------------------------------------------------------------ reconnecting


@pytest.mark.parametrize(
    "refusal", [reset, status(503), status(502), status(429)], ids=["reset", "503", "502", "429"]
)
async def test_refused_twice_then_accepted(nursery: trio.Nursery, refusal: Behaviour) -> None:
    url, seen = await start(nursery, refusal, refusal, accept_then_close_1000)
    with trio.fail_after(5):
        begin = trio.current_time()
        async with connect_forever(url, **FAST) as attempts:
            sockets = await consume(attempts)
        # waits of 0.05 and 0.1 s before attempts 2 and 3
        assert trio.current_time() - begin >= 0.15
    assert seen == [0, 1, 2]
    assert len(sockets) == 1
    assert attempts.attempts == 3
    assert attempts.failures == 0
    assert isinstance(attempts.last_error, InvalidHandshake | HandshakeRejected)
    assert sockets[0].state == "closed"


async def test_tcp_refusals_then_a_listener(nursery: trio.Nursery) -> None:
    # Take a free port, then leave it closed: connections are refused until we listen.
    probe = trio.socket.socket()
    await probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    async def listen_after_two_failures(attempts: Attempts) -> None:
        while attempts.failures < 2:
            await trio.sleep(0.005)
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, accept_then_close_1000, listeners)

    with trio.fail_after(5):
        async with connect_forever(f"ws://127.0.0.1:{port}/", **FAST) as attempts:
            nursery.start_soon(listen_after_two_failures, attempts)
            sockets = await consume(attempts)
    assert attempts.attempts == 3
    assert isinstance(attempts.last_error, ConnectError)
    assert len(sockets) == 1


@pytest.mark.parametrize(
    "abnormal", [accept_then_drop, accept_then_close_1011], ids=["tcp-drop", "close-1011"]
)
async def test_abnormal_close_reconnects_normal_close_stops(
    nursery: trio.Nursery, abnormal: Behaviour
) -> None:
    url, seen = await start(nursery, abnormal, abnormal, accept_then_close_1000)
    with trio.fail_after(5):
        async with connect_forever(url, **FAST) as attempts:
            sockets = await consume(attempts)
    assert seen == [0, 1, 2]
    assert len(sockets) == 3
    # one WebSocket and one lifecycle per attempt
    assert len({id(ws) for ws in sockets}) == 3
    assert len({id(ws.lifecycle) for ws in sockets}) == 3
    assert all(ws.state == "closed" for ws in sockets)
    reasons = [ws.closed_reason for ws in sockets]
    assert isinstance(reasons[0], ConnectionClosedError)
    assert isinstance(reasons[1], ConnectionClosedError)
    assert isinstance(reasons[2], statews.ConnectionClosedOK)
    assert reasons[2].code == 1000
    assert isinstance(attempts.last_error, ConnectionClosedError)
    assert attempts.attempts == 3


async def test_retry_after_is_a_floor(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, status(503, "Retry-After: 1\r\n"), accept_then_close_1000)
    with trio.fail_after(5):
        begin = trio.current_time()
        async with connect_forever(url, backoff_initial=0.01, jitter=0) as attempts:
            await consume(attempts)
        assert 1.0 <= trio.current_time() - begin < 2.0
    assert isinstance(attempts.last_error, HandshakeRejected)
    assert attempts.last_error.retry_after == 1.0
    assert seen == [0, 1]


async def test_backoff_longer_than_retry_after_wins(nursery: trio.Nursery) -> None:
    url, _ = await start(nursery, status(503, "Retry-After: 0\r\n"), accept_then_close_1000)
    with trio.fail_after(5):
        begin = trio.current_time()
        async with connect_forever(url, backoff_initial=0.3, jitter=0) as attempts:
            await consume(attempts)
        assert trio.current_time() - begin >= 0.3


@pytest.mark.parametrize("code", [400, 401, 403, 404])
async def test_client_errors_are_raised_not_retried(nursery: trio.Nursery, code: int) -> None:
    url, seen = await start(nursery, status(code), accept_then_close_1000)
    with trio.fail_after(5):
        with pytest.raises(HandshakeRejected) as info:
            async with connect_forever(url, **FAST) as attempts:
                await consume(attempts)
    assert info.value.status == code
    assert seen == [0]
    assert attempts.attempts == 1


async def test_invalid_handshake_is_not_retried(nursery: trio.Nursery) -> None:
    async def wrong_accept(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(upgrade_response("AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        await trio.sleep(1)

    url, seen = await start(nursery, wrong_accept)
    with trio.fail_after(5), pytest.raises(InvalidHandshake, match="Accept"):
        async with connect_forever(url, **FAST) as attempts:
            await consume(attempts)
    assert seen == [0]


async def test_max_attempts(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, status(503))
    with trio.fail_after(5):
        begin = trio.current_time()
        with pytest.raises(HandshakeRejected) as info:
            async with connect_forever(url, max_attempts=3, **FAST) as attempts:
                await consume(attempts)
        assert trio.current_time() - begin >= 0.15
    assert info.value.status == 503
    assert seen == [0, 1, 2]
    assert attempts.attempts == 3


async def test_max_attempts_counts_failures_in_a_row(nursery: trio.Nursery) -> None:
    # fail, connect (drop), fail, connect (drop), fail, fail -> gives up at 2 in a row
    url, seen = await start(
        nursery,
        status(503),
        accept_then_drop,
        status(503),
        accept_then_drop,
        status(503),
        status(503),
        accept_then_close_1000,
    )
    with trio.fail_after(5), pytest.raises(HandshakeRejected):
        async with connect_forever(url, max_attempts=2, **FAST) as attempts:
            await consume(attempts)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert attempts.attempts == 6


async def test_body_leaving_the_connection_open_stops(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with connect_forever(ws_server.url(), **FAST) as attempts:
            count = 0
            async for ws in attempts:
                count += 1
                await ws.send(statews.Text("once"))
                assert await ws.recv() == statews.Text("once")
        assert count == 1
        assert ws.state == "closed"
        assert isinstance(ws.closed_reason, statews.ConnectionClosedOK)
        assert attempts.attempts == 1


async def test_break_closes_the_connection(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, echo_until_close)
    opened = []
    with trio.fail_after(5):
        async with connect_forever(url, **FAST) as attempts:
            async for ws in attempts:
                opened.append(ws)
                break
    assert [ws.state for ws in opened] == ["closed"]
    reason = opened[0].closed_reason
    assert isinstance(reason, statews.ConnectionClosedOK)
    assert reason.code == 1000
    assert seen == [0]


async def test_body_exception_propagates_unwrapped(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, echo_until_close)
    opened = []

    async def body() -> None:
        async with connect_forever(url, **FAST) as attempts:
            async for ws in attempts:
                opened.append(ws)
                raise KeyError("from the body")

    with trio.fail_after(5), pytest.raises(KeyError, match="from the body"):
        await body()
    assert [ws.state for ws in opened] == ["closed"]
    assert seen == [0]


async def test_iteration_after_the_end_stops(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, accept_then_close_1000)
    with trio.fail_after(5):
        async with connect_forever(url, **FAST) as attempts:
            await consume(attempts)
            assert [ws async for ws in attempts] == []
    assert seen == [0]


async def test_cancelled_while_waiting(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, status(503))
    with trio.fail_after(5):
        begin = trio.current_time()
        with trio.move_on_after(0.3) as scope:
            async with connect_forever(url, backoff_initial=30, jitter=0) as attempts:
                await consume(attempts)
        assert scope.cancelled_caught
        assert trio.current_time() - begin < 1.0
    assert seen == [0]
    assert attempts.current is None


async def test_cancelled_while_connecting(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await trio.sleep_forever()

    url, _ = await start(nursery, silent)
    with trio.fail_after(5):
        with trio.move_on_after(0.2) as scope:
            async with connect_forever(url, **FAST) as attempts:
                await consume(attempts)
        assert scope.cancelled_caught
    assert attempts.attempts == 1


async def test_cancelled_while_connected(nursery: trio.Nursery) -> None:
    url, _ = await start(nursery, echo_until_close)
    opened: list[statews.WebSocket] = []
    with trio.fail_after(5):
        with trio.move_on_after(0.2) as scope:
            async with connect_forever(url, **FAST) as attempts:
                async for ws in attempts:
                    opened.append(ws)
                    await ws.recv()  # nothing comes: cancelled here
        assert scope.cancelled_caught
    assert [ws.state for ws in opened] == ["closed"]
    assert attempts.current is None
    assert attempts.attempts == 1


async def test_retry_if_decides(nursery: trio.Nursery) -> None:
    url, seen = await start(nursery, status(404), status(404), accept_then_close_1000)
    decided: list[BaseException] = []

    def retry_404(error: BaseException) -> bool:
        decided.append(error)
        return isinstance(error, HandshakeRejected) and error.status == 404

    with trio.fail_after(5):
        async with connect_forever(url, retry_if=retry_404, **FAST) as attempts:
            sockets = await consume(attempts)
    assert seen == [0, 1, 2]
    assert len(sockets) == 1
    assert [type(e) for e in decided] == [HandshakeRejected, HandshakeRejected]


# ------------------------------------------------------------------ the server's close code


async def close_codes_of(
    server: WsServer, path: str, at_most: int, **kwargs: Any
) -> tuple[list[statews.WebSocket], Attempts, float]:
    """Run the usual loop against ``server``'s ``path``, breaking after ``at_most``
    connections; return them, the iterator and the time the loop took."""
    sockets: list[statews.WebSocket] = []
    with trio.fail_after(5):
        begin = trio.current_time()
        async with connect_forever(server.url(path), **{**FAST, **kwargs}) as attempts:
            async for ws in attempts:
                sockets.append(ws)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()  # the server sends nothing before its Close
                if len(sockets) == at_most:
                    break
        return sockets, attempts, trio.current_time() - begin


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013, 1014])
async def test_server_close_with_a_retry_code_reconnects(ws_server: WsServer, code: int) -> None:
    sockets, attempts, took = await close_codes_of(
        ws_server, f"/close?code={code}&reason=restart", 3, backoff_initial=0.1
    )
    assert len({id(ws) for ws in sockets}) == 3
    assert all(ws.state == "closed" for ws in sockets)
    assert [ws.closed_reason.code for ws in sockets if ws.closed_reason] == [code] * 3
    assert took >= 0.2  # backoff_initial (jitter 0) before each of the 2 reconnections
    assert attempts.attempts == 3
    assert isinstance(attempts.last_error, ConnectionClosed)
    assert attempts.last_error.code == code


@pytest.mark.parametrize("code", [1000, 1008, 4000])
async def test_server_close_with_another_code_stops(ws_server: WsServer, code: int) -> None:
    sockets, attempts, _ = await close_codes_of(ws_server, f"/close?code={code}", 3)
    assert len(sockets) == 1
    assert sockets[0].closed_reason is not None
    assert sockets[0].closed_reason.code == code
    assert attempts.attempts == 1


@pytest.mark.parametrize(
    ("retry_codes", "code", "connections"),
    [
        ((), 1001, 1),
        ([1012], 1001, 1),
        ({1001}, 1012, 1),
        ((1000,), 1000, 3),
        (frozenset({4000, 4001}), 4001, 3),
        ((statews.CloseCode.GOING_AWAY,), 1001, 3),
    ],
)
async def test_retry_codes_decide(
    ws_server: WsServer, retry_codes: Any, code: int, connections: int
) -> None:
    sockets, attempts, _ = await close_codes_of(
        ws_server, f"/close?code={code}", 3, retry_codes=retry_codes
    )
    assert len(sockets) == connections
    assert attempts.retry_codes == frozenset(retry_codes)


@pytest.mark.parametrize("code", [1000, 1001, 1012, 4000])
async def test_the_application_closing_stops(ws_server: WsServer, code: int) -> None:
    # The echo server answers our Close with the same code: only who closed differs.
    opened = []
    with trio.fail_after(5):
        async with connect_forever(ws_server.url(), retry_codes=(code,), **FAST) as attempts:
            async for ws in attempts:
                opened.append(ws)
                await ws.close(code, "leaving")
                assert ws.closed_reason is not None
                assert ws.closed_reason.code == code
    assert len(opened) == 1
    assert attempts.attempts == 1


async def test_owner_going_away_stops(ws_server: WsServer) -> None:
    # An owner channel that closes makes the connection close with 1001 itself.
    opened = []
    with trio.fail_after(5):
        async with connect_forever(ws_server.url(), active=True, **FAST) as attempts:
            async for ws in attempts:
                opened.append(ws)
                assert ws.mailbox is not None
                await ws.mailbox.aclose()
                await ws.send(statews.Text("echo me"))  # its echo finds no owner
                while ws.state == "connected":
                    await trio.sleep(0.005)
    assert len(opened) == 1
    reason = opened[0].closed_reason
    assert reason is not None
    assert reason.code == 1001
    assert reason.sent is not None
    assert reason.sent.reason == "owner went away"


@pytest.mark.parametrize(
    ("retry_codes", "message"),
    [
        ("1001", "collection"),
        (1001, "collection"),
        ([1001, "1012"], "'1012'"),
        ([1006], "1006"),
        ([999], "999"),
        ([5000], "5000"),
        ([True], "True"),
    ],
)
async def test_retry_codes_validation(retry_codes: Any, message: str) -> None:
    with pytest.raises(OptionsError, match=message) as info:
        async with connect_forever("ws://127.0.0.1:1/", retry_codes=retry_codes):
            pytest.fail("entered")
    assert info.value.option == "retry_codes"
