"""``statews connect -o http2=...``, run for real against hypercorn (RFC 8441 over TLS)
and the websockets server (HTTP/1.1 only); every subprocess is bounded."""

from __future__ import annotations

from pathlib import Path

import trio
import trustme
from h2peer import start_hypercorn
from peers import WsServer
from test_cli import assert_one_line_error, out, statews

from statews.cli.command import exit_code_for
from statews.core.errors import InvalidHandshake


async def test_connect_with_http2_always(
    nursery: trio.Nursery, ca: trustme.CA, cafile: str, tmp_path: Path
) -> None:
    hypercorn = await start_hypercorn(nursery, ca, tmp_path)
    result = await statews(
        "connect",
        "-o",
        "http2=always",
        "-o",
        f"ssl_options.cafile={cafile}",
        hypercorn.url("/echo"),
        stdin=b"hello\nover h2\n",
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert out(result).splitlines() == ["hello", "over h2"]
    assert [scope.http_version for scope in hypercorn.scopes] == ["2"]
    hypercorn.stop.set()


async def test_connect_with_http2_always_to_an_http11_server(ws_server: WsServer) -> None:
    result = await statews("connect", "-o", "http2=always", ws_server.url(), stdin=b"x\n")
    assert result.returncode == exit_code_for(InvalidHandshake("")), result.stderr
    assert_one_line_error(result, "http2=always", "no HTTP/2 from the server")
