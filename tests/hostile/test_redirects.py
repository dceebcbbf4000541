"""A hostile redirect must not carry the application's credentials to another origin.

Two scripted servers on 127.0.0.1 (two ports: two origins). The first redirects the
upgrade to the second; the credentials given for the first must not reach the second,
nor come back to the first once dropped.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from peers import FrameReader, accept_upgrade, read_request, serve_raw
from wire import close_frame

import statews

OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "close_timeout": 0.5}
HEADERS = {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Trace": "keep"}


def _redirect_to(url: str) -> bytes:
    return f"HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\n\r\n".encode()


async def _accept_and_close(stream: trio.SocketStream) -> dict[str, str]:
    headers = await accept_upgrade(stream)
    await stream.send_all(close_frame(1000))
    await FrameReader(stream).close_code()
    return headers


@pytest.mark.parametrize("bounce_back", [False, True], ids=["a-to-b", "a-to-b-to-a"])
async def test_credentials_do_not_cross_origins(nursery: trio.Nursery, bounce_back: bool) -> None:
    seen_a: list[dict[str, str]] = []
    seen_b: list[dict[str, str]] = []
    ports: dict[str, int] = {}

    async def server_a(stream: trio.SocketStream) -> None:
        if not seen_a:
            _, headers = await read_request(stream)
            seen_a.append(headers)
            await stream.send_all(_redirect_to(f"ws://127.0.0.1:{ports['b']}/moved"))
            return
        seen_a.append(await _accept_and_close(stream))

    async def server_b(stream: trio.SocketStream) -> None:
        if bounce_back:
            _, headers = await read_request(stream)
            seen_b.append(headers)
            await stream.send_all(_redirect_to(f"ws://127.0.0.1:{ports['a']}/back"))
            return
        seen_b.append(await _accept_and_close(stream))

    a = await serve_raw(nursery, server_a)
    b = await serve_raw(nursery, server_b)
    ports.update(a=a.port, b=b.port)
    with trio.fail_after(5):
        async with statews.open_websocket(a.url("/start"), headers=HEADERS, **OPTIONS) as ws:
            with pytest.raises(statews.ConnectionClosedOK):
                await ws.recv()
    assert seen_a[0]["authorization"] == "Bearer secret"
    assert seen_a[0]["cookie"] == "session=1"
    later = seen_b + seen_a[1:]
    assert len(later) == (2 if bounce_back else 1)
    for headers in later:
        assert "authorization" not in headers, headers
        assert "cookie" not in headers, headers
        assert headers["x-trace"] == "keep"
