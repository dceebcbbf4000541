"""Benchmark statews against websockets' trio client, trio-websocket, httpx-ws and a raw TCP
limit (and picows on asyncio, as a reference from outside trio).

Usage::

    python bench/run.py                       # everything, about 3-5 minutes on 2 cores
    python bench/run.py --quick               # about 1 minute
    python bench/run.py --scenarios rtt,big --clients statews,limit --json out.json
    python bench/run.py --variant proto=/tmp/statews_proto/statews   # A/B a patched copy
    python bench/run.py --scenarios= --http2  # 200 WebSockets over one HTTP/2 connection

One echo server process (Node ``ws`` + ``net`` from ``bench/servers/echo.js``, after
``npm ci --prefix bench/servers``; else the websockets/asyncio fallback) serves every
client on loopback. Scenarios run one after the other; within a scenario the clients
are interleaved round by round (the order rotates each round), each round in a fresh
``trio.run`` (``asyncio.run`` for picows). Reported: the median over rounds, min-max,
ratios of medians to the ``limit`` client, to ``websockets`` and to ``httpx-ws``, client
CPU microseconds per message (the least noisy figure), and the server's CPU share of the
wall time (near 1.0 means the server, not the client, was the bottleneck). By default the
client is pinned to one CPU and the server to another (``--no-pin``: not). Then the
issue's targets, each PASS or MISS; ``--load`` also runs ``bench/load.py`` (2,000
connections) for the RSS-under-load target.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import re  # noqa: E402

from clients import (  # noqa: E402
    CLIENT_NAMES,
    Client,
    Endpoints,
    StatewsClient,
    Unavailable,
    load_statews_variant,
    make_client,
)
from scenarios import SCENARIOS, Clocks, Sample, idle_rss, run_on  # noqa: E402

#: Per scenario: (messages or connections per round, --quick), sized so that the slowest
#: client spends well under a second per round.
SIZES: dict[str, tuple[int, int]] = {
    "rtt": (4000, 2000),
    "stream": (20000, 8000),
    "big": (6, 3),
    "connect": (250, 120),
    "idle": (300, 150),
    "deflate": (3000, 1500),
}
ROUNDS = 5
REFERENCE = "websockets"
PEER = "httpx-ws"
LIMIT = "limit"

#: The issue's targets for statews: (scenario, compared to, factor). Against a client:
#: the ratio of medians (``value``, >= factor; for idle, lower is better: <= factor
#: times). Against None: an absolute bound on the median (idle KB per connection).
#: Besides these, statews must not be behind websockets on any row (:func:`check_targets`).
TARGETS = (
    ("rtt", LIMIT, 0.6),
    ("stream", LIMIT, 0.3),
    ("big", LIMIT, 0.75),
    ("connect", REFERENCE, 1.2),
    ("connect", LIMIT, 0.5),
    ("idle", None, 12.0),
)
#: KiB of RSS per connection under load (bench/load.py, 2,000 connections).
LOAD_TARGET_KIB = 24.0


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """The echo server subprocess and where it listens."""

    kind: str
    process: subprocess.Popen[bytes]
    endpoints: Endpoints
    pid: int
    version: str

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(kind: str) -> Server:
    """Start the Node server (``kind`` "node"), the Python one ("python"), or Node if it
    is installed and Python otherwise ("auto")."""
    node = shutil.which("node")
    has_ws = (HERE / "servers" / "node_modules" / "ws").is_dir()
    if kind == "auto":
        kind = "node" if node and has_ws else "python"
        if kind == "python":
            print(
                "note: Node or bench/servers/node_modules/ws missing "
                "(npm ci --prefix bench/servers); using the Python fallback server",
                file=sys.stderr,
            )
    if kind == "node":
        if not (node and has_ws):
            raise SystemExit("--server node: run `npm ci --prefix bench/servers` first")
        command = [node, str(HERE / "servers" / "echo.js")]
        version = (
            "node "
            + subprocess.run(
                [node, "--version"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        ws_package = json.loads(
            (HERE / "servers" / "node_modules" / "ws" / "package.json").read_text()
        )
        version += f", ws {ws_package['version']}"
    else:
        command = [sys.executable, str(HERE / "servers" / "fallback.py")]
        version = f"python {platform.python_version()}, websockets {metadata.version('websockets')}"
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit(f"the {kind} echo server did not start")
    info = json.loads(line)
    if kind == "node":
        version += ", bufferutil" if info.get("bufferutil") else ", NO bufferutil (slow unmasking)"
    endpoints = Endpoints(
        ws=f"ws://127.0.0.1:{info['ws']}/",
        ws_deflate=f"ws://127.0.0.1:{info['ws_deflate']}/",
        tcp=("127.0.0.1", int(info["tcp"])),
    )
    return Server(kind, process, endpoints, int(info["pid"]), version)


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    """Every sample of one client in one scenario, and the summary of them."""

    samples: list[Sample] = field(default_factory=list)
    rss_kb: float | None = None

    @property
    def values(self) -> list[float]:
        return [s.value for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def cpu_us(self) -> float:
        """Median client CPU microseconds per message (or connection)."""
        return statistics.median(s.cpu / s.count * 1e6 for s in self.samples)

    @property
    def server_share(self) -> float:
        """Median server CPU seconds per wall second."""
        return statistics.median(s.server_cpu / s.wall for s in self.samples)


def pin(server_pid: int) -> str:
    """Pin this process (the clients) to the first CPU it may use and the server to the
    second, so that neither migrates nor competes with the other; a note for the header."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return ""
    os.sched_setaffinity(0, {cpus[0]})
    os.sched_setaffinity(server_pid, {cpus[1]})
    return f" pinned: client CPU {cpus[0]}, server CPU {cpus[1]};"


def run_one(scenario: str, client: Client, endpoints: Endpoints, size: int) -> Sample:
    gc.collect()
    sample: Sample = run_on(client, SCENARIOS[scenario].run, client, endpoints, size)
    return sample


def rss_in_child(args: argparse.Namespace, client: str, server: Server) -> float | None:
    """The idle RSS figure, measured in a fresh interpreter (freed memory is not given
    back to the OS, so only a fresh process sees the true growth)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--rss-child", client]
    command += ["--rss-endpoints", json.dumps(asdict(server.endpoints))]
    for variant in args.variant:
        command += ["--variant", variant]
    command += ["--rss-count", str(args.sizes["idle"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        print(f"  rss probe for {client} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return float(done.stdout.strip().splitlines()[-1])


def rss_child(args: argparse.Namespace) -> None:
    clients = build_clients(args, [args.rss_child])
    raw = json.loads(args.rss_endpoints)
    endpoints = Endpoints(raw["ws"], raw["ws_deflate"], tuple(raw["tcp"]))
    print(run_on(clients[0], idle_rss, clients[0], endpoints, args.rss_count))


def build_clients(args: argparse.Namespace, names: list[str]) -> list[Client]:
    variants: dict[str, str] = {}
    for spec in args.variant:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise SystemExit(f"--variant expects NAME=PATH, got {spec!r}")
        variants[name] = path
    clients: list[Client] = []
    for name in names:
        if name in variants:
            module_name = "statews_variant_" + "".join(c if c.isalnum() else "_" for c in name)
            module = load_statews_variant(module_name, variants[name])
            clients.append(StatewsClient(name, module))
        else:
            try:
                clients.append(make_client(name))
            except Unavailable as exc:
                print(f"note: skipping {exc}", file=sys.stderr)
    return clients


def run_all(args: argparse.Namespace, server: Server, log: IO[str]) -> dict[str, dict[str, Result]]:
    Clocks.server_pid = server.pid
    results: dict[str, dict[str, Result]] = {}
    for scenario in args.scenarios:
        spec = SCENARIOS[scenario]
        clients = [c for c in args.client_objects if c.supports_deflate or not spec.deflate]
        if not clients:
            continue
        size = args.sizes[scenario]
        started = time.perf_counter()
        print(f"== {scenario}: {spec.description} ({size} per round)", file=log, flush=True)
        per_client = {c.name: Result() for c in clients}
        for c in clients:  # warm-up: imports, caches, the server's JIT
            run_one(scenario, c, server.endpoints, max(1, size // 5))
        for round_no in range(args.rounds):
            shift = round_no % len(clients)
            for c in clients[shift:] + clients[:shift]:
                per_client[c.name].samples.append(run_one(scenario, c, server.endpoints, size))
        if scenario == "idle" and not args.no_rss:
            for c in clients:
                per_client[c.name].rss_kb = rss_in_child(args, c.name, server)
        results[scenario] = per_client
        print(f"   {time.perf_counter() - started:.1f} s", file=log, flush=True)
    return results


# --------------------------------------------------------------------------- reporting


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(result: Result, base: Result | None) -> str:
    if base is None:
        return "-"
    return f"{result.median / base.median:.2f}x"


def table(results: dict[str, dict[str, Result]]) -> list[str]:
    header = (
        f"{'scenario':<8} {'client':<15} {'median':>10} {'min-max':>21} {'unit':<8}"
        f" {'x limit':>8} {'x websockets':>12} {'x httpx-ws':>10} {'cpu us/msg':>10}"
        f" {'server cpu':>10}"
    )
    lines = [header, "-" * len(header)]
    for scenario, per_client in results.items():
        spec = SCENARIOS[scenario]
        limit = per_client.get(LIMIT)
        reference = per_client.get(REFERENCE)
        peer = per_client.get(PEER)
        for name, result in per_client.items():
            span = f"{_fmt(min(result.values))}-{_fmt(max(result.values))}"
            extra = f"  (rss {result.rss_kb:.1f} KB)" if result.rss_kb is not None else ""
            shown = "limit*" if name == LIMIT and scenario == "stream" else name
            lines.append(
                f"{scenario:<8} {shown:<15} {_fmt(result.median):>10} {span:>21}"
                f" {spec.unit:<8} {_ratio(result, limit):>8} {_ratio(result, reference):>12}"
                f" {_ratio(result, peer):>10} {_fmt(result.cpu_us):>10}"
                f" {result.server_share:>9.0%}{extra}"
            )
        lines.append("")
    if "stream" in results and LIMIT in results["stream"]:
        lines.append("limit*: with a coalescing writer task, as statews's (bench/clients.py)")
        lines.append("")
    return lines


def _cell(result: Result | None, scenario: str) -> str:
    if result is None:
        return "-"
    if scenario in ("rtt", "stream", "connect"):
        return f"{_fmt(result.median)} ({_fmt(result.cpu_us)} us CPU)"
    if scenario == "idle" and result.rss_kb is not None:
        return f"{_fmt(result.median)} (RSS {result.rss_kb:.1f})"
    return _fmt(result.median)


def _times(mine: Result, base: Result | None, higher_is_better: bool) -> str:
    """How many times better ``mine`` is than ``base`` (> 1: better), as text."""
    if base is None:
        return "-"
    ratio = mine.median / base.median if higher_is_better else base.median / mine.median
    return f"{ratio:.2f}x"


def summary(
    results: dict[str, dict[str, Result]], name: str, load: dict[str, float] | None
) -> list[str]:
    """The issue's table for client ``name``: its figures beside the peers' and the
    limit's, ratios (> 1.00x: statews is better) and the targets, as Markdown."""
    lines = [
        f"| scenario | {name} | websockets | httpx-ws | trio-websocket | picows (asyncio) | limit"
        f" | {name} / websockets | {name} / httpx-ws | {name} / limit | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, per_client in results.items():
        spec = SCENARIOS[scenario]
        mine = per_client.get(name)
        if mine is None:
            continue
        better = spec.higher_is_better
        goals = [f"{f}x {a}" if a else f"<= {f} KB" for sc, a, f in TARGETS if sc == scenario]
        lines.append(
            f"| {scenario} ({spec.unit}) | {_cell(mine, scenario)}"
            f" | {_cell(per_client.get(REFERENCE), scenario)}"
            f" | {_cell(per_client.get(PEER), scenario)}"
            f" | {_cell(per_client.get('trio-websocket'), scenario)}"
            f" | {_cell(per_client.get('picows'), scenario)}"
            f" | {_cell(per_client.get(LIMIT), scenario)}"
            f" | {_times(mine, per_client.get(REFERENCE), better)}"
            f" | {_times(mine, per_client.get(PEER), better)}"
            f" | {_times(mine, per_client.get(LIMIT), better) if better else '-'}"
            f" | {', '.join(goals) or '>= websockets'} |"
        )
    if load is not None:
        lines.append(
            f"| load, {load['connections']:.0f} connections (KiB RSS/conn) | {load['kib']:.1f}"
            f" | | | | | | | | | <= {LOAD_TARGET_KIB:.0f} KiB |"
        )
    return lines


def check_targets(
    results: dict[str, dict[str, Result]], names: list[str], load: dict[str, float] | None
) -> list[str]:
    """PASS or MISS for each target of each statews client (and variant), and for "not
    behind websockets" on every scenario both ran."""
    lines = []
    for name in names:
        if not name.startswith("statews") and name not in _variant_names:
            continue
        for scenario, against, factor in TARGETS:
            per_client = results.get(scenario, {})
            mine = per_client.get(name)
            if mine is None:
                continue
            if against is None:
                ok = mine.median <= factor
                text = f"{mine.median:.1f} {SCENARIOS[scenario].unit} <= {factor}"
            else:
                base = per_client.get(against)
                if base is None:
                    continue
                ratio = mine.median / base.median
                ok = ratio >= factor
                text = f"{ratio:.2f}x {against} >= {factor}x"
            lines.append(f"{name:<15} {scenario:<8} {'PASS' if ok else 'MISS'}  {text}")
        for scenario, per_client in results.items():
            mine, base = per_client.get(name), per_client.get(REFERENCE)
            if mine is None or base is None:
                continue
            better = SCENARIOS[scenario].higher_is_better
            ok = mine.median >= base.median if better else mine.median <= base.median
            text = f"{_times(mine, base, better)} websockets >= 1.00x (not behind)"
            lines.append(f"{name:<15} {scenario:<8} {'PASS' if ok else 'MISS'}  {text}")
    if load is not None:
        ok = load["kib"] <= LOAD_TARGET_KIB
        lines.append(
            f"{'statews':<15} {'load':<8} {'PASS' if ok else 'MISS'}  {load['kib']:.1f} KiB RSS"
            f"/connection at {load['connections']:.0f} connections <= {LOAD_TARGET_KIB}"
        )
    return lines


def run_load(connections: int) -> dict[str, float] | None:
    """``bench/load.py --no-tracemalloc`` in a subprocess: its RSS per connection."""
    command = [sys.executable, str(HERE / "load.py"), "--no-tracemalloc"]
    command += ["--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r"-> ([\d.]+) KiB/connection", done.stdout)
    if done.returncode != 0 or found is None:
        print(f"  load.py failed: {(done.stdout + done.stderr)[-400:]}", file=sys.stderr)
        return None
    return {"kib": float(found.group(1)), "connections": float(connections)}


def http2_scenario(args: argparse.Namespace, log: IO[str]) -> dict[str, Any]:
    """The http2 scenario (``--http2``): ``--http2-count`` WebSockets over one HTTP/2
    connection against as many over HTTP/1.1, hypercorn in its own process
    (bench/h2bench.py); connect rate and memory per WebSocket, both modes in each round."""
    import h2bench  # noqa: PLC0415 - needs hypercorn and trustme, only when asked for

    result: dict[str, Any] = h2bench.run(args.rounds, args.http2_count, log)
    return result


_variant_names: set[str] = set()


def to_json(
    results: dict[str, dict[str, Result]], args: argparse.Namespace, server: Server
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "server": {"kind": server.kind, "version": server.version},
        "versions": versions(),
        "settings": {"rounds": args.rounds, "sizes": args.sizes, "quick": args.quick},
        "results": {},
    }
    for scenario, per_client in results.items():
        spec = SCENARIOS[scenario]
        limit = per_client.get(LIMIT)
        reference = per_client.get(REFERENCE)
        out["results"][scenario] = {
            name: {
                "unit": spec.unit,
                "higher_is_better": spec.higher_is_better,
                "median": r.median,
                "min": min(r.values),
                "max": max(r.values),
                "ratio_limit": r.median / limit.median if limit else None,
                "ratio_websockets": r.median / reference.median if reference else None,
                "cpu_us_per_msg": r.cpu_us,
                "server_cpu_share": r.server_share,
                "rss_kb": r.rss_kb,
                "samples": [asdict(s) for s in r.samples],
            }
            for name, r in per_client.items()
        }
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    found = {}
    dists = ("trio", "websockets", "trio-websocket", "httpx-ws", "httpx", "anyio", "wsproto")
    for dist in (*dists, "picows", "python-statemachine"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 1 minute)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)"
    )
    parser.add_argument(
        "--clients", default=None, help="comma-separated (default: all, variants included)"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per scenario (>= 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--server", choices=("auto", "node", "python"), default="auto")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also measure the statews package directory PATH as client NAME",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the idle RSS probes")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the client and the server to a CPU each",
    )
    parser.add_argument(
        "--load", action="store_true", help="also run bench/load.py (RSS under load)"
    )
    parser.add_argument("--load-connections", type=int, default=2000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--http2",
        action="store_true",
        help="also run the http2 scenario: many WebSockets over one HTTP/2 connection vs "
        "HTTP/1.1 (hypercorn; --scenarios= for it alone)",
    )
    parser.add_argument("--http2-count", type=int, default=200, help="WebSockets (--http2)")
    parser.add_argument(
        "--size", action="append", default=[], metavar="SCENARIO=N", help="override a size"
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--rss-endpoints", help=argparse.SUPPRESS)
    parser.add_argument("--rss-count", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    variant_names = [v.partition("=")[0] for v in args.variant]
    known = [*CLIENT_NAMES, *variant_names]
    names = known if args.clients is None else [c for c in args.clients.split(",") if c]
    for name in names:
        if name not in known:
            parser.error(f"unknown client {name!r}; known: {', '.join(known)}")
    args.client_names = names
    args.sizes = {name: sizes[1 if args.quick else 0] for name, sizes in SIZES.items()}
    for override in args.size:
        name, _, count = override.partition("=")
        if name not in SIZES or not count.isdigit():
            parser.error(f"--size expects SCENARIO=N, got {override!r}")
        args.sizes[name] = int(count)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args)
        return 0
    _variant_names.update(v.partition("=")[0] for v in args.variant)
    args.client_objects = build_clients(args, args.client_names)
    server = start_server(args.server)
    pinned = pin(server.pid) if args.pin else ""
    started = time.perf_counter()
    try:
        print(
            f"server: {server.kind} ({server.version}), pid {server.pid}; "
            f"rounds: {args.rounds}; clients: {', '.join(c.name for c in args.client_objects)}"
            f"{pinned}",
            flush=True,
        )
        results = run_all(args, server, sys.stdout)
    finally:
        server.stop()
    load = None
    if args.load:
        print(f"== load: bench/load.py, {args.load_connections} connections", flush=True)
        load = run_load(args.load_connections)
    http2 = http2_scenario(args, sys.stdout) if args.http2 else None
    elapsed = time.perf_counter() - started
    info = machine()
    print()
    print(
        f"{time.strftime('%Y-%m-%d')}, {info['cpu']} ({info['cores']} cores), "
        f"Python {info['python']}, {', '.join(f'{k} {v}' for k, v in versions().items())}"
    )
    print(
        f"server: {server.kind} ({server.version}); {args.rounds} rounds;{pinned} {elapsed:.0f} s"
    )
    print()
    print("\n".join(table(results)))
    for name in args.client_names:
        if name.startswith("statews") or name in _variant_names:
            print("\n".join(summary(results, name, load if name == "statews" else None)))
            print()
    targets = check_targets(results, args.client_names, load)
    if targets:
        print("targets (the issue's):")
        print("\n".join(targets))
    if http2 is not None:
        import h2bench  # noqa: PLC0415

        print()
        print("\n".join(h2bench.table(http2)))
    if args.json:
        data = to_json(results, args, server)
        if http2 is not None:
            data["http2"] = http2
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
