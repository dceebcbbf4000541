"""The built-in echo server behind ``statews serve`` and ``statews demo``: a test peer.

It runs on the ``websockets`` package's trio server (an independent implementation, so
statews is checked against someone else's code), which is an optional dependency:
``pip install 'statews[server]'``. Without it, :func:`serve_echo` raises
:class:`ServerUnavailable` saying so.

Invariants: every message is sent back unchanged, in order, on the connection it came
on; each connection and its end are logged at INFO on the ``statews.server`` logger
(websockets' own frame logs go there too, at DEBUG); the server is meant for loopback
and tests, and limits incoming messages to :data:`MAX_MESSAGE_SIZE`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from websockets.trio.server import ServerConnection

__all__ = ["MAX_MESSAGE_SIZE", "EchoServer", "ServerUnavailable", "serve_echo"]

logger = logging.getLogger("statews.server")

#: Largest message the echo server accepts (statews' default ``max_message_size``).
MAX_MESSAGE_SIZE: Final = 64 * 2**20


class ServerUnavailable(ImportError):
    """The ``websockets`` package, which the echo server runs on, is not installed."""


@dataclass(frozen=True, slots=True)
class EchoServer:
    """Where a running echo server listens (the first of its addresses)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The ``ws://`` URL of the server's root."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/"


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    task_status: trio.TaskStatus[EchoServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an echo server on ``host``:``port`` until cancelled.

    With ``nursery.start(serve_echo, host, 0)`` the OS picks a free port and the
    :class:`EchoServer` returned says which.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    try:
        from websockets.trio.server import serve  # noqa: PLC0415 - an optional dependency
    except ImportError as exc:
        raise ServerUnavailable(
            "the echo server needs the websockets package: pip install 'statews[server]'"
        ) from exc
    try:
        # Bound here rather than by serve(), so that a failure is a plain OSError.
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        error = OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        error.errno = exc.errno
        raise error from exc
    address: Any = listeners[0].socket.getsockname()
    bound = EchoServer(str(address[0]), int(address[1]))
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve, _echo, listeners=listeners, max_size=MAX_MESSAGE_SIZE, logger=logger)
        )
        logger.info("echo server listening on %s", bound.url)
        task_status.started(bound)


async def _echo(conn: ServerConnection) -> None:
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415 - optional dependency

    peer = _address(conn.remote_address)
    path = conn.request.path if conn.request is not None else "?"
    logger.info("%s: connected, path %s", peer, path)
    count = 0
    try:
        async for message in conn:
            count += 1
            await conn.send(message)
    except ConnectionClosed:
        pass  # the end is reported below, from the connection's close codes
    code = conn.close_code if conn.close_code is not None else 1006
    logger.info("%s: closed with %s after %d messages received", peer, code, count)


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)
