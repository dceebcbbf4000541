"""Measurements of the client under attack: memory attributed to statews, internal queues.

Invariants: :func:`statews_memory` counts only blocks allocated by code under
``statews/`` (the scripted server runs in the same process and must not count);
it needs :func:`tracing` around it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import statews

_STATEWS = tracemalloc.Filter(True, "*/statews/*")


@contextmanager
def tracing() -> Iterator[None]:
    """Trace allocations (one frame deep: the allocating line is enough to attribute)."""
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


def statews_memory() -> int:
    """Bytes currently allocated by statews code (live blocks only)."""
    snapshot = tracemalloc.take_snapshot().filter_traces([_STATEWS])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def queued_output(ws: statews.WebSocket) -> int:
    """Bytes the connection queued for the writer and the writer has not taken yet."""
    proto = ws._proto
    return 0 if proto is None else proto.bytes_to_send


def inbox_length(ws: statews.WebSocket) -> int:
    """Frames waiting in the connection's inbox (passive mode)."""
    return len(ws._inbox)
