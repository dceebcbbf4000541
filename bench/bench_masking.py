"""Throughput of the masking methods in statews.masking, per payload size.

Run: ``python bench/bench_masking.py`` (about 15 s). Prints GB/s (10**9 bytes per second) and
microseconds per call, best of several runs, for:

- ``int``: one big-integer XOR (``int.from_bytes`` ... ``to_bytes``);
- ``translate``: ``bytearray.translate`` on the four strided byte lanes;
- ``mask``: what statews uses (picks one of the two by size, TRANSLATE_THRESHOLD);
- ``websockets C``: websockets' C ``apply_mask``, as a reference only, when installed.

Each call masks a fresh payload copy's worth of output with a new random key, as sending does.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from statews.core.masking import TRANSLATE_THRESHOLD, mask, mask_int, mask_translate

SIZES = (16, 125, 1024, 4096, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024)
#: Time spent per (method, size) run; best of REPEATS runs is kept.
BUDGET = 0.08
REPEATS = 5

Masker = Callable[[bytes, bytes], bytes]


def reference_maskers() -> dict[str, Masker]:
    try:
        speedups = importlib.import_module("websockets.speedups")
    except ImportError:
        return {}
    return {"websockets C": speedups.apply_mask}


def measure(fn: Masker, data: bytes, keys: list[bytes]) -> float:
    """Best seconds per call."""
    calls = len(keys)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for key in keys:
            fn(data, key)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    maskers: dict[str, Masker] = {
        "int": mask_int,
        "translate": mask_translate,
        "mask": mask,
        **reference_maskers(),
    }
    print(f"TRANSLATE_THRESHOLD = {TRANSLATE_THRESHOLD} bytes")
    print(f"{'size':>10} " + " ".join(f"{name:>22}" for name in maskers))
    for size in SIZES:
        data = os.urandom(size)
        # Calibrate the number of calls to the time budget with the slowest plausible method.
        start = time.perf_counter()
        mask_int(data, b"abcd")
        once = max(time.perf_counter() - start, 1e-7)
        keys = [os.urandom(4) for _ in range(max(3, min(20000, int(BUDGET / once))))]
        expected = mask_int(data, keys[0])
        cells = []
        for fn in maskers.values():
            assert bytes(fn(data, keys[0])) == expected
            seconds = measure(fn, data, keys)
            cells.append(f"{size / seconds / 1e9:7.2f} GB/s {seconds * 1e6:9.2f} us")
        print(f"{size:>10} " + " ".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
