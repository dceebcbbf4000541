"""Servers for tests, on a loopback port: the echo server and the replay server.

Both are async context managers, usable from pytest-trio fixtures; they need the
``websockets`` package (``pip install 'statews[server]'``)::

    @pytest.fixture
    async def replay():
        async with statews.testing.replay_server("session.jsonl", fast=True) as server:
            yield server  # server.url, server.port, server.differences

Leaving the block stops the server (its open clients are closed with 1001).

Raises (on entering):
    ServerUnavailable: ``websockets`` is not installed.
    TranscriptError: the transcript cannot be read (:func:`replay_server`).
    OSError: the address cannot be bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from .cli.replay import REPLAY_MISMATCH, Difference, ReplayServer, serve_replay
from .cli.server import EchoServer, ServerUnavailable, serve_echo
from .cli.transcript import Transcript, TranscriptError, read_transcript

__all__ = [
    "REPLAY_MISMATCH",
    "Difference",
    "EchoServer",
    "ReplayServer",
    "ServerUnavailable",
    "TranscriptError",
    "echo_server",
    "replay_server",
]


@asynccontextmanager
async def echo_server(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[EchoServer]:
    """The echo server (:func:`statews.cli.server.serve_echo`) for the block's duration;
    ``port`` 0 picks a free one."""
    async with trio.open_nursery() as nursery:
        yield await nursery.start(serve_echo, host, port)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def replay_server(
    transcript: str | Path | Transcript,
    *,
    fast: bool = False,
    loose: bool = False,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[ReplayServer]:
    """A server replaying ``transcript`` (a file, or one read by
    :func:`statews.cli.transcript.read_transcript`) to every client, for the block's
    duration; ``fast`` and ``loose`` as :func:`statews.cli.replay.serve_replay`. The
    server's ``differences`` list what clients sent otherwise than recorded."""
    if not isinstance(transcript, Transcript):
        transcript = read_transcript(transcript)
    async with trio.open_nursery() as nursery:
        replay = partial(serve_replay, transcript, host, port, fast=fast, loose=loose)
        server: ReplayServer = await nursery.start(replay)
        yield server
        nursery.cancel_scope.cancel()
