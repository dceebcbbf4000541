"""The benchmark scenarios: each opens its connection(s), warms up, then times one run.

A scenario is ``async def (client, endpoints, size) -> Sample``, run in a fresh
``trio.run`` by ``bench/run.py``. Only the timed part counts: connection set-up and
warm-up happen before the clocks start (except in ``connect`` and ``idle``, which time
connection set-up itself). Every echo is checked (length), so a client that drops or
truncates messages fails instead of looking fast.

Figures: ``value`` in the scenario's unit; ``count`` the number of messages (or
connections) in the timed part, for CPU per message; ``wall`` and ``cpu`` (this
process's CPU time, ``time.process_time``) over the timed part; ``server_cpu`` the echo
server's CPU seconds over the same interval (from ``/proc/<pid>/stat``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import trio
from clients import Client, Endpoints

_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One timed run of one scenario with one client."""

    value: float
    count: int
    wall: float
    cpu: float
    server_cpu: float


@dataclass(frozen=True)
class Scenario:
    """What a scenario measures and how to read it."""

    name: str
    unit: str
    higher_is_better: bool
    run: Callable[[Client, Endpoints, int], Awaitable[Sample]]
    description: str
    deflate: bool = False


class Clocks:
    """Wall, own CPU and server CPU, started together and read together."""

    server_pid = 0

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.server = server_cpu_seconds(self.server_pid)

    def sample(self, value_of: Callable[[float], float], count: int) -> Sample:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        server = server_cpu_seconds(self.server_pid) - self.server
        return Sample(value_of(wall), count, wall, cpu, server)


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (0 when unknown); psutil-free."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def run_on(client: Client, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``fn(*args)`` in a fresh event loop of the client's runtime (trio or asyncio)."""
    if client.runtime == "asyncio":
        return asyncio.run(fn(*args))  # type: ignore[arg-type]
    return trio.run(fn, *args)


async def _sleep(client: Client, seconds: float) -> None:
    if client.runtime == "asyncio":
        await asyncio.sleep(seconds)
    else:
        await trio.sleep(seconds)


def _check(message: object, size: int) -> None:
    length = len(getattr(message, "data", message))  # type: ignore[arg-type]
    if length != size:
        raise AssertionError(f"echo of {size} bytes came back with {length}")


# --------------------------------------------------------------------------- scenarios


async def rtt(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """Sequential 16-byte text round trips."""
    async with client.connect(endpoints) as conn:
        send, recv = conn.send, conn.recv
        message = conn.text("0123456789abcdef")
        for _ in range(200):
            await send(message)
            await recv()
        clocks = Clocks()
        for _ in range(count):
            await send(message)
            await recv()
        sample = clocks.sample(lambda wall: count / wall, count)
        _check(await _echo(send, recv, message), 16)
    return sample


async def _echo(
    send: Callable[[object], Awaitable[None]],
    recv: Callable[[], Awaitable[object]],
    message: object,
) -> object:
    await send(message)
    return await recv()


async def stream(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """One task sends ``count`` 64-byte binaries, the other receives their echoes."""
    async with client.connect(endpoints, coalesce=True) as conn:
        send, recv = conn.send, conn.recv
        message = conn.binary(b"s" * 64)
        for _ in range(200):
            await send(message)
            await recv()

        async def sender() -> None:
            for _ in range(count):
                await send(message)

        clocks = Clocks()
        if client.runtime == "asyncio":
            sending = asyncio.ensure_future(sender())
            for _ in range(count - 1):
                await recv()
            last = await recv()
            await sending
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                for _ in range(count - 1):
                    await recv()
                last = await recv()
        sample = clocks.sample(lambda wall: count / wall, count)
        _check(last, 64)
    return sample


BIG_SIZE = 16 * 2**20
_big_payload: list[bytes] = []


def big_payload() -> bytes:
    if not _big_payload:
        _big_payload.append(random.Random(16).randbytes(BIG_SIZE))
    return _big_payload[0]


async def big(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """``count`` sequential echoes of a 16 MiB binary; MB/s of payload one way."""
    async with client.connect(endpoints) as conn:
        send, recv = conn.send, conn.recv
        message = conn.binary(big_payload())
        _check(await _echo(send, recv, message), BIG_SIZE)
        gc.collect()
        clocks = Clocks()
        for _ in range(count):
            await send(message)
            echo = await recv()
            _check(echo, BIG_SIZE)
            del echo
        return clocks.sample(lambda wall: count * BIG_SIZE / wall / 1e6, count)


async def connect(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """``count`` sequential connect + opening handshake + closing handshake."""
    for _ in range(5):
        async with client.connect(endpoints):
            pass
    clocks = Clocks()
    for _ in range(count):
        async with client.connect(endpoints):
            pass
    return clocks.sample(lambda wall: count / wall, count)


async def idle(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """Open ``count`` connections and keep them idle; value: traced KB per connection.

    ``tracemalloc`` counts Python-level allocations alive once every connection is open
    and its tasks are parked (kernel socket buffers are not counted). The CPU figure is
    per connection opened, under tracemalloc (so slower than ``connect``'s).
    """
    for _ in range(5):
        async with client.connect(endpoints):
            pass
    tracemalloc.start()
    try:
        async with AsyncExitStack() as stack:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            clocks = Clocks()
            for _ in range(count):
                await stack.enter_async_context(client.connect(endpoints, idle=True))
            await _sleep(client, 0.05)  # every reader task reaches its park
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            sample = clocks.sample(lambda _: (after - before) / count / 1024, count)
    finally:
        tracemalloc.stop()
    return sample


def resident_kb() -> float:
    """This process's resident set size in KiB (/proc/self/statm)."""
    with open("/proc/self/statm", "rb") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


async def idle_rss(client: Client, endpoints: Endpoints, count: int) -> float:
    """RSS growth per idle connection in KiB; meaningful only in a fresh process."""
    for _ in range(5):
        async with client.connect(endpoints):
            pass
    async with AsyncExitStack() as stack:
        gc.collect()
        before = resident_kb()
        for _ in range(count):
            await stack.enter_async_context(client.connect(endpoints, idle=True))
        await _sleep(client, 0.05)
        gc.collect()
        return (resident_kb() - before) / count


def json_messages(size: int, count: int) -> list[str]:
    """``count`` distinct JSON-like texts of ``size`` bytes (market-data shaped)."""
    rng = random.Random(size)
    words = ["price", "qty", "BTCUSD", "ETHUSD", "buy", "sell", "ok", "trade", "bid", "ask"]
    out = []
    for _ in range(count):
        parts: list[str] = []
        length = 0
        while length < size:
            item = {
                "s": rng.choice(words),
                "side": rng.choice(words),
                "p": round(rng.uniform(100, 70000), 2),
                "q": rng.randrange(10**6),
            }
            part = json.dumps(item)
            parts.append(part)
            length += len(part) + 1
        out.append(("[" + ",".join(parts))[: size - 1] + "]")
    return out


async def deflate(client: Client, endpoints: Endpoints, count: int) -> Sample:
    """Round trips of distinct 1 KiB JSON-like texts with permessage-deflate on."""
    texts = json_messages(1024, 256)
    async with client.connect(endpoints, deflate=True) as conn:
        send, recv = conn.send, conn.recv
        messages = [conn.text(t) for t in texts]
        for message in messages[:100]:
            await send(message)
            await recv()
        n = len(messages)
        clocks = Clocks()
        for i in range(count):
            await send(messages[i % n])
            await recv()
        sample = clocks.sample(lambda wall: count / wall, count)
        _check(await _echo(send, recv, messages[0]), 1024)
    return sample


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("rtt", "msg/s", True, rtt, "sequential 16-byte text round trips"),
        Scenario("stream", "msg/s", True, stream, "64-byte binaries, one sender, one receiver"),
        Scenario("big", "MB/s", True, big, "16 MiB binary echo, payload MB/s"),
        Scenario("connect", "conn/s", True, connect, "connect + handshake + close"),
        Scenario("idle", "KB/conn", False, idle, "traced memory per idle open connection"),
        Scenario(
            "deflate", "msg/s", True, deflate, "1 KiB JSON text round trips, deflate on", True
        ),
    )
}
