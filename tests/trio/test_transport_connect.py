"""TCP connect: an IP address literal is connected to directly, a name through trio's
happy eyeballs (``trio.open_tcp_stream``); both reach a real loopback listener."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio

from statews.trio import transport


async def _accepting(family: socket.AddressFamily, host: str) -> trio.SocketListener:
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    await sock.bind((host, 0))
    sock.listen()
    return trio.SocketListener(sock)


def _refuse_happy_eyeballs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = trio.open_tcp_stream

    async def recording(*args: Any, **kwargs: Any) -> trio.SocketStream:
        calls.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(trio, "open_tcp_stream", recording)
    return calls


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
async def test_an_address_literal_is_connected_to_directly(
    monkeypatch: pytest.MonkeyPatch, family: socket.AddressFamily, host: str
) -> None:
    try:
        listener = await _accepting(family, host)
    except OSError:
        pytest.skip(f"no {host} here")
    calls = _refuse_happy_eyeballs(monkeypatch)
    port = listener.socket.getsockname()[1]
    with trio.fail_after(5):
        stream = await transport._open_tcp(
            host, port, happy_eyeballs_delay=0.25, local_address=None
        )
        peer = await listener.accept()
        await stream.send_all(b"x")
        assert await peer.receive_some(1) == b"x"
        assert stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await stream.aclose()
        await peer.aclose()
        await listener.aclose()
    assert calls == []


async def test_a_name_and_a_local_address_go_through_open_tcp_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = await _accepting(socket.AF_INET, "127.0.0.1")
    port = listener.socket.getsockname()[1]
    calls = _refuse_happy_eyeballs(monkeypatch)
    with trio.fail_after(5):
        for host, local in (("localhost", None), ("127.0.0.1", "127.0.0.1")):
            stream = await transport._open_tcp(
                host, port, happy_eyeballs_delay=0.25, local_address=local
            )
            await stream.aclose()
            await (await listener.accept()).aclose()
        await listener.aclose()
    assert [c[0] for c in calls] == ["localhost", "127.0.0.1"]


async def test_a_refused_literal_raises_the_os_error() -> None:
    listener = await _accepting(socket.AF_INET, "127.0.0.1")
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there any more
    with trio.fail_after(5), pytest.raises(OSError):
        await transport._open_tcp("127.0.0.1", port, happy_eyeballs_delay=0.25, local_address=None)
