"""Client-to-server payload masking (RFC 6455 section 5.3), fast in pure Python.

Invariants:

- ``mask(data, key, prefix)`` returns ``prefix`` followed by ``data[i] ^ key[i % 4]`` for every
  ``i``; masking twice with the same key gives the data back.
- No Python-level loop ever runs per byte. Payloads below :data:`TRANSLATE_THRESHOLD` bytes go
  through one big-integer XOR (``int.from_bytes``); larger ones through ``bytearray.translate``
  on each of the four byte lanes (``buf[i::4]``) with a precomputed XOR table per key byte.
  ``bench/bench_masking.py`` measures both and justifies the threshold.
- Optional acceleration: when the ``websockets`` package's C extension is installed
  (``pip install statews[speedups]``), every payload uses its ``apply_mask`` (tens of GB/s
  against about 0.85 GB/s for the lanes, and 4x cheaper than the big-integer XOR even for
  16 bytes: 0.32 against 1.39 us, bench/bench_masking.py). It is imported on first use,
  not at import time, and ``STATEWS_PURE_PYTHON=1`` turns it off. Both paths give
  identical bytes (tested).
- Keys come from :func:`os.urandom` (the kernel CSPRNG), fetched in blocks by :class:`MaskKeys`
  so that a small frame does not pay a system call; every key is used exactly once.

Pure: no I/O besides :func:`os.urandom`, no trio.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = [
    "TRANSLATE_THRESHOLD",
    "BytesLike",
    "MaskKeys",
    "accelerated_masker",
    "mask",
    "mask_int",
    "mask_translate",
]

#: What the maskers accept as payload (byte-format memoryviews only).
BytesLike = bytes | bytearray | memoryview

#: Payload size from which the lane/translate method beats the big-integer XOR (measured
#: crossover near 900 bytes on the reference machine; see bench/bench_masking.py).
TRANSLATE_THRESHOLD = 1024

_Masker = Callable[[BytesLike, bytes], bytes]
_UNLOADED: _Masker = lambda data, key: b""  # noqa: E731 - a sentinel, never called
_accelerated: _Masker | None = _UNLOADED


def accelerated_masker() -> _Masker | None:
    """The C ``apply_mask`` of the ``websockets`` package, or ``None`` when it is not
    installed or ``STATEWS_PURE_PYTHON`` is set. Looked up once, on first use."""
    global _accelerated  # noqa: PLW0603 - a lazily loaded module-level cache
    if _accelerated is _UNLOADED:
        _accelerated = None
        if not os.environ.get("STATEWS_PURE_PYTHON"):
            try:
                from websockets.speedups import apply_mask  # noqa: PLC0415 - lazy, optional
            except ImportError:
                pass
            else:
                _accelerated = apply_mask
    return _accelerated


def _xor_tables() -> tuple[bytes, ...]:
    # Table k maps each byte b to b ^ k. Built with one big-int XOR per table: 256 tables
    # (64 KiB) cost well under a millisecond at import.
    identity = int.from_bytes(bytes(range(256)), "little")
    ones = int.from_bytes(b"\x01" * 256, "little")
    return tuple((identity ^ (k * ones)).to_bytes(256, "little") for k in range(256))


_XOR_TABLES = _xor_tables()


def mask_int(data: BytesLike, key: bytes, prefix: bytes = b"") -> bytes:
    """``prefix`` + ``data`` XOR the repeated 4-byte ``key``, by one big-integer XOR.

    Cheapest for small payloads: three C calls, no tables, no per-lane slicing.
    """
    n = len(data)
    repeated = key * ((n >> 2) + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
    return prefix + value.to_bytes(n, "little")


def mask_translate(data: BytesLike, key: bytes, prefix: bytes = b"") -> bytes | bytearray:
    """``prefix`` + ``data`` XOR the repeated 4-byte ``key``, lane by lane.

    Every fourth byte is XORed with the same key byte, so each of the four strided lanes is
    one ``bytearray.translate`` (C speed, no per-byte Python) written back by slice assignment.
    The result is built in one buffer after ``prefix``, so a frame header costs no extra copy.
    """
    out = bytearray(prefix)
    out += data
    p = len(prefix)
    t0, t1, t2, t3 = (_XOR_TABLES[k] for k in key)
    out[p::4] = out[p::4].translate(t0)
    out[p + 1 :: 4] = out[p + 1 :: 4].translate(t1)
    out[p + 2 :: 4] = out[p + 2 :: 4].translate(t2)
    out[p + 3 :: 4] = out[p + 3 :: 4].translate(t3)
    # The buffer itself: a bytes copy of it cost a quarter of the masking time, and the
    # frame is handed to the socket and never changed.
    return out


def mask(data: BytesLike, key: bytes, prefix: bytes = b"") -> bytes | bytearray:
    """``prefix`` followed by ``data`` masked with the 4-byte ``key``; the fastest method by size.

    ``key`` must be exactly 4 bytes (not checked: the caller draws it from :class:`MaskKeys`).
    """
    fast = _accelerated
    if fast is _UNLOADED:
        fast = accelerated_masker()
    if fast is not None:
        return prefix + fast(data, key)
    if len(data) < TRANSLATE_THRESHOLD:
        return mask_int(data, key, prefix)
    return mask_translate(data, key, prefix)


class MaskKeys:
    """A source of fresh, unpredictable 4-byte masking keys.

    Reads :data:`BLOCK` bytes from :func:`os.urandom` at a time and hands them out 4 by 4, so the
    system call is paid once per 256 frames. Keep one instance per connection (not shared
    between threads).
    """

    #: Bytes of randomness fetched per refill (256 keys).
    BLOCK = 1024

    __slots__ = ("_block", "_pos")

    def __init__(self) -> None:
        self._block = b""
        self._pos = 0

    def next(self) -> bytes:
        """Return a key never returned before by this source."""
        pos = self._pos
        if pos >= len(self._block):
            self._block = os.urandom(self.BLOCK)
            pos = 0
        self._pos = pos + 4
        return self._block[pos : pos + 4]
