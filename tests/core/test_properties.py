"""Property tests of the core: round trips in both directions under any fragmentation, any
chunking and any ``max_messages``, and robustness against arbitrary input (only
RemoteProtocolError with 1002/1007/1009, never another exception; results independent of
chunking, which also decides where frames are cut while they stream in, and of
``max_messages``; a receive buffer that never holds a data frame's payload; a message in
progress that holds about its size)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import close_body, parse_frames, server_frame

from statews.core.events import Binary, Close, Frame, Ping, Pong, Text
from statews.core.protocol import ClientProtocol

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPCODES = {Text: 0x1, Binary: 0x2, Ping: 0x9, Pong: 0xA}

small_messages = st.one_of(st.text(max_size=200).map(Text), st.binary(max_size=200).map(Binary))
messages = st.one_of(
    small_messages,
    # Occasionally long enough for the 16-bit and 64-bit length encodings.
    st.builds(lambda n, b: Binary(bytes([b]) * n), st.integers(126, 70_000), st.integers(0, 255)),
)
controls = st.one_of(st.binary(max_size=125).map(Ping), st.binary(max_size=125).map(Pong))


def payload_of(frame: Text | Binary | Ping | Pong) -> bytes:
    return frame.data.encode() if isinstance(frame, Text) else frame.data


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


@st.composite
def server_streams(draw: st.DrawFn) -> tuple[bytes, list[Frame]]:
    """Frames as a server may send them, and the events the client must report."""
    wire: list[bytes] = []
    events: list[Frame] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 3)) == 0:
            control = draw(controls)
            wire.append(server_frame(OPCODES[type(control)], control.data))
            events.append(control)
            continue
        message = draw(messages)
        payload = payload_of(message)
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            wire.append(server_frame(OPCODES[type(message)] if i == 0 else 0, piece, fin=last))
            if not last and draw(st.integers(0, 3)) == 0:
                control = draw(controls)
                wire.append(server_frame(OPCODES[type(control)], control.data))
                events.append(control)
        events.append(message)
    if draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999]))
        reason = draw(st.text(max_size=20))
        wire.append(server_frame(0x8, close_body(code, reason.encode())))
        events.append(Close(code, reason))
    return b"".join(wire), events


budgets = st.one_of(st.none(), st.integers(1, 3))


def take(proto: ClientProtocol, chunk: bytes, budget: int | None) -> list[Frame]:
    """``receive_data`` with a cap, checking that a call stops only at its cap."""
    events = proto.receive_data(chunk, max_messages=budget)
    count = sum(isinstance(e, Text | Binary) for e in events)
    assert budget is None or count <= budget
    if proto.has_pending_input:
        assert count == budget
    return events


def drain(proto: ClientProtocol, budget: int | None) -> list[Frame]:
    events: list[Frame] = []
    while proto.has_pending_input:
        events += take(proto, b"", budget)
    return events


def footprint(proto: ClientProtocol) -> int:
    """Bytes held by the message being reassembled (private state, by sys.getsizeof)."""
    assembler = proto._assembler
    total = sys.getsizeof(assembler._parts) + sum(map(sys.getsizeof, assembler._parts))
    text = assembler._text
    if text is not None:
        total += sys.getsizeof(text._parts) + sum(map(sys.getsizeof, text._parts))
        total += sys.getsizeof(text._raw) if text._raw is not None else 0
    return total


#: What a message in progress may hold beyond twice its size.
FOOTPRINT_CONSTANT = 2048


def check_footprint(proto: ClientProtocol) -> None:
    held = footprint(proto)
    assert held <= 2 * proto._assembler.size + FOOTPRINT_CONSTANT, held


@SETTINGS
@given(server_streams(), st.lists(st.integers(min_value=0), max_size=12), budgets, st.booleans())
def test_receive_round_trip_in_any_chunking(
    stream: tuple[bytes, list[Frame]], cuts: list[int], budget: int | None, drained: bool
) -> None:
    data, expected = stream
    proto = ClientProtocol()
    events: list[Frame] = []
    for chunk in chunked(data, [c % (len(data) + 1) for c in cuts]):
        # Input given while some waits unparsed (not drained) is parsed after it.
        events += take(proto, chunk, budget)
        if drained:
            events += drain(proto, budget)
        check_footprint(proto)
    events += drain(proto, budget)
    assert events == expected
    assert proto.failure is None
    # Every Ping was answered, in order; a Close was echoed.
    replies = parse_frames(b"".join(proto.data_to_send()))
    pings = [e.data for e in expected if isinstance(e, Ping)]
    assert [f.payload for f in replies if f.opcode == 0xA] == pings
    closes = [e for e in expected if isinstance(e, Close)]
    assert [f.opcode for f in replies if f.opcode == 0x8] == [0x8] * len(closes)


@st.composite
def cut_messages(draw: st.DrawFn) -> tuple[bytes, bytes, Text | Binary]:
    """One message cut into frames of any size, tiny ones often (empty included), some over
    4 KiB; text cut anywhere, inside a character too. The wire up to the last frame, the last
    frame, and the message."""
    unit = draw(st.one_of(st.text(min_size=1, max_size=6).map(str.encode), st.binary(min_size=1)))
    payload = unit * draw(st.integers(0, 12_000 // len(unit)))
    try:
        message: Text | Binary = Text(payload.decode()) if draw(st.booleans()) else Binary(payload)
    except UnicodeDecodeError:
        message = Binary(payload)
    # A pattern of frame sizes, repeated: many tiny frames are easy to come by.
    pattern = draw(st.lists(st.sampled_from([0, 1, 2, 3, 7, 300, 4096, 5000]), max_size=4))
    sizes = pattern * draw(st.integers(0, 300 // max(1, len(pattern))))
    pieces = []
    pos = 0
    for size in sizes:
        pieces.append(payload[pos : pos + size])
        pos += size
    pieces.append(payload[pos:])
    opcode = 0x1 if isinstance(message, Text) else 0x2
    last = len(pieces) - 1
    frames = [server_frame(opcode if i == 0 else 0, p, fin=i == last) for i, p in enumerate(pieces)]
    return b"".join(frames[:-1]), frames[-1], message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut_messages(), st.lists(st.integers(min_value=0), max_size=12))
def test_a_message_in_progress_holds_at_most_twice_its_size(
    case: tuple[bytes, bytes, Text | Binary], cuts: list[int]
) -> None:
    wire, last, message = case
    proto = ClientProtocol()
    events: list[Frame] = []
    for chunk in chunked(wire, [c % (len(wire) + 1) for c in cuts]):
        events += proto.receive_data(chunk)
        check_footprint(proto)  # at the latest just before the last frame: the most held
    events += proto.receive_data(last)
    assert events == [message]


@st.composite
def outgoing(draw: st.DrawFn) -> tuple[list[Text | Binary | Ping | Pong], int | None]:
    """Frames to send and a fragment_size; big messages only with big fragments."""
    fragment_size = draw(st.one_of(st.none(), st.integers(1, 64), st.integers(1000, 70_000)))
    data = messages if fragment_size is None or fragment_size >= 1000 else small_messages
    return draw(st.lists(st.one_of(data, controls), max_size=8)), fragment_size


def unique_urandom() -> Callable[[int], bytes]:
    """A stand-in for os.urandom whose 4-byte words never repeat, so that a reused key shows."""
    counter = itertools.count()

    def urandom(n: int) -> bytes:
        return b"".join(next(counter).to_bytes(4, "big") for _ in range(n // 4))

    return urandom


@SETTINGS
@given(outgoing())
def test_send_round_trip_with_a_new_key_per_frame(
    case: tuple[list[Text | Binary | Ping | Pong], int | None],
) -> None:
    frames, fragment_size = case
    with mock.patch("os.urandom", unique_urandom()):
        proto = ClientProtocol(fragment_size=fragment_size)
        for frame in frames:
            proto.send(frame)
    queued = proto.bytes_to_send
    chunks = proto.data_to_send()
    assert queued == sum(len(c) for c in chunks)
    wire = parse_frames(b"".join(chunks))
    assert all(f.masked and f.rsv == 0 for f in wire)
    assert len({f.key for f in wire}) == len(wire)
    # Reassemble with the test-side decoder.
    got: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    opcode = 0
    for f in wire:
        if f.opcode >= 0x8:
            got.append((f.opcode, f.payload))
            continue
        if f.opcode:
            opcode, parts = f.opcode, []
        parts.append(f.payload)
        if fragment_size is not None:
            assert len(f.payload) <= fragment_size
        if f.fin:
            got.append((opcode, b"".join(parts)))
    assert got == [(OPCODES[type(fr)], payload_of(fr)) for fr in frames]


# ---------------------------------------------------------------- arbitrary input


@st.composite
def frame_like(draw: st.DrawFn) -> bytes:
    """Frames that mostly follow the rules, each field wrong now and then, so that parsing goes
    deep before it finds a violation (if any)."""
    out = b""
    open_message = False
    for _ in range(draw(st.integers(1, 8))):
        mistake = draw(st.integers(0, 9)) == 0
        if mistake:
            opcode = draw(st.sampled_from([0, 1, 2, 3, 0xB, 8, 9]))
        elif open_message:
            opcode = draw(st.sampled_from([0, 0, 0, 9, 10]))
        else:
            opcode = draw(st.sampled_from([1, 1, 2, 2, 9, 10, 8]))
        control = opcode >= 8
        fin = True if control and not mistake else draw(st.sampled_from([True, True, False]))
        if opcode in (0, 1, 2):
            open_message = not fin
        if opcode == 8 and not mistake:
            payload = close_body(draw(st.sampled_from([1000, 1001, 4000])))
        else:
            payload = draw(
                st.one_of(
                    st.text(max_size=30).map(str.encode),
                    st.binary(max_size=40 if mistake or not control else 125),
                    st.sampled_from([b"\xed\xa0", b"\xc0\x80", b"\xf4\x90", b"\xe2\x82", b"\x03"]),
                )
            )
        rsv = draw(st.sampled_from([1, 4])) if mistake and draw(st.booleans()) else 0
        bits = draw(st.sampled_from([16, 64])) if mistake and draw(st.booleans()) else None
        masked = b"abcd" if mistake and draw(st.booleans()) else None
        out += server_frame(opcode, payload, fin=fin, rsv=rsv, width=bits, mask=masked)
    return out + draw(st.binary(max_size=4))


limits = st.one_of(st.none(), st.integers(0, 64))


def run(
    data: bytes,
    cuts: list[int],
    max_frame: int | None,
    max_message: int | None,
    budget: int | None = None,
) -> tuple[list[Frame], int | None]:
    proto = ClientProtocol(max_frame_size=max_frame, max_message_size=max_message)
    events: list[Frame] = []
    for chunk in chunked(data, [c % (len(data) + 1) for c in cuts]):
        events += take(proto, chunk, budget)
        events += drain(proto, budget)
        # Data frames are streamed: at most an incomplete header or control frame waits.
        assert len(proto._recv_buffer) <= 2 + 125
        check_footprint(proto)
    if proto.failure is not None:
        assert proto.failure.code in (1002, 1007, 1009)
        assert not proto.has_pending_input
        assert proto.receive_data(server_frame(0x1, b"ignored")) == []
        queued = parse_frames(b"".join(proto.data_to_send()))
        assert all(f.opcode != 0x8 for f in queued)  # the Close waits for fail()
        proto.fail()
        assert proto.close_sent == Close(proto.failure.code)
        (close,) = parse_frames(b"".join(proto.data_to_send()))
        assert (close.opcode, close.payload) == (0x8, close_body(proto.failure.code))
    return events, None if proto.failure is None else proto.failure.code


@SETTINGS
@given(
    st.one_of(frame_like(), frame_like(), frame_like(), st.binary(max_size=300)),
    st.lists(st.integers(min_value=0), max_size=10),
    limits,
    limits,
    budgets,
)
def test_any_input_gives_frames_or_a_protocol_failure(
    data: bytes,
    cuts: list[int],
    max_frame: int | None,
    max_message: int | None,
    budget: int | None,
) -> None:
    chunked_result = run(data, cuts, max_frame, max_message, budget)
    # The chunking and the cap change nothing: the same frames and verdict as in one piece.
    assert chunked_result == run(data, [], max_frame, max_message)
