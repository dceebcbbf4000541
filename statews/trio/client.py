"""The entry points: :func:`start_link` (hackney's ``start_link``) and :func:`open_websocket`.

Both take options as an :class:`~statews.options.model.Options`, a mapping, or a URL, and
validate them before anything touches the network (:class:`~statews.core.errors.OptionsError`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import trio

from ..options.model import Options, resolve_options
from .connection import WebSocket
from .delivery import Delivery

__all__ = ["open_websocket", "start_link", "task_nursery"]

OptionsLike = Options | Mapping[str, Any] | str


async def start_link(
    nursery: trio.Nursery,
    options: OptionsLike,
    /,
    *,
    owner: trio.MemorySendChannel[Delivery] | None = None,
    stream: trio.abc.Stream | None = None,
    listeners: Sequence[object] = (),
    **overrides: Any,
) -> WebSocket:
    """Create a connection in state ``idle``; its tasks will live in ``nursery``.

    ``owner`` receives deliveries in active mode; without one, the connection makes a
    channel and exposes its receiving end as ``ws.mailbox``. ``stream`` is an already
    connected trio stream to run the upgrade over instead of opening one. ``listeners``
    observe the connection: python-statemachine listeners of its declared machine
    (:mod:`statews.lifecycle.listeners`), and the frame hooks of
    :mod:`statews.trio.observe`; their errors are logged, never raised.

    Raises:
        OptionsError: the options are invalid (nothing was attempted).
    """
    resolved = resolve_options(options, **overrides)
    await trio.lowlevel.checkpoint()
    return WebSocket(nursery, resolved, owner=owner, stream=stream, listeners=listeners)


def open_websocket(
    url_or_options: OptionsLike | None = None,
    /,
    *,
    config: str | os.PathLike[str] | None = None,
    name: str | None = None,
    listeners: Sequence[object] = (),
    **overrides: Any,
) -> AbstractAsyncContextManager[WebSocket]:
    """Connect, yield the open connection, close it on the way out.

    ``async with open_websocket("wss://host/path", protocols=["chat"]) as ws: ...``;
    or ``open_websocket(config="conn.toml", name="feed")`` to read the options from a
    configuration file. Leaving the block closes gracefully (bounded by
    ``close_timeout``), also when the block raised. ``listeners``: as for
    :func:`start_link`. The connection's tasks run in a nursery of their own, opened
    by ``async with``; an exception of the block comes out as itself, not in an
    exception group.

    Raises (from ``async with``):
        OptionsError: invalid options or configuration file.
        HandshakeError: as :meth:`WebSocket.connect`.
    """
    return _OpenWebSocket(url_or_options, config, name, listeners, overrides)


class _OpenWebSocket:
    """What :func:`open_websocket` returns: a nursery, a connection in it, its close.

    A class rather than a generator-based context manager: it is held for the whole life
    of the connection, and a suspended generator frame costs ~1 KB per connection.
    """

    __slots__ = ("_config", "_listeners", "_name", "_nursery", "_overrides", "_target", "_ws")

    def __init__(
        self,
        target: OptionsLike | None,
        config: str | os.PathLike[str] | None,
        name: str | None,
        listeners: Sequence[object],
        overrides: dict[str, Any],
    ) -> None:
        self._target = target
        self._config = config
        self._name = name
        self._listeners = listeners
        self._overrides = overrides
        self._nursery: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._ws: WebSocket | None = None

    def _options(self) -> OptionsLike:
        if self._config is not None:
            from ..options.config import load_config  # noqa: PLC0415 - only file users pay for the parsers

            base: OptionsLike = load_config(self._config, self._name)
            if self._target is not None:
                raise TypeError("give either a URL/options or config=, not both")
            return base
        if self._target is None:
            raise TypeError("open_websocket() needs a URL, options or config=")
        return self._target

    async def __aenter__(self) -> WebSocket:
        if self._nursery is not None:
            raise RuntimeError("open_websocket(...) can be entered only once")
        base = self._options()
        manager = self._nursery = trio.open_nursery()
        nursery = await manager.__aenter__()
        try:
            ws = self._ws = await start_link(
                nursery, base, listeners=self._listeners, **self._overrides
            )
            await ws.connect()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        ws, manager = self._ws, self._nursery
        assert manager is not None
        if ws is not None:
            with trio.CancelScope(shield=True):
                await ws.close()
        try:
            return await manager.__aexit__(exc_type, exc, traceback)
        except BaseExceptionGroup as group:  # as task_nursery(): the block's own error
            if exc is None or group.exceptions != (exc,):
                raise
        raise exc


@asynccontextmanager
async def task_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for connection tasks whose body's own exception comes out as itself.

    A nursery wraps what its body raises in an ExceptionGroup; the body's exception is
    unwrapped again (when it is the group's only one), so that ``except
    statews.ConnectionClosed`` around ``open_websocket`` works as it reads.
    """
    body_error: BaseException | None = None
    unwrapped: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_error = exc
                raise
    except BaseExceptionGroup as group:
        if body_error is None or group.exceptions != (body_error,):
            raise
        unwrapped = body_error
    if unwrapped is not None:
        raise unwrapped
