"""Per-message cost of permessage-deflate: encode and decode, in microseconds.

Run: ``PYTHONPATH=. python bench/bench_deflate.py``. Messages are distinct JSON-like payloads (so
context takeover helps as it does in real traffic, not more); decode reads what a
zlib server at level 6 with context takeover sends. Best of 5 runs.
"""

from __future__ import annotations

import random
import time
import zlib

from statews.core.deflate import DeflateAgreement, PerMessageDeflate
from statews.core.framing import Opcode, RawFrame

SIZES = [16, 1024, 64 * 1024]
RUNS = 5


def json_like(size: int, rng: random.Random) -> bytes:
    words = [b"price", b"qty", b"BTCUSD", b"ETHUSD", b"buy", b"sell", b"ok", b"trade"]
    out = bytearray()
    while len(out) < size:
        out += b'{"%s":"%s","n":%d},' % (rng.choice(words), rng.choice(words), rng.randrange(10**6))
    return bytes(out[:size])


def messages(size: int) -> list[bytes]:
    rng = random.Random(size)
    count = max(20, min(5000, 4_000_000 // size))
    return [json_like(size, rng) for _ in range(count)]


def bench_encode(payloads: list[bytes], threshold: int) -> tuple[float, float]:
    """Best per-message time in us, and compressed/raw ratio."""
    frames = [RawFrame(Opcode.TEXT, p) for p in payloads]
    best = float("inf")
    wire = 0
    for _ in range(RUNS):
        ext = PerMessageDeflate(DeflateAgreement(), threshold=threshold)
        encode = ext.encode
        start = time.perf_counter()
        out = [encode(f) for f in frames]
        best = min(best, time.perf_counter() - start)
        wire = sum(len(f.payload) for f in out)
    return best / len(frames) * 1e6, wire / sum(map(len, payloads))


def bench_decode(payloads: list[bytes]) -> float:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    frames = []
    for p in payloads:
        data = deflater.compress(p) + deflater.flush(zlib.Z_SYNC_FLUSH)
        frames.append(RawFrame(Opcode.TEXT, data[:-4], rsv1=True))
    best = float("inf")
    for _ in range(RUNS):
        ext = PerMessageDeflate(DeflateAgreement())
        decode = ext.decode
        start = time.perf_counter()
        out = [decode(f, max_size=1 << 24) for f in frames]
        best = min(best, time.perf_counter() - start)
        assert [f.payload for f in out] == payloads
    return best / len(frames) * 1e6


def main() -> None:
    print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}, level 6, window 15, context takeover")
    print(f"{'size':>8} {'encode us':>10} {'ratio':>6} {'decode us':>10}")
    for size in SIZES:
        payloads = messages(size)
        enc, ratio = bench_encode(payloads, threshold=0)
        dec = bench_decode(payloads)
        print(f"{size:>8} {enc:>10.2f} {ratio:>6.3f} {dec:>10.2f}")
    plain, _ = bench_encode(messages(16), threshold=128)
    print(f"16 B under the default threshold (sent uncompressed): encode {plain:.2f} us")


if __name__ == "__main__":
    main()
