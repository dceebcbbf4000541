"""The entry points: :func:`start_link` (hackney's ``start_link``) and :func:`open_websocket`.

Both take options as an :class:`~statews.options.model.Options`, a mapping, or a URL, and
validate them before anything touches the network (:class:`~statews.core.errors.OptionsError`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def open_websocket(
    url_or_options: OptionsLike | None = None,
    /,
    *,
    config: str | os.PathLike[str] | None = None,
    name: str | None = None,
    listeners: Sequence[object] = (),
    **overrides: Any,
) -> AsyncIterator[WebSocket]:
    """Connect, yield the open connection, close it on the way out.

    ``async with open_websocket("wss://host/path", protocols=["chat"]) as ws: ...``;
    or ``open_websocket(config="conn.toml", name="feed")`` to read the options from a
    configuration file. Leaving the block closes gracefully (bounded by
    ``close_timeout``), also when the block raised. ``listeners``: as for
    :func:`start_link`.

    Raises:
        OptionsError: invalid options or configuration file.
        HandshakeError: as :meth:`WebSocket.connect`.
    """
    if config is not None:
        from ..options.config import load_config  # noqa: PLC0415 - only file users pay for the parsers

        base: OptionsLike = load_config(config, name)
        if url_or_options is not None:
            raise TypeError("give either a URL/options or config=, not both")
    elif url_or_options is None:
        raise TypeError("open_websocket() needs a URL, options or config=")
    else:
        base = url_or_options
    async with task_nursery() as nursery:
        ws = await start_link(nursery, base, listeners=listeners, **overrides)
        try:
            await ws.connect()
            yield ws
        finally:
            with trio.CancelScope(shield=True):
                await ws.close()


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
