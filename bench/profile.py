"""Where statews's time and memory go: cProfile of the scenarios, and per-part costs.

Usage::

    python bench/profile.py                       # everything, about 1 minute
    python bench/profile.py --parts rtt,costs     # only some parts
    python bench/profile.py --statews /tmp/statews_proto/statews   # profile a patched copy
    python bench/profile.py --dump /tmp/prof      # also write .pstats files (snakeviz, ...)

Parts:

- ``rtt``, ``stream``, ``big``, ``connect``: the scenario of ``bench/run.py`` with the
  profiler on during the timed part only; prints the top functions by own time, in
  microseconds per message (or connection) *under the profiler* (cProfile inflates
  small calls: compare them with each other and with the unprofiled CPU figure
  printed above each table, not with ``run.py``'s absolute figures).
- ``costs``: one-part-at-a-time costs of a connection without the network: the
  lifecycle machine (construction, transitions, state reads), options, the sans-I/O
  core, the ``WebSocket`` object, and the hot per-message calls.
- ``statemachine``: can python-statemachine itself be made cheap per connection? The
  same machine without instance-bound callbacks, with its own and with a shared callback
  registry (an experiment on private attributes, for measurement only), against the
  declared :class:`~statews.lifecycle.Lifecycle`.
- ``memory``: what an idle open connection holds, by source file (tracemalloc).

The echo server is ``bench/servers/echo.js`` (Node) when installed, else the fallback.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named profile.py and Python puts its directory first on sys.path, where
# it would shadow the standard library's ``profile`` that cProfile imports.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from contextlib import AsyncExitStack  # noqa: E402
from functools import partial  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))

import trio  # noqa: E402
from clients import Endpoints, StatewsClient, load_statews_variant  # noqa: E402
from run import start_server  # noqa: E402
from scenarios import BIG_SIZE, big_payload  # noqa: E402

#: cProfile's clock: CPU time, so that waiting in epoll is not counted as work (its
#: default, wall time, charges the idle wait to ``epoll.poll``).
PROFILE_TIMER = time.process_time
PARTS = ("rtt", "stream", "big", "connect", "costs", "statemachine", "memory")
TOP = 12


def print_stats(profile: cProfile.Profile, count: int, title: str, dump: str | None) -> None:
    """Own time per message grouped by area (statews module, python-statemachine, trio,
    system calls, the rest), then the top functions by own time."""
    stats = pstats.Stats(profile)
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        stats.dump_stats(str(Path(dump) / f"{title}.pstats"))
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    areas: dict[str, float] = {}
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in entries.items():
        name = f"{_short(filename)}:{line}({func})"
        rows.append((tottime, cumtime, ncalls, name))
        area = _area(filename, func)
        areas[area] = areas.get(area, 0.0) + tottime
    total = sum(r[0] for r in rows)
    unit = title.split("-", 1)[0]
    print(f"  profiled total {total / count * 1e6:.1f} us per {unit} unit; by area:")
    for area, own in sorted(areas.items(), key=lambda kv: -kv[1]):
        if own / total >= 0.005:
            print(f"  {own / count * 1e6:10.2f} us {own / total:6.1%}  {area}")
    print(f"  {'own us':>10} {'own %':>6} {'cum us':>10} {'calls/u':>8}  function")
    for tottime, cumtime, ncalls, name in sorted(rows, reverse=True)[:TOP]:
        print(
            f"  {tottime / count * 1e6:10.2f} {tottime / total:6.1%} {cumtime / count * 1e6:10.2f}"
            f" {ncalls / count:8.2f}  {name}"
        )


_SYSCALLS = ("'send'", "'recv'", "'poll'", "posix.write", "posix.writev", "'connect'", "close")


def _area(filename: str, func: str) -> str:
    if filename == "~":
        return "system calls" if any(s in func for s in _SYSCALLS) else "C builtins"
    if "statemachine/" in filename:
        return "python-statemachine"
    if "/trio/" in filename or "/outcome/" in filename:
        return "trio"
    if "pydantic" in filename:
        return "pydantic"
    if "statews" in filename and "/bench/" not in filename:
        return "statews/" + Path(filename).name
    return "other Python (stdlib, bench)"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# --------------------------------------------------------------------------- scenarios


async def _cpu_then_profile(
    run: Callable[[], Awaitable[None]], warm_up: Callable[[], Awaitable[None]] | None = None
) -> tuple[Any, float]:
    """Warm up, time ``run`` on the CPU clock unprofiled, then run it again under cProfile:
    the figure printed is the unprofiled one, the profile says where it goes."""
    await (warm_up or run)()
    cpu = time.process_time()
    await run()
    cpu = time.process_time() - cpu
    profile = cProfile.Profile(PROFILE_TIMER)
    profile.enable()
    await run()
    profile.disable()
    return profile, cpu


async def profile_rtt(client: StatewsClient, endpoints: Endpoints, count: int) -> tuple[Any, ...]:
    async with client.connect(endpoints) as conn:
        message = conn.text("0123456789abcdef")
        send, recv = conn.send, conn.recv

        async def round_trips(n: int) -> None:
            for _ in range(n):
                await send(message)
                await recv()

        return await _cpu_then_profile(partial(round_trips, count), partial(round_trips, 500))


async def profile_stream(
    client: StatewsClient, endpoints: Endpoints, count: int
) -> tuple[Any, ...]:
    async with client.connect(endpoints) as conn:
        message = conn.binary(b"s" * 64)
        send, recv = conn.send, conn.recv

        async def run_once() -> None:
            async def sender() -> None:
                for _ in range(count):
                    await send(message)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                for _ in range(count):
                    await recv()

        return await _cpu_then_profile(run_once)


async def profile_big(client: StatewsClient, endpoints: Endpoints, count: int) -> tuple[Any, ...]:
    async with client.connect(endpoints) as conn:
        message = conn.binary(big_payload())
        send, recv = conn.send, conn.recv

        async def echoes(n: int) -> None:
            for _ in range(n):
                await send(message)
                assert len((await recv()).data) == BIG_SIZE

        return await _cpu_then_profile(partial(echoes, count), partial(echoes, 1))


async def profile_connect(
    client: StatewsClient, endpoints: Endpoints, count: int
) -> tuple[Any, ...]:
    async def connections(n: int) -> None:
        for _ in range(n):
            async with client.connect(endpoints):
                pass

    return await _cpu_then_profile(partial(connections, count), partial(connections, 10))


SCENARIO_PROFILES: dict[str, tuple[Callable[..., Any], int, str]] = {
    "rtt": (profile_rtt, 3000, "round trip"),
    "stream": (profile_stream, 10000, "message"),
    "big": (profile_big, 4, "16 MiB echo"),
    "connect": (profile_connect, 150, "connection"),
}


# --------------------------------------------------------------------------- costs


def per_call_us(fn: Callable[[], object], count: int) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        best = min(best, (time.perf_counter() - start) / count)
    return best * 1e6


def traced_kb(fn: Callable[[], object], count: int = 200) -> float:
    fn()
    gc.collect()
    tracemalloc.start()
    keep = []
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        keep.append(fn())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del keep
    return (after - before) / count / 1024


def _part(mod: ModuleType, *names: str) -> ModuleType:
    """The first of ``mod``'s submodules ``names`` that exists: the layered package
    (``core.protocol``) or a copy from before the restructure (``protocol``)."""
    for name in names:
        try:
            return importlib.import_module(f"{mod.__name__}.{name}")
        except ImportError:
            continue
    raise SystemExit(f"{mod.__name__} has none of {', '.join(names)}")


def costs(mod: ModuleType) -> None:
    lifecycle_mod = _part(mod, "lifecycle.machine", "lifecycle")
    options_mod = _part(mod, "options.model", "options")
    protocol_mod = _part(mod, "core.protocol", "protocol")
    connection_mod = _part(mod, "trio.connection", "connection")
    handshake_mod = _part(mod, "core.handshake", "handshake")
    lifecycle_cls = lifecycle_mod.Lifecycle
    url = "ws://127.0.0.1:9/"
    kwargs = {
        "compression": None,
        "ping_interval": None,
        "max_message_size": None,
        "max_frame_size": None,
    }

    def walk() -> object:
        machine = lifecycle_cls()
        for event in ("connect", "upgraded", "close_requested", "close_completed"):
            machine.fire(event)
        return machine

    connected = lifecycle_cls()
    connected.fire("connect")
    connected.fire("upgraded")
    rows: list[tuple[str, float, float | None]] = [
        ("Lifecycle() construction", per_call_us(lifecycle_cls, 200), traced_kb(lifecycle_cls)),
        ("Lifecycle() + the 4 transitions of a connect/close", per_call_us(walk, 100), None),
        ("lifecycle.state (property)", per_call_us(lambda: connected.state, 20000), None),
        ("lifecycle.require('send')", per_call_us(lambda: connected.require("send"), 20000), None),
    ]
    options = options_mod.resolve_options(url, **kwargs)
    rows.append(
        (
            "resolve_options(url, **4 overrides)",
            per_call_us(lambda: options_mod.resolve_options(url, **kwargs), 500),
            traced_kb(lambda: options_mod.resolve_options(url, **kwargs)),
        )
    )
    rows.append(
        (
            "ClientProtocol()",
            per_call_us(protocol_mod.ClientProtocol, 2000),
            traced_kb(protocol_mod.ClientProtocol),
        )
    )
    key = handshake_mod.generate_key()
    rows.append(
        (
            "handshake.build_request()",
            per_call_us(
                lambda: handshake_mod.build_request(
                    host="127.0.0.1",
                    port=9,
                    secure=False,
                    resource="/",
                    key=key,
                    protocols=(),
                    extensions=None,
                    headers=options.headers,
                ),
                2000,
            ),
            None,
        )
    )

    async def in_trio() -> None:
        async with trio.open_nursery() as nursery:
            make = lambda: connection_mod.WebSocket(nursery, options)  # noqa: E731
            rows.append(
                (
                    "WebSocket(nursery, options) (Lifecycle included)",
                    per_call_us(make, 200),
                    traced_kb(make),
                )
            )
            lot = trio.lowlevel.ParkingLot
            rows.append(("trio.lowlevel.ParkingLot()", per_call_us(lot, 5000), traced_kb(lot)))
            rows.append(("trio.Event()", per_call_us(trio.Event, 5000), traced_kb(trio.Event)))
            rows.append(
                (
                    "trio.CancelScope()",
                    per_call_us(trio.CancelScope, 5000),
                    traced_kb(trio.CancelScope),
                )
            )

    trio.run(in_trio)
    proto = protocol_mod.ClientProtocol()
    text = mod.Text("0123456789abcdef")
    frame16 = b"\x81\x10" + b"0123456789abcdef"

    def send_take() -> None:
        proto.send(text)
        proto.data_to_send()

    rows.append(("core: send(16 B text) + data_to_send()", per_call_us(send_take, 20000), None))
    receiver = protocol_mod.ClientProtocol()
    rows.append(
        (
            "core: receive_data(one 16 B text frame)",
            per_call_us(lambda: receiver.receive_data(frame16), 20000),
            None,
        )
    )
    print(f"  {'what':<52} {'us/call':>9} {'KB':>8}")
    for what, us, kb in rows:
        kb_text = "" if kb is None else f"{kb:8.2f}"
        print(f"  {what:<52} {us:9.2f} {kb_text:>8}")


# --------------------------------------------------------------------------- statemachine


def _bare_copy(declared: Any, base: Any, state_cls: Any) -> Any:
    """A machine class with ``declared``'s states and transitions, built from the
    declaration itself (no second copy of the lifecycle), but without its callbacks."""
    states = {s.id: state_cls(s.id, initial=s.initial, final=s.final) for s in declared.states}
    attrs: dict[str, Any] = dict(states)
    for state in declared.states:
        for transition in state.transitions:
            for event in transition.events:
                step = states[transition.source.id].to(states[transition.target.id])
                attrs[event.id] = attrs[event.id] | step if event.id in attrs else step
    return type(base)("NoCallbacks", (base,), attrs)


def statemachine_options(mod: ModuleType) -> None:
    from statemachine import State, StateMachine  # noqa: PLC0415
    from statemachine.engines.sync import SyncEngine  # noqa: PLC0415

    lifecycle_cls = _part(mod, "lifecycle.machine", "lifecycle").Lifecycle

    NoCallbacks = _bare_copy(lifecycle_cls, StateMachine, State)

    template = NoCallbacks()

    def shared() -> Any:
        # What StateMachine.__init__ does, minus building a callback registry: with no
        # instance-bound callback, the template's registry is the same for everyone.
        machine = NoCallbacks.__new__(NoCallbacks)
        attrs = vars(machine)
        attrs["model"] = type(template.model)()
        attrs["history_values"] = {}
        attrs["state_field"] = "state"
        attrs["start_configuration_values"] = list(template.start_configuration_values)
        attrs["_callbacks"] = template._callbacks
        attrs["_config"] = machine._build_configuration()
        attrs["_listeners"] = {}
        attrs["_engine"] = SyncEngine(machine)
        machine._engine.start()
        return machine

    def walk(make: Callable[[], Any]) -> Callable[[], object]:
        def run() -> object:
            machine = make()
            for event in ("connect", "upgraded", "close_requested", "close_completed"):
                machine.send(event)
            return machine

        return run

    print(f"  {'machine':<40} {'build us':>9} {'KB':>7} {'us/transition':>14}")
    for name, make in (
        ("statews Lifecycle (listener + logging)", lifecycle_cls),
        ("no callbacks, own registry", NoCallbacks),
        ("no callbacks, shared registry", shared),
    ):
        build = per_call_us(make, 100)
        transitions = (per_call_us(walk(make), 100) - build) / 4
        print(f"  {name:<40} {build:9.1f} {traced_kb(make):7.2f} {transitions:14.1f}")


# --------------------------------------------------------------------------- memory


def memory(client: StatewsClient, endpoints: Endpoints, count: int = 200) -> None:
    """Traced memory of ``count`` idle connections, by file, per connection."""

    async def hold() -> None:
        for _ in range(5):
            async with client.connect(endpoints):
                pass
        tracemalloc.start(25)
        try:
            async with AsyncExitStack() as stack:
                gc.collect()
                before = tracemalloc.take_snapshot()
                for _ in range(count):
                    await stack.enter_async_context(client.connect(endpoints))
                await trio.sleep(0.05)
                gc.collect()
                after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        diff = after.compare_to(before, "filename")
        total = sum(d.size_diff for d in diff)
        print(f"  total {total / count / 1024:.2f} KB per idle connection; by file:")
        for d in diff[:14]:
            name = _short(d.traceback[0].filename)
            print(
                f"  {d.size_diff / count / 1024:8.2f} KB {d.count_diff / count:7.1f} blocks  {name}"
            )
        # Attribute to the statews line that caused the allocation (deepest statews frame).
        by_origin: dict[str, int] = {}
        for stat in after.compare_to(before, "traceback"):
            origin = "(outside statews)"
            for frame in stat.traceback:  # most recent call first
                if "statews" in frame.filename and "bench" not in frame.filename:
                    origin = f"{_short(frame.filename)}:{frame.lineno}"
                    break
            by_origin[origin] = by_origin.get(origin, 0) + stat.size_diff
        print("  by the statews line that caused it:")
        for origin, size in sorted(by_origin.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {size / count / 1024:8.2f} KB  {origin}")

    trio.run(hold)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated")
    parser.add_argument("--statews", metavar="PATH", help="profile the package directory PATH")
    parser.add_argument("--server", choices=("auto", "node", "python"), default="auto")
    parser.add_argument("--dump", metavar="DIR", help="write .pstats files there")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    for part in parts:
        if part not in PARTS:
            parser.error(f"unknown part {part!r}; known: {', '.join(PARTS)}")
    if args.statews:
        module = load_statews_variant("statews_profiled", args.statews)
    else:
        import statews  # noqa: PLC0415

        module = statews
    client = StatewsClient("statews", module)
    print(f"statews from {Path(module.__file__ or '?').parent}")
    server = start_server(args.server) if set(parts) - {"costs", "statemachine"} else None
    try:
        for part in parts:
            if part in SCENARIO_PROFILES:
                assert server is not None
                fn, count, unit = SCENARIO_PROFILES[part]
                profile, cpu = trio.run(fn, client, server.endpoints, count)
                print(f"\n== {part}: {count} x {unit}")
                print(f"  unprofiled client CPU {cpu / count * 1e6:.1f} us per {unit}")
                print_stats(profile, count, f"{part}-profile", args.dump)
            elif part == "costs":
                print("\n== costs (no network; best of 5)")
                costs(module)
            elif part == "statemachine":
                print("\n== python-statemachine per connection (no network; best of 5)")
                statemachine_options(module)
            elif part == "memory":
                assert server is not None
                print("\n== memory of idle connections")
                memory(client, server.endpoints)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
