"""Hold many concurrent statews connections to a local echo server; report what they cost.

Run: ``python bench/load.py [--connections 2000] [--messages 5] [--size 256]
[--compression none|deflate] [--no-tracemalloc] [--timeout 120]``.

The echo server is ``python -m statews serve --port 0 --print-port`` in a process of its
own (``--url`` points at another one instead); loopback only. All connections are opened
(at most ``--concurrency`` handshakes at a time, so the listen backlog never overflows),
held open together while each exchanges ``--messages`` messages with the server, measured
at that peak, then closed. Prints time per phase, memory per connection (RSS of this
process, and tracemalloc: everything traced and the part allocated by statews), the
server's RSS, fds, and the outcome: messages lost or corrupted and connections stuck or
failed, which must all be 0 (the exit status is 1 otherwise).

The fd limit is raised to what the connections need (both processes inherit it).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import statews
from statews import Binary, Text

_STATEWS_FILES = tracemalloc.Filter(True, "*/statews/*")


# ------------------------------------------------------------------ process figures


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def open_fds() -> int:
    """File descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def raise_fd_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to at least ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def statews_traced() -> int:
    """Bytes currently allocated by statews code (tracemalloc must be tracing)."""
    snapshot = tracemalloc.take_snapshot().filter_traces([_STATEWS_FILES])
    return sum(stat.size for stat in snapshot.statistics("filename"))


@dataclass
class EchoProcess:
    """A ``statews serve`` echo server running in a child process."""

    process: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def echo_server() -> Iterator[EchoProcess]:
    """Start ``python -m statews serve --port 0 --print-port``; stop it on exit."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "statews",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--print-port",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # it logs every connection
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"echo server did not print its port (got {line!r})")
        yield EchoProcess(process, f"ws://127.0.0.1:{int(line)}/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------------------- the load


class Gate:
    """Counts arrivals; ``reached`` is set when ``expected`` tasks arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.reached = trio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.reached.set()


@dataclass
class Outcome:
    sent: int = 0
    echoed: int = 0
    failed: list[str] = field(default_factory=list)
    finished: int = 0
    not_closed: int = 0


def message(conn: int, i: int, size: int) -> Text | Binary:
    tag = f"{conn}:{i}:"
    if i % 2:
        return Binary(tag.encode() + bytes(range(256)) * (size // 256) + b"b" * (size % 256))
    return Text(tag + "é" * max(0, (size - len(tag)) // 2))


async def one_connection(
    conn: int,
    args: argparse.Namespace,
    url: str,
    handshakes: trio.Semaphore,
    gates: tuple[Gate, Gate],
    release: trio.Event,
    outcome: Outcome,
) -> None:
    """Connect, wait for all, exchange messages, wait for the measurement, close."""
    connected, exchanged = gates
    await handshakes.acquire()
    holding = True
    try:
        async with statews.open_websocket(
            url,
            compression=None if args.compression == "none" else "deflate",
            ping_interval=None,
            connect_timeout=args.timeout,
        ) as ws:
            handshakes.release()
            holding = False
            connected.arrive()
            await connected.reached.wait()
            for i in range(args.messages):
                sent = message(conn, i, args.size)
                await ws.send(sent)
                outcome.sent += 1
                if await ws.recv() == sent:
                    outcome.echoed += 1
            exchanged.arrive()
            await release.wait()
        if ws.state != "closed":
            outcome.not_closed += 1
        outcome.finished += 1
    except statews.WebSocketError as exc:
        outcome.failed.append(f"{conn}: {type(exc).__name__}: {exc}")
        connected.arrive()
        exchanged.arrive()
    finally:
        if holding:
            handshakes.release()


async def run(args: argparse.Namespace, url: str, server_pid: int | None) -> int:
    n = args.connections
    outcome = Outcome()
    gates = (Gate(n), Gate(n))
    release = trio.Event()
    handshakes = trio.Semaphore(args.concurrency)
    gc.collect()
    rss0, fds0 = rss_bytes(), open_fds()
    server_rss0 = rss_bytes(server_pid) if server_pid else 0
    traced0 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    statews0 = statews_traced() if args.tracemalloc else 0
    start = trio.current_time()
    times: dict[str, float] = {}
    peak: dict[str, int] = {}
    closing: float | None = None
    with trio.move_on_after(args.timeout) as deadline:
        async with trio.open_nursery() as nursery:
            for conn in range(n):
                nursery.start_soon(
                    one_connection, conn, args, url, handshakes, gates, release, outcome
                )
            await gates[0].reached.wait()
            times["connect"] = trio.current_time() - start
            await gates[1].reached.wait()
            times["exchange"] = trio.current_time() - start - times["connect"]
            measuring = trio.current_time()
            peak["rss"] = rss_bytes()
            peak["fds"] = open_fds()
            peak["server_rss"] = rss_bytes(server_pid) if server_pid else 0
            if args.tracemalloc:
                peak["traced"] = tracemalloc.get_traced_memory()[0]
                peak["statews"] = statews_traced()
            closing = trio.current_time()
            times["measuring"] = closing - measuring
            release.set()
    if closing is not None:
        times["close"] = trio.current_time() - closing
    stuck = n - outcome.finished - len(outcome.failed)
    gc.collect()
    rss1, fds1 = rss_bytes(), open_fds()

    mib = 2**20
    print(
        f"connections {n}, {args.messages} messages of ~{args.size} B each, "
        f"compression {args.compression}, tracemalloc {'on' if args.tracemalloc else 'off'}"
    )
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
    total = trio.current_time() - start - times.get("measuring", 0.0)
    print(f"time: {total:.2f} s without the measuring ({phases})")
    if "rss" in peak:
        print(
            f"client RSS: before {rss0 / mib:.1f} MiB, peak {peak['rss'] / mib:.1f} MiB, "
            f"after {rss1 / mib:.1f} MiB -> {(peak['rss'] - rss0) / n / 1024:.1f} KiB/connection"
        )
        if args.tracemalloc:
            print(
                f"tracemalloc: {(peak['traced'] - traced0) / n / 1024:.1f} KiB/connection traced, "
                f"{(peak['statews'] - statews0) / n / 1024:.1f} KiB/connection in statews code"
            )
        if server_pid:
            print(
                f"server RSS: before {server_rss0 / mib:.1f} MiB, peak "
                f"{peak['server_rss'] / mib:.1f} MiB "
                f"({(peak['server_rss'] - server_rss0) / n / 1024:.1f} KiB/connection)"
            )
        print(f"fds: before {fds0}, peak {peak['fds']}, after {fds1}")
    lost = outcome.sent - outcome.echoed
    print(
        f"messages: expected {n * args.messages}, sent {outcome.sent}, echoed intact "
        f"{outcome.echoed}, lost or corrupted {lost}"
    )
    print(
        f"connections: finished {outcome.finished}, failed {len(outcome.failed)}, "
        f"stuck {stuck}, not closed {outcome.not_closed}"
        + (" (timed out)" if deadline.cancelled_caught else "")
    )
    for line in outcome.failed[:5]:
        print(f"  failed: {line}")
    bad = lost or stuck or outcome.failed or outcome.not_closed or deadline.cancelled_caught
    bad = bad or outcome.sent != n * args.messages or fds1 > fds0 + 5
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=5, help="messages per connection")
    parser.add_argument("--size", type=int, default=256, help="approximate message size")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on the whole run")
    parser.add_argument("--url", help="an echo server to use instead of starting one")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    args = parser.parse_args()
    limit = raise_fd_limit(args.connections + 1024)
    if limit < args.connections + 64:
        print(f"fd limit {limit} is too low for {args.connections} connections", file=sys.stderr)
        return 2
    if args.tracemalloc:
        tracemalloc.start(1)
    if args.url:
        return trio.run(run, args, args.url, None)
    with echo_server() as server:
        time.sleep(0.2)  # let the server settle before the baseline
        return trio.run(run, args, server.url, server.pid)


if __name__ == "__main__":
    sys.exit(main())
