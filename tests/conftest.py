"""Shared fixtures: real servers on loopback, started inside the test's trio loop."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trustme
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


# ---------------------------------------------------------------- TLS with a throw-away CA


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority made for the test session (trustme)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for localhost and 127.0.0.1 from ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def cafile(ca: trustme.CA, tmp_path: Path) -> str:
    """``ca``'s certificate as a PEM file."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)
