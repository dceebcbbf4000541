"""Many WebSockets over one HTTP/2 connection (RFC 8441) against the same number over
HTTP/1.1, in the same run: connect rate and memory per WebSocket.

Usage::

    python bench/h2bench.py                     # 200 WebSockets, 5 rounds per mode
    python bench/h2bench.py --count 500 --rounds 3
    python bench/run.py --scenarios= --http2    # the same, as bench/run.py's http2 scenario

The server is hypercorn (``bench/servers/h2echo.py``) in its own process, over TLS with
ALPN ``h2`` and ``http/1.1``: the same server and port for both modes. Every round runs
each mode once (the order alternating) in a fresh interpreter, which opens ``count``
WebSockets concurrently in one nursery (``http2="never"``: one TCP and TLS connection
each; ``http2="always"``: streams of one shared connection), checks one echo on each,
then closes them all. Reported, medians over rounds:

- connect rate: WebSockets opened per second (from the first connect to the last
  ``connected``; TCP, TLS, the opening handshake included);
- RSS KiB per WebSocket: the interpreter's resident memory growth once all are open
  (OpenSSL's per-connection buffers included), in that fresh process;
- traced KiB per WebSocket: Python allocations alive (``tracemalloc``, a second pass);
- server CPU ms per WebSocket (hypercorn's process, connect to all open);
- TCP connections used (distinct local ports).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import trio  # noqa: E402
from scenarios import resident_kb, server_cpu_seconds  # noqa: E402

import statews  # noqa: E402

MODES = ("never", "always")
LABELS = {"never": "HTTP/1.1", "always": "HTTP/2"}
COUNT = 200
ROUNDS = 5
#: (key, heading, unit, format)
FIGURES = (
    ("rate", "connect rate", "WebSockets/s", "{:.0f}"),
    ("rss_kib", "RSS per WebSocket", "KiB", "{:.1f}"),
    ("traced_kib", "traced per WebSocket", "KiB", "{:.1f}"),
    ("server_cpu_ms", "server CPU per WebSocket", "ms", "{:.2f}"),
    ("tcp", "TCP connections", "", "{:.0f}"),
)


def start_server() -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """hypercorn (bench/servers/h2echo.py) in its own process; its JSON line."""
    command = [sys.executable, str(HERE / "servers" / "h2echo.py")]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit("bench/servers/h2echo.py did not start (hypercorn and trustme needed)")
    return process, json.loads(line)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ------------------------------------------------------------------ one mode, one round


async def _open_all(
    options: statews.Options, count: int, nursery: trio.Nursery
) -> list[statews.WebSocket]:
    sockets = [await statews.start_link(nursery, options) for _ in range(count)]
    async with trio.open_nursery() as connecting:
        for ws in sockets:
            connecting.start_soon(ws.connect)
    return sockets


async def _close_all(sockets: list[statews.WebSocket]) -> None:
    async with trio.open_nursery() as closing:
        for ws in sockets:
            closing.start_soon(ws.close)


async def measure(mode: str, server: dict[str, Any], count: int) -> dict[str, float]:
    """Open ``count`` WebSockets over ``mode``; the figures of the module docstring."""
    options = statews.Options.from_url(
        f"wss://localhost:{server['port']}/",
        http2=mode,
        compression=None,
        ping_interval=None,
        ssl_options={"cafile": server["cafile"]},
    )
    for _ in range(3):  # warm-up: imports, the TLS context, the server's code paths
        async with statews.open_websocket(options) as ws:
            await ws.send("warm")
            await ws.recv()
    gc.collect()
    rss_before = resident_kb()
    server_before = server_cpu_seconds(server["pid"])
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        sockets = await _open_all(options, count, nursery)
        wall = time.perf_counter() - started
        server_cpu = server_cpu_seconds(server["pid"]) - server_before
        await trio.sleep(0.05)  # every reader task reaches its park
        gc.collect()
        rss = resident_kb() - rss_before
        for i, ws in enumerate(sockets):
            await ws.send(f"m{i}")
            assert await ws.recv() == statews.Text(f"m{i}")
        assert {ws.http_version for ws in sockets} == {"2" if mode == "always" else "1.1"}
        tcp = len({ws.sockname() for ws in sockets})
        await _close_all(sockets)
    tracemalloc.start()
    try:
        async with trio.open_nursery() as nursery:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            sockets = await _open_all(options, count, nursery)
            await trio.sleep(0.05)
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - before
            await _close_all(sockets)
    finally:
        tracemalloc.stop()
    return {
        "rate": count / wall,
        "rss_kib": rss / count,
        "traced_kib": traced / 1024 / count,
        "server_cpu_ms": server_cpu * 1000 / count,
        "tcp": float(tcp),
    }


def run_child(mode: str, server: dict[str, Any], count: int) -> dict[str, float]:
    """:func:`measure` in a fresh interpreter (only a fresh process shows RSS growth)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    command += ["--server-info", json.dumps(server), "--count", str(count)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"h2bench child ({mode}) failed: {done.stderr.strip()[-600:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------- all of it


def run(rounds: int, count: int, log: IO[str]) -> dict[str, Any]:
    """Every round runs both modes (alternating order); returns the medians and samples."""
    process, server = start_server()
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        print(
            f"== http2: {count} WebSockets over HTTP/1.1 (one TCP+TLS each) vs over one"
            f" HTTP/2 connection; {server['version']}, TLS; {rounds} rounds",
            file=log,
            flush=True,
        )
        for r in range(rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                samples[mode].append(run_child(mode, server, count))
    finally:
        stop_server(process)
    medians = {
        mode: {key: statistics.median(s[key] for s in samples[mode]) for key, *_ in FIGURES}
        for mode in MODES
    }
    return {
        "count": count,
        "rounds": rounds,
        "server": server["version"],
        "medians": medians,
        "samples": samples,
    }


def table(result: dict[str, Any]) -> list[str]:
    """The results as text: one row per figure, HTTP/1.1, HTTP/2 and their ratio."""
    medians = result["medians"]
    lines = [
        f"http2 scenario: {result['count']} WebSockets, median of {result['rounds']} rounds"
        f" ({result['server']}, TLS)",
        f"{'figure':<26} {'HTTP/1.1':>10} {'HTTP/2':>10} {'HTTP/2 / HTTP/1.1':>18}",
    ]
    for key, heading, unit, form in FIGURES:
        old, new = medians["never"][key], medians["always"][key]
        ratio = f"{new / old:.2f}x" if old else "-"
        name = f"{heading} ({unit})" if unit else heading
        lines.append(f"{name:<26} {form.format(old):>10} {form.format(new):>10} {ratio:>18}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=COUNT, help="WebSockets per run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per mode (>= 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--server-info", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        server = json.loads(args.server_info)
        print(json.dumps(trio.run(measure, args.child, server, args.count)))
        return 0
    if args.rounds < 1 or args.count < 1:
        parser.error("--rounds and --count must be >= 1")
    result = run(args.rounds, args.count, sys.stdout)
    print("\n".join(table(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
