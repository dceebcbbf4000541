"""Shared fixtures: real servers on loopback, started inside the test's trio loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from peers import WsServer, start_ws_server

PROXY_VARIABLES = ("ws_proxy", "wss_proxy", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback directly: a proxy set in the CI environment must not apply."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def ws_server(nursery: trio.Nursery) -> AsyncIterator[WsServer]:
    """A `websockets` server on 127.0.0.1 (see peers.scenario_handler for its paths)."""
    server = await start_ws_server(nursery)
    yield server
    await server.server.aclose()
