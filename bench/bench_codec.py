"""Per-frame cost of the sans-I/O core: parse (server to client), serialize+mask (client to server).

Run: ``python bench/bench_codec.py`` (about 10 s). Prints microseconds per frame for payloads of
16 B, 1 KiB, 64 KiB and 1 MiB:

- ``parse 1/call``: one frame per ``receive_data`` call (a chunk per frame, the worst case);
- ``parse batch``: many frames in one chunk (the per-frame cost when reads bring several);
- ``serialize``: ``send()`` (header, fresh key, masking) plus ``data_to_send()``.

Text frames are used where noted: they include UTF-8 validation and decoding.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from statews.core.events import Binary, Text
from statews.core.protocol import ClientProtocol

SIZES = (16, 1024, 64 * 1024, 1024 * 1024)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked frame as a server sends it."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def best_of(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def bench_parse_single(frame: bytes, count: int) -> float:
    proto = ClientProtocol(max_frame_size=None, max_message_size=None)
    receive = proto.receive_data
    start = time.perf_counter()
    for _ in range(count):
        receive(frame)
    elapsed = time.perf_counter() - start
    assert proto.failure is None
    return elapsed / count


def bench_parse_batch(frame: bytes, count: int) -> float:
    chunk = frame * count
    proto = ClientProtocol(max_frame_size=None, max_message_size=None)
    start = time.perf_counter()
    events = proto.receive_data(chunk)
    elapsed = time.perf_counter() - start
    assert len(events) == count
    assert proto.failure is None
    return elapsed / count


def bench_serialize(message: Text | Binary, count: int) -> float:
    proto = ClientProtocol()
    send = proto.send
    take = proto.data_to_send
    start = time.perf_counter()
    for _ in range(count):
        send(message)
        take()
    return (time.perf_counter() - start) / count


def main() -> None:
    print(f"{'payload':>9} {'kind':>6} {'parse 1/call':>13} {'parse batch':>12} {'serialize':>10}")
    for size in SIZES:
        count = max(20, min(20000, (32 * 2**20) // size))
        kinds: list[tuple[str, int, Text | Binary]] = [("binary", 2, Binary(b"x" * size))]
        if size <= 1024:
            kinds.insert(0, ("text", 1, Text("x" * size)))
        for kind, opcode, message in kinds:
            raw = message.data if isinstance(message, Binary) else message.data.encode()
            frame = server_frame(opcode, raw)
            single = best_of(5, partial(bench_parse_single, frame, count))
            batch = best_of(5, partial(bench_parse_batch, frame, count))
            ser = best_of(5, partial(bench_serialize, message, count))
            print(
                f"{size:>9} {kind:>6} {single * 1e6:>10.2f} us {batch * 1e6:>9.2f} us"
                f" {ser * 1e6:>7.2f} us"
            )


if __name__ == "__main__":
    main()
