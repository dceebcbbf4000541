"""Rule 1 and 2: masking is a correct XOR whatever the method, size, alignment or key, and keys
are fresh (drawn once each from os.urandom, fetched in blocks)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from statews.core import masking
from statews.core.masking import TRANSLATE_THRESHOLD, MaskKeys, mask, mask_int, mask_translate

Masker = Callable[..., bytes]


def reference(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


METHODS = [mask, mask_int, mask_translate]
SIZES = [
    *range(18),
    125,
    126,
    1023,
    1024,
    1025,
    TRANSLATE_THRESHOLD - 1,
    TRANSLATE_THRESHOLD,
    TRANSLATE_THRESHOLD + 3,
    65536 + 2,
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", SIZES)
def test_mask_matches_bytewise_xor(method: Masker, size: int) -> None:
    data = os.urandom(size)
    key = os.urandom(4)
    assert method(data, key) == reference(data, key)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("prefix", [b"", b"\x81", b"\x82\xfe\x01\x00abcd", b"p" * 14])
def test_prefix_is_kept_and_does_not_shift_the_lanes(method: Masker, prefix: bytes) -> None:
    for size in (5, 130, TRANSLATE_THRESHOLD + 1):
        data = os.urandom(size)
        key = b"\x01\x22\x33\xf4"
        assert method(data, key, prefix) == prefix + reference(data, key)


@pytest.mark.parametrize("method", METHODS)
def test_every_key_byte_value_in_every_lane(method: Masker) -> None:
    data = bytes(range(256)) * 4
    for k in range(256):
        key = bytes([k, 255 - k, k ^ 0x5A, (k * 7) % 256])
        assert method(data, key) == reference(data, key)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_any_bytes_like(method: Masker, kind: type) -> None:
    data = os.urandom(3000)
    key = os.urandom(4)
    result = method(kind(data), key)
    # The large-payload methods hand back their buffer without a final copy.
    assert type(result) in (bytes, bytearray)
    assert result == reference(data, key)


@pytest.mark.parametrize(
    ("size", "method"),
    [
        (0, "mask_int"),
        (16, "mask_int"),
        (TRANSLATE_THRESHOLD - 1, "mask_int"),
        (TRANSLATE_THRESHOLD, "mask_translate"),
        (2**20, "mask_translate"),
    ],
)
def test_mask_picks_the_method_by_size(
    monkeypatch: pytest.MonkeyPatch, size: int, method: str
) -> None:
    monkeypatch.setattr(masking, "_accelerated", None)  # the pure-Python choice
    used: list[str] = []
    for name in ("mask_int", "mask_translate"):
        real = getattr(masking, name)

        def spy(*args: object, _name: str = name, _real: Masker = real) -> bytes:
            used.append(_name)
            return _real(*args)

        monkeypatch.setattr(masking, name, spy)
    data = os.urandom(size)
    assert mask(data, b"wxyz") == reference(data, b"wxyz")
    assert used == [method]


def test_masking_twice_restores_the_data() -> None:
    data = os.urandom(50_000)
    key = os.urandom(4)
    assert mask(mask(data, key), key) == data


def test_large_payload_through_both_methods() -> None:
    data = os.urandom(3 * 2**20 + 1)
    key = os.urandom(4)
    expected = mask_int(data, key)
    assert mask_translate(data, key) == expected
    assert mask(data, key) == expected
    assert expected[:64] == reference(data[:64], key)
    assert expected[-64:] == reference(data[-64:], key[(len(data) - 64) % 4 :] + key)[:64]


def test_keys_are_consecutive_urandom_bytes_used_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[bytes] = []

    def fake_urandom(n: int) -> bytes:
        block = bytes((len(fetched) * 7 + i) % 256 for i in range(n))
        fetched.append(block)
        return block

    monkeypatch.setattr("os.urandom", fake_urandom)
    keys = MaskKeys()
    per_block = MaskKeys.BLOCK // 4
    drawn = [keys.next() for _ in range(per_block * 2 + 1)]
    assert len(fetched) == 3  # one system call per BLOCK bytes, none per key
    assert all(len(key) == 4 for key in drawn)
    assert b"".join(drawn) == b"".join(fetched)[: len(drawn) * 4]


def test_keys_differ_between_sources_and_draws() -> None:
    a, b = MaskKeys(), MaskKeys()
    first = [a.next() for _ in range(8)]
    second = [b.next() for _ in range(8)]
    # 16 random 32-bit keys: a collision has probability ~3e-8.
    assert len(set(first + second)) == 16


# ---------------------------------------------------------------- optional C acceleration


@pytest.mark.parametrize(
    "size",
    [0, 1, 16, 125, masking.TRANSLATE_THRESHOLD - 1, masking.TRANSLATE_THRESHOLD, 2**20 + 1],
)
def test_accelerated_and_pure_paths_agree(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    fast = masking.accelerated_masker()
    if fast is None:
        pytest.skip("the websockets C extension is not installed")
    data = os.urandom(size)
    key = os.urandom(4)
    assert fast(data, key) == mask_translate(data, key)
    assert mask(data, key, b"hdr") == b"hdr" + mask_translate(data, key)
    monkeypatch.setattr(masking, "_accelerated", None)
    assert mask(data, key, b"hdr") == b"hdr" + mask_translate(data, key)


def test_pure_python_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWS_PURE_PYTHON", "1")
    monkeypatch.setattr(masking, "_accelerated", masking._UNLOADED)
    assert masking.accelerated_masker() is None
