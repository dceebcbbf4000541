"""What a hostile server can make the core hold: memory for a message being reassembled
(about its size however it is cut into frames and reads; empty frames cost nothing), and
messages returned by one ``receive_data`` call (``max_messages``; the rest stays unparsed).

Memory is measured with tracemalloc: the live blocks allocated while the frames before the
last one are fed (the input is built before tracing starts)."""

from __future__ import annotations

import tracemalloc

import pytest
from wire import close_frame, parse_frames, server_frame

from statews.core.events import Binary, Close, Frame, Ping, Pong, Text
from statews.core.protocol import ClientProtocol

T, B, C, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def fragments(opcode: int, pieces: list[bytes]) -> list[bytes]:
    """One message, one frame per piece."""
    last = len(pieces) - 1
    return [server_frame(opcode if i == 0 else C, p, fin=i == last) for i, p in enumerate(pieces)]


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def held_while_reassembling(
    wire: bytes, last_frame: int, read: int
) -> tuple[int, list[Frame], ClientProtocol]:
    """Feed ``wire`` but its last ``last_frame`` bytes in reads of ``read`` bytes; the memory
    then held (bytes), the events of the rest, and the protocol."""
    chunks = cut(wire[:-last_frame], read)
    proto = ClientProtocol(max_frame_size=None, max_message_size=None)
    tracemalloc.start()  # only what is allocated from now on counts
    try:
        before = tracemalloc.get_traced_memory()[0]
        for chunk in chunks:
            assert proto.receive_data(chunk) == []
        del chunk
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert proto.failure is None
    return held, proto.receive_data(wire[-last_frame:]), proto


N = 4096
WIDE = "x" * 4092 + "\U0001f600"  # 4096 bytes of UTF-8 whose str takes 4 bytes a character

# (name, frames of one message, read size, expected message); the frames are cut as given,
# the wire into reads of that size.
REASSEMBLY = [
    ("binary, 1-byte frames", fragments(B, [b"x"] * N), 65536, Binary(b"x" * N)),
    ("text, 1-byte frames", fragments(T, [b"x"] * N), 65536, Text("x" * N)),
    (
        "2-byte characters, 1-byte frames",
        fragments(T, cut("é".encode() * (N // 2), 1)),
        65536,
        Text("é" * (N // 2)),
    ),
    (
        "4-byte characters, 3-byte frames",
        fragments(T, cut("\U0001f600".encode() * (N // 4), 3)),
        4096,
        Text("\U0001f600" * (N // 4)),
    ),
    ("binary, one frame in 1-byte reads", [server_frame(B, b"y" * N)], 1, Binary(b"y" * N)),
    ("text, one frame in 1-byte reads", [server_frame(T, b"y" * N)], 1, Text("y" * N)),
    (
        "binary, 1-byte and 4 KiB frames in turn",
        fragments(B, [b"s", b"b" * 4096] * 4),
        65536,
        Binary((b"s" + b"b" * 4096) * 4),
    ),
    (
        "text widened by one character a frame, 4 KiB frames",
        fragments(T, [WIDE.encode()] * 8),
        65536,
        Text(WIDE * 8),
    ),
    (
        "text widened, one frame in 4 KiB reads",
        [server_frame(T, WIDE.encode() * 8)],
        4096,
        Text(WIDE * 8),
    ),
    (
        "text widened after 16 small frames",
        fragments(T, [b"a"] * 16 + [WIDE.encode()] * 8),
        65536,
        Text("a" * 16 + WIDE * 8),
    ),
]


@pytest.mark.parametrize(
    ("frames", "read", "message"), [r[1:] for r in REASSEMBLY], ids=[r[0] for r in REASSEMBLY]
)
def test_a_message_in_progress_holds_about_its_size(
    frames: list[bytes], read: int, message: Text | Binary
) -> None:
    wire = b"".join(frames)
    size = len(message.data.encode() if isinstance(message, Text) else message.data)
    last = len(frames[-1]) if len(frames) > 1 else 1
    held, events, _ = held_while_reassembling(wire, last, read)
    assert events == [message]
    assert held <= 1.5 * size + 4096, f"{held} bytes held for a {size}-byte message"


# (name, the message's frames): empty frames between the first and the last piece.
EMPTIES = [
    ("text", fragments(T, [b"a"] + [b""] * 5000 + [b"z"])),
    ("binary", fragments(B, [b"a"] + [b""] * 5000 + [b"z"])),
    ("text, an open sequence", fragments(T, [b"\xe2"] + [b""] * 5000 + [b"\x82\xac"])),
    ("empty text", fragments(T, [b""] * 5000)),
]


@pytest.mark.parametrize("frames", [r[1] for r in EMPTIES], ids=[r[0] for r in EMPTIES])
def test_empty_fragments_hold_nothing(frames: list[bytes]) -> None:
    wire = b"".join(frames)
    held, events, proto = held_while_reassembling(wire, len(frames[-1]), 65536)
    assert len(events) == 1
    assert proto.failure is None
    assert held <= 1024, f"{held} bytes held after {len(frames) - 1} fragments"


# ---------------------------------------------------------------- max_messages


STREAM = (
    server_frame(T, b"a")
    + server_frame(PING, b"p")
    + server_frame(T, b"b")
    + server_frame(B, b"c")
    + server_frame(T, b"d")
)

# (name, wire fed in one call, max_messages, events returned by each call until
# has_pending_input is False: the first call gets the wire, the others b"")
BUDGETS = [
    (
        "one a call",
        STREAM,
        1,
        [[Text("a")], [Ping(b"p"), Text("b")], [Binary(b"c")], [Text("d")]],
    ),
    ("two a call", STREAM, 2, [[Text("a"), Ping(b"p"), Text("b")], [Binary(b"c"), Text("d")]]),
    (
        "no more than asked",
        STREAM,
        3,
        [[Text("a"), Ping(b"p"), Text("b"), Binary(b"c")], [Text("d")]],
    ),
    (
        "more than there is",
        STREAM,
        9,
        [[Text("a"), Ping(b"p"), Text("b"), Binary(b"c"), Text("d")]],
    ),
    ("no limit", STREAM, None, [[Text("a"), Ping(b"p"), Text("b"), Binary(b"c"), Text("d")]]),
    (
        "fragments and a control frame",
        server_frame(T, b"a", fin=False)
        + server_frame(PING)
        + server_frame(C, b"b")
        + server_frame(B, b"c")
        + server_frame(PONG),
        1,
        [[Ping(b""), Text("ab")], [Binary(b"c")], [Pong(b"")]],
    ),
    (
        "a Close after the cap waits",
        server_frame(T, b"a") + close_frame(1000) + server_frame(T, b"never"),
        1,
        [[Text("a")], [Close(1000)]],
    ),
    (
        "the incomplete frame after the cap",
        server_frame(B, b"c") + server_frame(T, b"abcdef")[:5],
        1,
        [[Binary(b"c")], []],
    ),
]


@pytest.mark.parametrize(
    ("wire", "budget", "calls"), [r[1:] for r in BUDGETS], ids=[r[0] for r in BUDGETS]
)
def test_max_messages_caps_each_call_and_the_rest_waits_unparsed(
    wire: bytes, budget: int | None, calls: list[list[Frame]]
) -> None:
    proto = ClientProtocol()
    got = [proto.receive_data(wire, max_messages=budget)]
    while proto.has_pending_input:
        assert len(got) < 10
        got.append(proto.receive_data(b"", max_messages=budget))
    assert got == calls
    assert proto.receive_data(b"", max_messages=budget) == []
    assert proto.failure is None


def failure_code(proto: ClientProtocol) -> int | None:
    return None if proto.failure is None else proto.failure.code


def closes(proto: ClientProtocol) -> tuple[Close | None, Close | None]:
    return proto.close_received, proto.close_sent


def test_what_waits_unparsed_has_no_effect_yet() -> None:
    """A Ping, a violation or a Close after the cap is acted on only once parsed."""
    wire = (
        server_frame(T, b"a")
        + server_frame(PING, b"p")
        + server_frame(T, b"b")
        + server_frame(0x3)
        + server_frame(CLOSE)
    )
    proto = ClientProtocol()
    assert proto.receive_data(wire, max_messages=1) == [Text("a")]
    assert proto.data_to_send() == []  # the Ping is not parsed yet: no Pong
    assert proto.receive_data(b"", max_messages=1) == [Ping(b"p"), Text("b")]
    assert [f.opcode for f in parse_frames(b"".join(proto.data_to_send()))] == [PONG]
    assert (failure_code(proto), proto.has_pending_input) == (None, True)
    assert proto.receive_data(b"", max_messages=1) == []
    # The reserved opcode; the Close after it is never parsed.
    assert (failure_code(proto), proto.has_pending_input) == (1002, False)
    assert proto.close_received is None

    proto = ClientProtocol()
    wire = server_frame(T, b"a") + close_frame(1001)
    assert proto.receive_data(wire, max_messages=1) == [Text("a")]
    assert closes(proto) == (None, None)
    assert proto.receive_data(b"", max_messages=1) == [Close(1001)]
    assert closes(proto) == (Close(1001), Close(1001))


def test_a_streamed_frame_that_ends_a_message_counts() -> None:
    big = server_frame(B, b"z" * 1000)
    proto = ClientProtocol()
    assert proto.receive_data(big[:100], max_messages=1) == []
    rest = big[100:] + server_frame(T, b"a") + server_frame(T, b"b")
    assert proto.receive_data(rest, max_messages=1) == [Binary(b"z" * 1000)]
    assert proto.has_pending_input
    assert proto.receive_data(b"", max_messages=1) == [Text("a")]
    assert proto.receive_data(b"", max_messages=1) == [Text("b")]
    assert not proto.has_pending_input


def test_input_given_while_some_waits_comes_after_it() -> None:
    proto = ClientProtocol()
    assert proto.receive_data(server_frame(T, b"a") + server_frame(T, b"b"), max_messages=1) == [
        Text("a")
    ]
    events = proto.receive_data(server_frame(T, b"c")[:1])  # no cap, and a frame cut short
    assert events == [Text("b")]
    assert not proto.has_pending_input
    assert proto.receive_data(server_frame(T, b"c")[1:], max_messages=1) == [Text("c")]


def test_a_read_of_tiny_messages_is_returned_a_few_at_a_time() -> None:
    """64 KiB of empty messages (2 bytes each): each call returns at most the cap; the rest
    of the read waits as raw bytes, not as parsed messages."""
    wire = server_frame(T) * 32768
    proto = ClientProtocol()
    tracemalloc.start()  # only what is allocated from now on counts
    try:
        before = tracemalloc.get_traced_memory()[0]
        first = proto.receive_data(wire, max_messages=16)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert first == [Text("")] * 16
    assert held <= len(wire) + 4096, f"{held} bytes held after one call"
    calls = 1
    total = len(first)
    while proto.has_pending_input:
        events = proto.receive_data(b"", max_messages=16)
        assert events == [Text("")] * 16
        total += len(events)
        calls += 1
    assert (calls, total) == (2048, 32768)


@pytest.mark.parametrize("budget", [0, -1])
def test_max_messages_below_one_is_refused(budget: int) -> None:
    proto = ClientProtocol()
    with pytest.raises(ValueError, match="max_messages"):
        proto.receive_data(server_frame(T, b"a"), max_messages=budget)
    assert proto.receive_data(server_frame(T, b"a"), max_messages=1) == [Text("a")]
