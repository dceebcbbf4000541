"""ClientProtocol as a whole: fragmentation (rule 4), extensions' RSV bits and hooks (rule 5),
the closing handshake and automatic replies (rules 3, 7), limits (rule 8), error reporting
(rule 9), the send queue, options, and independence from trio."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from wire import WireFrame, close_body, close_frame, parse_frames, server_frame

import statews.core.protocol
from statews.core.errors import (
    LocalProtocolError,
    OptionsError,
    PayloadTooBig,
    RemoteProtocolError,
)
from statews.core.events import Binary, Close, Frame, Ping, Pong, Text
from statews.core.framing import Opcode, RawFrame
from statews.core.protocol import ClientProtocol


def sent_frames(proto: ClientProtocol) -> list[WireFrame]:
    return parse_frames(b"".join(proto.data_to_send()))


def summary(frames: list[WireFrame]) -> list[tuple[int, bool, bytes]]:
    return [(f.opcode, f.fin, f.payload) for f in frames]


def code_of(proto: ClientProtocol) -> int | None:
    return None if proto.failure is None else proto.failure.code


def close_of(proto: ClientProtocol) -> Close | None:
    return proto.close_sent


# ---------------------------------------------------------------- rule 4: reassembly

T, B, C, PING = 0x1, 0x2, 0x0, 0x9

REASSEMBLY = [
    ("text in 3", [(T, b"ab", False), (C, b"c", False), (C, b"d", True)], [Text("abcd")], None),
    ("binary in 2", [(B, b"\x00", False), (C, b"\xff", True)], [Binary(b"\x00\xff")], None),
    ("empty fragments", [(T, b"", False), (C, b"", False), (C, b"", True)], [Text("")], None),
    (
        "ping between",
        [(B, b"a", False), (PING, b"p", True), (C, b"b", True)],
        [Ping(b"p"), Binary(b"ab")],
        None,
    ),
    (
        "two messages",
        [(T, b"a", False), (C, b"b", True), (B, b"c", False), (C, b"d", True)],
        [Text("ab"), Binary(b"cd")],
        None,
    ),
    ("continuation first", [(C, b"x", True)], [], 1002),
    ("continuation after a message", [(T, b"a", True), (C, b"x", True)], [Text("a")], 1002),
    ("text inside text", [(T, b"a", False), (T, b"b", True)], [], 1002),
    ("binary inside text", [(T, b"a", False), (B, b"b", True)], [], 1002),
    ("text inside binary", [(B, b"a", False), (T, b"b", False)], [], 1002),
    ("unfinished stays pending", [(B, b"a", False), (C, b"b", False)], [], None),
]


@pytest.mark.parametrize(
    ("frames", "events", "code"), [c[1:] for c in REASSEMBLY], ids=[c[0] for c in REASSEMBLY]
)
@pytest.mark.parametrize("together", [True, False], ids=["one chunk", "frame by frame"])
def test_reassembly(
    frames: list[tuple[int, bytes, bool]], events: list[Frame], code: int | None, together: bool
) -> None:
    wire = [server_frame(op, payload, fin=fin) for op, payload, fin in frames]
    proto = ClientProtocol()
    if together:
        got = proto.receive_data(b"".join(wire))
    else:
        got = [e for chunk in wire for e in proto.receive_data(chunk)]
    assert got == events
    assert code_of(proto) == code


def test_no_cap_on_the_number_of_fragments() -> None:
    count = 20_000
    wire = server_frame(B, b"\x00", fin=False)
    wire += b"".join(server_frame(C, bytes([i % 256]), fin=False) for i in range(1, count - 1))
    wire += server_frame(C, b"\xff")
    proto = ClientProtocol()
    (message,) = proto.receive_data(wire)
    assert isinstance(message, Binary)
    assert len(message.data) == count
    assert message.data[:3] == b"\x00\x01\x02"
    assert message.data[-1] == 0xFF


def test_reassembly_time_is_linear_in_the_message_size() -> None:
    # 1000 fragments of 8 KiB: joining once costs about what one big frame costs; appending
    # with bytes += bytes would copy ~4 GB (about 500 times the message).
    part = b"z" * 8192
    count = 1000
    fragmented = b"".join(
        server_frame(B if i == 0 else C, part, fin=i == count - 1) for i in range(count)
    )
    whole = server_frame(B, part * count)

    def elapsed(data: bytes) -> float:
        proto = ClientProtocol()
        start = time.perf_counter()
        (message,) = proto.receive_data(data)
        took = time.perf_counter() - start
        assert isinstance(message, Binary)
        assert len(message.data) == len(part) * count
        return took

    baseline = min(elapsed(whole) for _ in range(3))
    took = min(elapsed(fragmented) for _ in range(3))
    assert took < 40 * baseline + 0.05


# ---------------------------------------------------------------- rule 4: sending fragments

FRAGMENT_SIZES = [
    (0, 3, [(T, True, 0)]),
    (3, 3, [(T, True, 3)]),
    (4, 3, [(T, False, 3), (C, True, 1)]),
    (9, 3, [(T, False, 3), (C, False, 3), (C, True, 3)]),
    (10, 3, [(T, False, 3), (C, False, 3), (C, False, 3), (C, True, 1)]),
    (10, 1000, [(T, True, 10)]),
    (200_000, 65536, [(T, False, 65536)] + [(C, False, 65536)] * 2 + [(C, True, 3392)]),
]


@pytest.mark.parametrize(("size", "fragment_size", "expected"), FRAGMENT_SIZES)
@pytest.mark.parametrize("kind", [Text, Binary])
def test_fragment_size_splits_outgoing_messages(
    size: int, fragment_size: int, expected: list[tuple[int, bool, int]], kind: type
) -> None:
    proto = ClientProtocol(fragment_size=fragment_size)
    payload = bytes(i % 90 + 32 for i in range(size))
    proto.send(Text(payload.decode()) if kind is Text else Binary(payload))
    frames = sent_frames(proto)
    opcode = T if kind is Text else B
    expected_ops = [(opcode if op == T else op, fin, n) for op, fin, n in expected]
    assert [(f.opcode, f.fin, len(f.payload)) for f in frames] == expected_ops
    assert b"".join(f.payload for f in frames) == payload
    assert len({f.key for f in frames}) == len(frames)


def test_fragment_size_may_split_utf8_sequences() -> None:
    proto = ClientProtocol(fragment_size=1)
    proto.send(Text("é€"))
    frames = sent_frames(proto)
    assert len(frames) == 5
    assert b"".join(f.payload for f in frames).decode() == "é€"


def test_send_fragment_streams_one_message_with_controls_between() -> None:
    proto = ClientProtocol(fragment_size=1)  # does not apply to send_fragment
    proto.send_fragment("ab", fin=False)
    proto.send(Ping(b"p"))
    proto.send_fragment("cd", fin=False)
    proto.send_fragment("", fin=True)
    proto.send_fragment(b"xy", fin=True)
    assert summary(sent_frames(proto)) == [
        (T, False, b"ab"),
        (PING, True, b"p"),
        (C, False, b"cd"),
        (C, True, b""),
        (B, True, b"xy"),
    ]


SEND_FRAGMENT_ERRORS = [
    ("bytes after str", [("ab", False)], b"cd", LocalProtocolError),
    ("str after bytes", [(b"ab", False)], "cd", LocalProtocolError),
    ("int", [], 5, TypeError),
]


@pytest.mark.parametrize(
    ("before", "data", "error"),
    [c[1:] for c in SEND_FRAGMENT_ERRORS],
    ids=[c[0] for c in SEND_FRAGMENT_ERRORS],
)
def test_send_fragment_type_rules(
    before: list[tuple[str | bytes, bool]], data: object, error: type[Exception]
) -> None:
    proto = ClientProtocol()
    for part, fin in before:
        proto.send_fragment(part, fin=fin)
    queued = proto.bytes_to_send
    with pytest.raises(error):
        proto.send_fragment(data, fin=True)  # type: ignore[arg-type]
    assert proto.bytes_to_send == queued


@pytest.mark.parametrize("message", [Text("x"), Binary(b"x")])
def test_whole_message_while_streaming_is_refused(message: Text | Binary) -> None:
    proto = ClientProtocol()
    proto.send_fragment(b"ab", fin=False)
    with pytest.raises(LocalProtocolError):
        proto.send(message)
    proto.send_fragment(b"c", fin=True)
    proto.send(message)
    assert [f.opcode for f in sent_frames(proto)] == [B, C, T if isinstance(message, Text) else B]


def test_unencodable_text_is_refused() -> None:
    proto = ClientProtocol()
    with pytest.raises(LocalProtocolError):
        proto.send(Text("\udc80"))
    with pytest.raises(LocalProtocolError):
        proto.send_fragment("\udc80", fin=True)
    assert proto.data_to_send() == []


def test_sending_a_non_frame_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ClientProtocol().send("hello")  # type: ignore[arg-type]


# ---------------------------------------------------------------- rules 3, 7: replies, closing


def test_ping_is_answered_with_a_pong_in_order() -> None:
    proto = ClientProtocol()
    proto.send(Text("before"))
    events = proto.receive_data(server_frame(PING, b"one") + server_frame(PING, b""))
    assert events == [Ping(b"one"), Ping(b"")]
    assert summary(sent_frames(proto)) == [
        (T, True, b"before"),
        (0xA, True, b"one"),
        (0xA, True, b""),
    ]


@pytest.mark.parametrize(
    ("body", "echo"),
    [
        (close_body(1000, b"bye"), close_body(1000)),
        (close_body(4321), close_body(4321)),
        (b"", b""),
    ],
)
def test_close_is_echoed(body: bytes, echo: bytes) -> None:
    proto = ClientProtocol()
    (close,) = proto.receive_data(server_frame(0x8, body))
    assert proto.close_received == close
    assert proto.close_sent == Close(close.code)
    assert summary(sent_frames(proto)) == [(0x8, True, echo)]


def test_nothing_after_a_close_is_parsed() -> None:
    proto = ClientProtocol()
    garbage = b"\xff\xff\xff\xff"
    data = close_frame(1000) + server_frame(T, b"late") + garbage
    assert proto.receive_data(data) == [Close(1000, "")]
    assert proto.receive_data(server_frame(PING, b"x") + garbage) == []
    assert proto.failure is None
    assert len(proto._recv_buffer) == 0  # private: what follows the Close is not kept
    assert summary(sent_frames(proto)) == [(0x8, True, close_body(1000))]


def test_close_after_ours_is_not_echoed_and_pings_get_no_pong() -> None:
    proto = ClientProtocol()
    proto.send(Close(1001, "leaving"))
    proto.data_to_send()
    events = proto.receive_data(server_frame(PING, b"p") + close_frame(1001))
    assert events == [Ping(b"p"), Close(1001, "")]
    assert proto.data_to_send() == []
    assert proto.close_sent == Close(1001, "leaving")


AFTER_CLOSE = [
    ("text", lambda p: p.send(Text("x"))),
    ("binary", lambda p: p.send(Binary(b"x"))),
    ("ping", lambda p: p.send(Ping())),
    ("pong", lambda p: p.send(Pong())),
    ("second close", lambda p: p.send(Close(1000))),
    ("fragment", lambda p: p.send_fragment(b"x", fin=True)),
]


@pytest.mark.parametrize("action", [c[1] for c in AFTER_CLOSE], ids=[c[0] for c in AFTER_CLOSE])
@pytest.mark.parametrize("how", ["sent", "echoed", "failure"])
def test_nothing_may_be_queued_after_a_close(action: object, how: str) -> None:
    proto = ClientProtocol()
    if how == "sent":
        proto.send(Close(1000))
    elif how == "echoed":
        proto.receive_data(close_frame(1000))
    else:
        proto.receive_data(server_frame(0x3))
        proto.fail()
    assert proto.close_sent is not None
    queued = proto.bytes_to_send
    with pytest.raises(LocalProtocolError):
        action(proto)  # type: ignore[operator]
    assert proto.bytes_to_send == queued


def test_receive_eof_is_recorded() -> None:
    proto = ClientProtocol()
    assert proto.eof_received is False
    proto.receive_eof()
    assert proto.eof_received is True


# ---------------------------------------------------------------- rule 8: limits

LIMITS = [
    # (options, frames as (opcode, payload length, fin), expected code)
    ({"max_frame_size": 10}, [(B, 10, True)], None),
    ({"max_frame_size": 10}, [(B, 11, True)], 1009),
    ({"max_frame_size": 10}, [(T, 5, False), (C, 11, True)], 1009),
    ({"max_frame_size": 0}, [(B, 0, True)], None),
    ({"max_frame_size": 100}, [(PING, 101, True)], 1009),
    ({"max_frame_size": None}, [(B, 70_000, True)], None),
    ({"max_message_size": 10}, [(B, 10, True)], None),
    ({"max_message_size": 10}, [(B, 11, True)], 1009),
    ({"max_message_size": 10}, [(B, 5, False), (C, 5, True)], None),
    ({"max_message_size": 10}, [(B, 5, False), (C, 6, True)], 1009),
    ({"max_message_size": 10}, [(B, 5, False), (PING, 100, True), (C, 5, True)], None),
    ({"max_message_size": 10}, [(B, 10, True), (B, 10, True)], None),
    (
        {"max_message_size": None, "max_frame_size": None},
        [(B, 70_000, False), (C, 70_000, True)],
        None,
    ),
]


@pytest.mark.parametrize(("options", "frames", "code"), LIMITS)
def test_limits(
    options: dict[str, int | None], frames: list[tuple[int, int, bool]], code: int | None
) -> None:
    proto = ClientProtocol(**options)  # type: ignore[arg-type]
    proto.receive_data(b"".join(server_frame(op, b"a" * n, fin=fin) for op, n, fin in frames))
    assert code_of(proto) == code
    if code == 1009:
        assert isinstance(proto.failure, PayloadTooBig)


@pytest.mark.parametrize(
    ("options", "first", "announced"),
    [
        ({}, None, 16 * 2**20 + 1),
        ({"max_frame_size": 1000}, None, 1001),
        ({"max_message_size": 1000}, 600, 401),
        ({"max_message_size": 64 * 2**20, "max_frame_size": None}, None, 64 * 2**20 + 1),
    ],
)
def test_limits_are_checked_from_the_header_before_the_payload(
    options: dict[str, int | None], first: int | None, announced: int
) -> None:
    proto = ClientProtocol(**options)  # type: ignore[arg-type]
    if first is not None:
        proto.receive_data(server_frame(B, b"a" * first, fin=False))
        assert proto.failure is None
    opcode = B if first is None else C
    proto.receive_data(server_frame(opcode, length=announced))  # the header only
    assert isinstance(proto.failure, PayloadTooBig)
    assert proto.failure.code == 1009


def test_default_limits_accept_a_frame_of_exactly_16_mib_from_its_header() -> None:
    proto = ClientProtocol()
    proto.receive_data(server_frame(B, length=16 * 2**20))
    assert proto.failure is None


def test_receive_buffer_holds_at_most_one_frame() -> None:
    limit = 1000
    proto = ClientProtocol(max_frame_size=limit, max_message_size=None)
    stream = b"".join(server_frame(B, bytes([i]) * limit, fin=True) for i in range(20))
    events: list[Frame] = []
    for start in range(0, len(stream), 777):
        events += proto.receive_data(stream[start : start + 777])
        assert len(proto._recv_buffer) <= 4 + limit  # private: the bound under test
    assert [len(e.data) for e in events] == [limit] * 20  # type: ignore[union-attr]


# ---------------------------------------------------------------- rule 9: errors


def test_violation_returns_earlier_frames_and_ignores_the_rest_until_fail() -> None:
    proto = ClientProtocol()
    proto.send(Text("queued first"))
    data = (
        server_frame(T, b"ok")
        + server_frame(PING, b"p")
        + server_frame(0x7)
        + server_frame(T, b"no")
    )
    assert proto.receive_data(data) == [Text("ok"), Ping(b"p")]
    assert isinstance(proto.failure, RemoteProtocolError)
    assert proto.failure.code == 1002
    assert close_of(proto) is None  # the Close waits for fail()
    assert summary(sent_frames(proto)) == [(T, True, b"queued first"), (0xA, True, b"p")]
    assert proto.receive_data(server_frame(T, b"later")) == []
    proto.fail()
    assert proto.close_sent == Close(1002)
    assert summary(sent_frames(proto)) == [(0x8, True, close_body(1002))]
    assert proto.receive_data(server_frame(T, b"later")) == []
    assert proto.data_to_send() == []


# (wire in one chunk, events returned, failure code): a valid message and a violation
# arrive together, as in Autobahn cases 3.2, 4.1.3 and 5.15.
SAME_CHUNK = [
    (
        "rsv bits",
        server_frame(T, b"Hello") + server_frame(T, b"x", rsv=0b010),
        [Text("Hello")],
        1002,
    ),
    ("reserved opcode", server_frame(T, b"Hello") + server_frame(0x5), [Text("Hello")], 1002),
    (
        "continuation first (5.15)",
        server_frame(T, b"frag", fin=False)
        + server_frame(C, b"ment")
        + server_frame(C, b"x", fin=False),
        [Text("fragment")],
        1002,
    ),
    (
        "bad utf-8",
        server_frame(B, b"\x00") + server_frame(PING, b"p") + server_frame(T, b"\xff"),
        [Binary(b"\x00"), Ping(b"p")],
        1007,
    ),
    (
        "too big",
        server_frame(T, b"a") + server_frame(B, b"b" * 11),
        [Text("a")],
        1009,
    ),
]


@pytest.mark.parametrize(
    ("wire", "events", "code"), [c[1:] for c in SAME_CHUNK], ids=[c[0] for c in SAME_CHUNK]
)
def test_data_sent_between_the_failure_and_fail_goes_out_before_the_close(
    wire: bytes, events: list[Frame], code: int
) -> None:
    proto = ClientProtocol(max_message_size=10)
    received = proto.receive_data(wire)
    assert received == events
    assert code_of(proto) == code
    assert close_of(proto) is None
    echoes = [e for e in received if isinstance(e, Text | Binary)]
    for message in echoes:  # the application answers what it got before the violation
        proto.send(message)
    proto.fail()
    assert proto.close_sent == Close(code)
    frames = sent_frames(proto)
    assert [(f.opcode, f.payload) for f in frames if f.opcode != 0xA] == [
        *((T if isinstance(m, Text) else B, payload_bytes(m)) for m in echoes),
        (0x8, close_body(code)),
    ]


def payload_bytes(message: Text | Binary) -> bytes:
    return message.data.encode() if isinstance(message, Text) else message.data


def test_fail_is_idempotent_and_a_no_op_without_failure_or_after_a_close() -> None:
    proto = ClientProtocol()
    proto.fail()  # no failure
    assert proto.close_sent is None
    assert proto.data_to_send() == []
    proto.receive_data(server_frame(0x3))
    proto.fail()
    proto.fail()
    assert summary(sent_frames(proto)) == [(0x8, True, close_body(1002))]
    proto.fail()
    assert proto.data_to_send() == []

    proto = ClientProtocol()
    proto.receive_data(server_frame(0x3))
    proto.send(Close(1001, "app first"))
    proto.fail()  # a Close was queued already: the application's stands
    assert proto.close_sent == Close(1001, "app first")
    assert [f.opcode for f in sent_frames(proto)] == [0x8]


def test_violation_after_our_close_queues_nothing() -> None:
    proto = ClientProtocol()
    proto.send(Close(1000))
    proto.data_to_send()
    proto.receive_data(server_frame(0x2, b"x", rsv=0b100))
    proto.fail()
    assert proto.failure is not None
    assert proto.failure.code == 1002
    assert proto.close_sent == Close(1000)
    assert proto.data_to_send() == []


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_any_bytes_like_input(kind: type) -> None:
    data = server_frame(T, b"hello") + server_frame(B, b"x" * 5000)
    proto = ClientProtocol()
    events = proto.receive_data(kind(data[:3])) + proto.receive_data(kind(data[3:]))
    assert events == [Text("hello"), Binary(b"x" * 5000)]


# ---------------------------------------------------------------- extensions


class Marker:
    """Toy extension: appends its mark to the payload of messages it encodes (first frame gets
    its RSV bit), and on decode checks and strips the mark from frames of marked messages."""

    name = "x-marker"

    def __init__(self, mark: bytes, rsv_mask: int, log: list[str]) -> None:
        self.mark = mark
        self.rsv_mask = rsv_mask
        self.log = log
        self.active = False
        self.max_sizes: list[int | None] = []

    def _bit(self, frame: RawFrame) -> bool:
        return bool((frame.rsv1 << 2 | frame.rsv2 << 1 | frame.rsv3) & self.rsv_mask)

    def decode(self, frame: RawFrame, *, max_size: int | None) -> RawFrame:
        self.log.append(f"decode {self.mark.decode()}")
        self.max_sizes.append(max_size)
        if frame.opcode != Opcode.CONTINUATION:
            self.active = self._bit(frame)
        payload = frame.payload
        if self.active:
            if not payload.endswith(self.mark):
                raise RemoteProtocolError("mark missing")
            payload = payload[: -len(self.mark)]
        keep = ~self.rsv_mask  # clear our own bit, leave the others' for them
        return RawFrame(
            frame.opcode,
            payload,
            frame.fin,
            frame.rsv1 and bool(keep & 4),
            frame.rsv2 and bool(keep & 2),
            frame.rsv3 and bool(keep & 1),
        )

    def encode(self, frame: RawFrame) -> RawFrame:
        self.log.append(f"encode {self.mark.decode()}")
        first = frame.opcode != Opcode.CONTINUATION
        bits = self.rsv_mask if first else 0
        own = (bits & 4) >> 2, (bits & 2) >> 1, bits & 1
        return RawFrame(
            frame.opcode,
            frame.payload + self.mark,
            frame.fin,
            frame.rsv1 or bool(own[0]),
            frame.rsv2 or bool(own[1]),
            frame.rsv3 or bool(own[2]),
        )


def two_markers() -> tuple[list[str], Marker, Marker]:
    log: list[str] = []
    return log, Marker(b"A", 0b100, log), Marker(b"B", 0b010, log)


def test_extensions_encode_in_order_and_set_their_rsv_bits() -> None:
    log, a, b = two_markers()
    proto = ClientProtocol(extensions=[a, b], fragment_size=2)
    proto.send(Text("abc"))
    proto.send(Ping(b"p"))
    frames = sent_frames(proto)
    assert [(f.opcode, f.rsv, f.payload) for f in frames] == [
        (T, 0b110, b"abAB"),
        (C, 0b000, b"cAB"),
        (PING, 0, b"p"),
    ]
    assert log == ["encode A", "encode B"] * 2


def test_extensions_decode_in_reverse_order() -> None:
    log, a, b = two_markers()
    proto = ClientProtocol(extensions=[a, b])
    data = server_frame(T, b"abAB", fin=False, rsv=0b110) + server_frame(C, b"cAB")
    data += server_frame(PING, b"p") + server_frame(B, b"plain")
    assert proto.receive_data(data) == [Text("abc"), Ping(b"p"), Binary(b"plain")]
    assert proto.failure is None
    # The unmarked message bypasses the extensions: they transform nothing without an RSV bit.
    assert log == ["decode B", "decode A"] * 2


EXTENSION_RSV = [
    ("rsv1 on first frame", [(T, 0b100, True)], None),
    ("both bits", [(T, 0b110, True)], None),
    ("rsv3 not negotiated", [(T, 0b001, True)], 1002),
    ("rsv1 on continuation", [(T, 0b100, False), (C, 0b100, True)], 1002),
    ("rsv1 on ping", [(PING, 0b100, True)], 1002),
    ("rsv2 on close", [(0x8, 0b010, True)], 1002),
]


@pytest.mark.parametrize(
    ("frames", "code"), [c[1:] for c in EXTENSION_RSV], ids=[c[0] for c in EXTENSION_RSV]
)
def test_rsv_bits_with_extensions(frames: list[tuple[int, int, bool]], code: int | None) -> None:
    _, a, b = two_markers()
    proto = ClientProtocol(extensions=[a, b])
    marks = {0b100: b"A", 0b010: b"B", 0b110: b"AB"}
    wire = b""
    for opcode, rsv, fin in frames:
        payload = b"x" + marks.get(rsv, b"") if opcode != 0x8 else close_body(1000)
        wire += server_frame(opcode, payload, fin=fin, rsv=rsv)
    proto.receive_data(wire)
    assert code_of(proto) == code


class Inflate:
    """Toy extension: every decoded frame is its payload repeated ``factor`` times."""

    name = "x-inflate"
    rsv_mask = 0b100

    def __init__(self, factor: int, honour_max_size: bool) -> None:
        self.factor = factor
        self.honour = honour_max_size
        self.max_sizes: list[int | None] = []

    def decode(self, frame: RawFrame, *, max_size: int | None) -> RawFrame:
        self.max_sizes.append(max_size)
        payload = frame.payload * self.factor
        if self.honour and max_size is not None and len(payload) > max_size:
            raise PayloadTooBig("inflated past max_size")
        return RawFrame(frame.opcode, payload, frame.fin)

    def encode(self, frame: RawFrame) -> RawFrame:
        return frame


@pytest.mark.parametrize("honour", [True, False])
def test_message_limit_applies_after_decoding_and_is_passed_as_max_size(honour: bool) -> None:
    ext = Inflate(10, honour)
    proto = ClientProtocol(extensions=[ext], max_message_size=250, max_frame_size=1000)
    wire = server_frame(B, b"x" * 10, fin=False, rsv=0b100) + server_frame(C, b"x" * 10, fin=False)
    assert proto.receive_data(wire) == []
    assert code_of(proto) is None
    proto.receive_data(server_frame(C, b"x" * 10))  # 300 decoded bytes > 250
    assert ext.max_sizes == [250, 150, 50]
    assert isinstance(proto.failure, PayloadTooBig)
    assert proto.failure.code == 1009


def test_without_message_limit_extensions_get_no_max_size() -> None:
    ext = Inflate(3, True)
    proto = ClientProtocol(extensions=[ext], max_message_size=None)
    assert proto.receive_data(server_frame(B, b"ab", rsv=0b100)) == [Binary(b"ababab")]
    assert ext.max_sizes == [None]


# ---------------------------------------------------------------- the send queue


def test_small_frames_share_a_chunk_and_large_payloads_stand_alone() -> None:
    proto = ClientProtocol()
    proto.send(Text("a"))
    proto.send(Ping(b"b"))
    proto.send(Binary(b"L" * 100_000))
    proto.send(Text("c"))
    assert proto.bytes_to_send == 7 + 7 + (14 + 100_000) + 7
    chunks = proto.data_to_send()
    # Small frames and the large frame's header share a chunk; the large masked payload
    # is a chunk of its own, never copied behind its header.
    assert [len(c) for c in chunks] == [7 + 7 + 14, 100_000, 7]
    assert all(type(c) in (bytes, bytearray) for c in chunks)
    assert proto.bytes_to_send == 0
    assert proto.data_to_send() == []
    frames = parse_frames(b"".join(chunks))
    assert [f.payload[:1] for f in frames] == [b"a", b"b", b"L", b"c"]


# ---------------------------------------------------------------- options, imports

BAD_OPTIONS = [
    {"max_frame_size": -1},
    {"max_message_size": -5},
    {"max_frame_size": 1.5},
    {"max_message_size": True},
    {"fragment_size": 0},
    {"fragment_size": -1},
    {"fragment_size": "10"},
]


@pytest.mark.parametrize("options", BAD_OPTIONS)
def test_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(OptionsError) as info:
        ClientProtocol(**options)  # type: ignore[arg-type]
    assert info.value.option == next(iter(options))


def test_the_core_does_not_import_trio() -> None:
    # statews/__init__.py imports the trio layer, so the package is stood in for by an empty
    # module with the same path: what is checked is the import graph of the core modules
    # (pyproject.toml's import-linter contract checks the same statically).
    package = Path(statews.core.protocol.__file__).parent
    modules = ", ".join(f"statews.core.{p.stem}" for p in sorted(package.glob("[!_]*.py")))
    code = f"""
import sys, types
package = types.ModuleType("statews")
package.__path__ = [{str(package.parent)!r}]
sys.modules["statews"] = package
import {modules}
assert "trio" not in sys.modules, "trio imported"
assert not [m for m in sys.modules if m.startswith(("statews.trio", "statews.options"))]
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
