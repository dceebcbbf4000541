"""Reading lines from standard input inside a trio program, without blocking the loop.

Pipes, sockets and terminals are polled through a duplicate of file descriptor 0 (and
its blocking flag is restored afterwards); files and devices, which cannot be polled,
are read in a worker thread.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import trio

__all__ = ["Receive", "lines", "stdin_chunks"]

Receive = Callable[[int], Awaitable[bytes]]


@asynccontextmanager
async def stdin_chunks() -> AsyncIterator[Receive]:
    """A function reading up to ``n`` bytes of stdin (``b""`` at its end) without blocking
    the event loop."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):  # no stdin at all
        yield _nothing
        return
    pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)
    if sys.platform != "win32" and pollable:
        was_blocking = os.get_blocking(fd)
        stream = trio.lowlevel.FdStream(os.dup(fd))
        try:
            yield stream.receive_some
        finally:
            try:
                await stream.aclose()
            finally:
                # The dup shares the file description: give the terminal back as it was.
                os.set_blocking(fd, was_blocking)
    else:
        # Files and devices cannot be polled; a worker thread reads (and is abandoned if
        # the connection ends while it waits).
        yield partial(_read_in_thread, fd)


async def _nothing(size: int) -> bytes:
    await trio.lowlevel.checkpoint()
    return b""


async def _read_in_thread(fd: int, size: int) -> bytes:
    return await trio.to_thread.run_sync(os.read, fd, size, abandon_on_cancel=True)


async def lines(receive: Receive) -> AsyncIterator[str]:
    """The lines read through ``receive`` (UTF-8, bad bytes replaced, without their line
    endings), the last one even without a newline, until the end of the input."""
    buffer = bytearray()
    while chunk := await receive(65536):
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            yield _decode_line(buffer[start:end])
            start = end + 1
        del buffer[:start]
    if buffer:
        yield _decode_line(buffer)


def _decode_line(line: bytes | bytearray) -> str:
    return bytes(line).removesuffix(b"\r").decode("utf-8", errors="replace")
