"""Open and close many statews connections in a row; fail if anything leaks.

Run: ``python bench/soak.py [--connections 10000] [--batch 50] [--warmup 200]
[--compression none|deflate] [--tracemalloc] [--timeout 600]``.

Against a local echo server in its own process (``python -m statews serve``; see
:mod:`load`), connections run ``--batch`` at a time; each connects, exchanges one
message, and closes. After a warm-up (lazy imports, caches, allocator pools), the
figures are taken before, half way and after: open fds (``/proc/self/fd``), trio
tasks (the task tree from the root task), RSS, the server's open fds, and with
``--tracemalloc`` the memory allocated by statews code (and RSS net of tracemalloc's
own tables). Every 50th WebSocket is
watched through a weak reference: after the run none may be alive.

Exits 1 on a leak: more fds or tasks than before, a WebSocket still alive, RSS or
statews memory growing in the second half of the run, or any connection failing.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load import echo_server, open_fds, raise_fd_limit, rss_bytes, statews_traced

import statews
from statews import Text

#: RSS may grow this much in the second half of the run before it counts as a leak
#: (allocator noise); a leak of 1 KiB per connection over 5,000 connections is 5 MiB.
RSS_SLACK = 4 * 2**20
#: The same for memory allocated by statews code (tracemalloc is exact, not noisy).
TRACED_SLACK = 64 * 1024


def count_tasks() -> int:
    """Trio tasks alive in this run, the root task included."""
    count = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def server_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Figures:
    fds: int
    tasks: int
    rss: int
    server_fds: int
    traced: int

    def __str__(self) -> str:
        traced = f", statews traced {self.traced / 1024:.1f} KiB" if self.traced >= 0 else ""
        return (
            f"fds {self.fds}, tasks {self.tasks}, RSS {self.rss / 2**20:.1f} MiB, "
            f"server fds {self.server_fds}{traced}"
        )


async def figures(server_pid: int, traced: bool) -> Figures:
    gc.collect()
    await trio.sleep(0.2)  # the server finishes closing the last connections
    # tracemalloc's own tables are not the client's memory.
    overhead = tracemalloc.get_tracemalloc_memory() if traced else 0
    return Figures(
        open_fds(),
        count_tasks(),
        rss_bytes() - overhead,
        server_fds(server_pid),
        statews_traced() if traced else -1,
    )


@dataclass
class Tally:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    not_closed: int = 0
    watched: list[weakref.ref[statews.WebSocket]] = field(default_factory=list)


async def one(url: str, index: int, tally: Tally, compression: str | None) -> None:
    try:
        async with statews.open_websocket(
            url, compression=compression, ping_interval=None, connect_timeout=10
        ) as ws:
            message = Text(f"soak {index}")
            await ws.send(message)
            if await ws.recv() != message:
                tally.failed.append(f"{index}: wrong echo")
        if ws.state != "closed":
            tally.not_closed += 1
        if index % 50 == 0:
            tally.watched.append(weakref.ref(ws))
        tally.done += 1
    except statews.WebSocketError as exc:
        tally.failed.append(f"{index}: {type(exc).__name__}: {exc}")


async def batches(args: argparse.Namespace, url: str, start: int, stop: int, tally: Tally) -> None:
    compression = None if args.compression == "none" else "deflate"
    for first in range(start, stop, args.batch):
        async with trio.open_nursery() as nursery:
            for index in range(first, min(first + args.batch, stop)):
                nursery.start_soon(one, url, index, tally, compression)


async def run(args: argparse.Namespace, url: str, server_pid: int) -> int:
    tally = Tally()
    await batches(args, url, 0, args.warmup, tally)
    tally = Tally()
    n = args.connections
    before = await figures(server_pid, args.tracemalloc)
    middle = before
    started = time.perf_counter()
    with trio.move_on_after(args.timeout) as deadline:
        await batches(args, url, 0, n // 2, tally)
        middle = await figures(server_pid, args.tracemalloc)
        await batches(args, url, n // 2, n, tally)
    elapsed = time.perf_counter() - started
    after = await figures(server_pid, args.tracemalloc)
    alive = sum(ref() is not None for ref in tally.watched)

    print(
        f"{tally.done} of {n} connections in {elapsed:.1f} s "
        f"({n / elapsed:.0f}/s, batches of {args.batch})"
    )
    print(f"before: {before}")
    if not deadline.cancelled_caught:
        print(f"middle: {middle}")
    print(f"after:  {after}")
    print(
        f"failed {len(tally.failed)}, not closed {tally.not_closed}, "
        f"WebSockets still alive {alive} of {len(tally.watched)} watched"
    )
    for line in tally.failed[:5]:
        print(f"  failed: {line}")

    leaks = []
    if deadline.cancelled_caught:
        leaks.append(f"timed out after {args.timeout} s")
    if after.fds > before.fds:
        leaks.append(f"fds {before.fds} -> {after.fds}")
    if after.tasks > before.tasks:
        leaks.append(f"tasks {before.tasks} -> {after.tasks}")
    if after.server_fds > before.server_fds:
        leaks.append(f"server fds {before.server_fds} -> {after.server_fds}")
    if alive:
        leaks.append(f"{alive} WebSocket objects still alive")
    if not deadline.cancelled_caught and after.rss - middle.rss > RSS_SLACK:
        leaks.append(f"RSS grew {(after.rss - middle.rss) / 2**20:.1f} MiB in the second half")
    if args.tracemalloc and after.traced - before.traced > TRACED_SLACK:
        leaks.append(f"statews memory grew {(after.traced - before.traced) / 1024:.1f} KiB")
    if tally.failed or tally.not_closed or tally.done != n:
        leaks.append("connections failed or did not close")
    print("LEAK: " + "; ".join(leaks) if leaks else "no leak")
    return 1 if leaks else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50, help="connections at a time")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on the run")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace statews memory")
    args = parser.parse_args()
    raise_fd_limit(4 * args.batch + 1024)
    if args.tracemalloc:
        tracemalloc.start(1)
    with echo_server() as server:
        return trio.run(run, args, server.url, server.pid)


if __name__ == "__main__":
    sys.exit(main())
