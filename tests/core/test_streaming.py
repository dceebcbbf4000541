"""The receive path streams data frames: a frame's payload goes into its message as it arrives.

Binary parts are collected without holding the frame in the receive buffer, limits still come
from the header, and messages an extension transforms (or every message, when an extension
uses no RSV bit) are still decoded frame by frame, whole. Text validation inside a frame is
tested in test_utf8.py."""

from __future__ import annotations

import time

import pytest
from wire import server_frame

from statews.core.errors import PayloadTooBig, RemoteProtocolError
from statews.core.events import Binary, Frame, Ping, Text
from statews.core.framing import RawFrame
from statews.core.protocol import ClientProtocol

T, B, C, PING = 0x1, 0x2, 0x0, 0x9


def feed(proto: ClientProtocol, chunks: list[bytes]) -> tuple[list[Frame], int | None]:
    """Feed ``chunks``; the events, and the index of the chunk after which ``failure`` was set."""
    events: list[Frame] = []
    for i, chunk in enumerate(chunks):
        events += proto.receive_data(chunk)
        if proto.failure is not None:
            return events, i
    return events, None


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------- binary in pieces

MIXED = (
    server_frame(B, bytes(range(256)) * 300, fin=False)
    + server_frame(PING, b"between")
    + server_frame(C, b"tail")
    + server_frame(T, "é".encode() * 100)
    + server_frame(B, b"")
)
MIXED_EVENTS = [
    Ping(b"between"),
    Binary(bytes(range(256)) * 300 + b"tail"),
    Text("é" * 100),
    Binary(b""),
]


@pytest.mark.parametrize("size", [1, 3, 125, 4096, 65536])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_frames_in_pieces_reassemble_without_being_buffered(size: int, kind: type) -> None:
    proto = ClientProtocol()
    events: list[Frame] = []
    for chunk in cut(MIXED, size):
        events += proto.receive_data(kind(chunk))
        # private: data frames are streamed, so at most a header or a Ping waits in the buffer
        assert len(proto._recv_buffer) <= 2 + len(b"between")
    assert events == MIXED_EVENTS
    assert proto.failure is None


def test_a_big_frame_in_small_pieces_takes_linear_time() -> None:
    payload = b"q" * (8 * 2**20)
    wire = server_frame(B, payload)

    def elapsed(chunks: list[bytes]) -> float:
        proto = ClientProtocol()
        start = time.perf_counter()
        events, failed = feed(proto, chunks)
        took = time.perf_counter() - start
        assert events == [Binary(payload)]
        assert failed is None
        return took

    pieces = cut(wire, 4096)
    baseline = min(elapsed([wire]) for _ in range(3))
    took = min(elapsed(pieces) for _ in range(3))
    # 2049 calls; copying what was received so far on each would move ~17 GB.
    assert took < 20 * baseline + 0.05


# ---------------------------------------------------------------- limits

# (options, wire, index of the byte after which failure must be set, or None)
LIMITS_BYTE_BY_BYTE = [
    ({"max_frame_size": 10}, server_frame(B, b"x" * 10), None),
    ({"max_frame_size": 10}, server_frame(B, b"x" * 11), 1),
    ({"max_frame_size": 200}, server_frame(B, b"x" * 201), 3),
    (
        {"max_message_size": 10},
        server_frame(T, b"x" * 5, fin=False) + server_frame(C, b"y" * 5),
        None,
    ),
    ({"max_message_size": 10}, server_frame(B, b"x" * 6, fin=False) + server_frame(C, b"y" * 5), 9),
    (
        {"max_message_size": 10},
        server_frame(B, b"x" * 6, fin=False)
        + server_frame(PING, b"p" * 20)
        + server_frame(C, b"y" * 5),
        31,
    ),
    (
        {"max_message_size": 10},
        server_frame(B, b"x" * 6, fin=False)
        + server_frame(C, b"y" * 4, fin=False)
        + server_frame(C, b"z"),
        15,
    ),
]


@pytest.mark.parametrize(("options", "wire", "at"), LIMITS_BYTE_BY_BYTE)
def test_limits_fail_at_the_header_when_fed_byte_by_byte(
    options: dict[str, int], wire: bytes, at: int | None
) -> None:
    proto = ClientProtocol(**options)  # type: ignore[arg-type]
    events, failed = feed(proto, cut(wire, 1))
    assert failed == at
    if at is None:
        assert len(events) == 1
    else:
        assert isinstance(proto.failure, PayloadTooBig)


# ---------------------------------------------------------------- extensions


class Tagged:
    """Toy extension with RSV1: frames of marked messages end with ``#``, stripped on decode."""

    name = "x-tagged"

    def __init__(self, rsv_mask: int) -> None:
        self.rsv_mask = rsv_mask
        self.decoded: list[tuple[int, bytes]] = []

    def decode(self, frame: RawFrame, *, max_size: int | None) -> RawFrame:
        self.decoded.append((frame.opcode, frame.payload))
        if not frame.payload.endswith(b"#"):
            raise RemoteProtocolError("mark missing")
        return RawFrame(frame.opcode, frame.payload[:-1], frame.fin)

    def encode(self, frame: RawFrame) -> RawFrame:
        return RawFrame(frame.opcode, frame.payload + b"#", frame.fin, rsv1=bool(self.rsv_mask))


def test_a_marked_message_is_decoded_whole_and_an_unmarked_one_is_streamed() -> None:
    ext = Tagged(0b100)
    proto = ClientProtocol(extensions=[ext], max_message_size=8)
    marked = server_frame(T, b"ab#", fin=False, rsv=0b100) + server_frame(C, b"c#")
    for i in range(len(marked) - 1):
        assert proto.receive_data(marked[i : i + 1]) == []
        assert proto.failure is None
    assert proto.receive_data(marked[-1:]) == [Text("abc")]
    assert ext.decoded == [(T, b"ab#"), (C, b"c#")]  # each frame whole, once
    # Unmarked: never given to the extension, streamed, so the bad byte fails before the
    # frame is complete.
    plain = server_frame(T, b"ok\xffrest")
    assert feed(proto, [plain[:4], plain[4:5]]) == ([], 1)
    assert proto.failure is not None
    assert proto.failure.code == 1007
    assert ext.decoded == [(T, b"ab#"), (C, b"c#")]


def test_an_unmarked_message_is_limited_from_the_header_with_extensions() -> None:
    proto = ClientProtocol(extensions=[Tagged(0b100)], max_message_size=8)
    proto.receive_data(server_frame(B, length=9))  # the header only
    assert isinstance(proto.failure, PayloadTooBig)


def test_an_extension_without_rsv_bits_decodes_every_data_frame_whole() -> None:
    ext = Tagged(0)
    proto = ClientProtocol(extensions=[ext])
    wire = server_frame(T, b"ab#", fin=False) + server_frame(C, b"c#") + server_frame(B, b"x#")
    events, failed = feed(proto, cut(wire, 1))
    assert failed is None
    assert events == [Text("abc"), Binary(b"x")]
    assert ext.decoded == [(T, b"ab#"), (C, b"c#"), (B, b"x#")]
