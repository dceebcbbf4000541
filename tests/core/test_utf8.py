"""Rule 6: UTF-8 is validated incrementally and fails at the first byte that cannot be part of
valid UTF-8, byte by byte, fragment by fragment and within a frame that arrives in pieces,
with code 1007."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import close_frame, server_frame

from statews.core.errors import RemoteProtocolError
from statews.core.events import Text
from statews.core.protocol import ClientProtocol
from statews.core.utf8 import Utf8Decoder, decode_utf8

# RFC 3629 section 4: the allowed range of each byte of a sequence, by lead byte.
_CONT = range(0x80, 0xC0)


def _sequence_ranges(lead: int) -> list[range] | None:
    if lead < 0x80:
        return []
    if 0xC2 <= lead <= 0xDF:
        return [_CONT]
    if lead == 0xE0:
        return [range(0xA0, 0xC0), _CONT]
    if 0xE1 <= lead <= 0xEC or lead in (0xEE, 0xEF):
        return [_CONT, _CONT]
    if lead == 0xED:
        return [range(0x80, 0xA0), _CONT]
    if lead == 0xF0:
        return [range(0x90, 0xC0), _CONT, _CONT]
    if 0xF1 <= lead <= 0xF3:
        return [_CONT, _CONT, _CONT]
    if lead == 0xF4:
        return [range(0x80, 0x90), _CONT, _CONT]
    return None


def first_invalid_index(data: bytes) -> int | None:
    """Model: index of the first byte after which ``data[: i + 1]`` is no prefix of valid UTF-8."""
    i = 0
    while i < len(data):
        ranges = _sequence_ranges(data[i])
        if ranges is None:
            return i
        for j, allowed in enumerate(ranges, start=1):
            if i + j >= len(data):
                return None
            if data[i + j] not in allowed:
                return i + j
        i += 1 + len(ranges)
    return None


def fail_index_byte_by_byte(data: bytes) -> int | None:
    """Feed ``data`` one byte at a time; the index of the byte that raised, if any."""
    validator = Utf8Decoder()
    for i in range(len(data)):
        try:
            validator.feed(data[i : i + 1], final=False)
        except RemoteProtocolError as exc:
            error = exc
            break
    else:
        return None
    assert error.code == 1007
    return i


FAIL_FAST = [
    ("surrogate ED A0", b"\xed\xa0\x80", 1),
    ("surrogate ED BF", b"a\xed\xbf\xbf", 2),
    ("overlong C0 80", b"\xc0\x80", 0),
    ("overlong C1", b"\xc1\xbf", 0),
    ("overlong E0 80", b"\xe0\x80\x80", 1),
    ("overlong E0 9F", b"\xe0\x9f\xbf", 1),
    ("overlong F0 80", b"\xf0\x80\x80\x80", 1),
    ("overlong F0 8F", b"\xf0\x8f\xbf\xbf", 1),
    ("above U+10FFFF F4 90", b"\xf4\x90\x80\x80", 1),
    ("F5 lead", b"\xf5\x80\x80\x80", 0),
    ("FF", b"ok\xff", 2),
    ("lone continuation", b"\x80", 0),
    ("bad third byte", b"\xe1\x80\x41", 2),
    ("bad fourth byte", b"\xf1\x80\x80\x41", 3),
    ("valid 4-byte", "\U0010ffff".encode(), None),
    ("valid surrogate-adjacent", "\ud7ff\ue000".encode(), None),
]


@pytest.mark.parametrize(
    ("data", "index"), [c[1:] for c in FAIL_FAST], ids=[c[0] for c in FAIL_FAST]
)
def test_fails_at_the_first_invalid_byte(data: bytes, index: int | None) -> None:
    assert first_invalid_index(data) == index  # the model agrees with the table
    assert fail_index_byte_by_byte(data) == index


def test_every_two_byte_prefix_against_the_model() -> None:
    for lead in range(256):
        for second in range(256):
            data = bytes((lead, second))
            assert fail_index_byte_by_byte(data) == first_invalid_index(data), data.hex()


@pytest.mark.parametrize("lead", [0xE0, 0xED, 0xF0, 0xF4])
def test_three_byte_prefixes_against_the_model(lead: int) -> None:
    for second in range(0x80, 0xC0):
        for third in (0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF):
            data = bytes((lead, second, third))
            assert fail_index_byte_by_byte(data) == first_invalid_index(data), data.hex()


def test_truncated_tail_fails_only_when_final() -> None:
    validator = Utf8Decoder()
    validator.feed(b"ab\xe2\x82", final=False)
    with pytest.raises(RemoteProtocolError) as info:
        validator.feed(b"", final=True)
    assert info.value.code == 1007


# (pieces, index of the piece that must fail or None): ASCII pieces skip the decoder only
# while no sequence is open.
PIECES = [
    ([b"ab", b"\xe2", b"AB"], 2),
    ([b"ab", b"\xe2", b"", b"A"], 3),
    ([b"\xe2\x82", b"\xac", b"AB", b"\xc3"], None),
    ([b"\xe2\x82", b"\xac", b"AB", b"\xc3", b"x"], 4),
    ([b"AB", b"\xc3\xa9", b"C"], None),
    ([bytearray(b"\xc3"), bytearray(b"\xa9"), bytearray(b"\xff")], 2),
]


@pytest.mark.parametrize(("pieces", "failing"), PIECES)
def test_validator_pieces(pieces: list[bytes], failing: int | None) -> None:
    validator = Utf8Decoder()
    for i, piece in enumerate(pieces):
        if i == failing:
            with pytest.raises(RemoteProtocolError) as info:
                validator.feed(piece, final=False)
            assert info.value.code == 1007
            return
        validator.feed(piece, final=False)
    assert failing is None


def test_decode_utf8_whole_payload() -> None:
    assert decode_utf8("é€𝄞".encode()) == "é€𝄞"
    with pytest.raises(RemoteProtocolError) as info:
        decode_utf8(b"\xed\xa0\x80")
    assert info.value.code == 1007


# ---------------------------------------------------------------- through the protocol

# (fragments of one text message, index of the fragment that must fail or None)
FRAGMENTS = [
    ([b"caf", b"\xc3", b"\xa9!"], None),
    ([b"ok", b"\xed\xa0", b"\x80"], 1),  # known invalid at the end of fragment 1
    ([b"ok\xed", b"\xa0\x80", b"more"], 1),
    ([b"fine", b"\xc0\x80", b"never"], 1),
    ([b"\xf4", b"\x90", b"\x80\x80"], 1),
    ([b"good", b"good", b"\xe2\x82"], 2),  # truncated at the end of the message
    ([b"\xf0\x9d", b"\x84", b"\x9e"], None),
]


@pytest.mark.parametrize(("fragments", "failing"), FRAGMENTS)
def test_text_fragments_fail_in_the_fragment_that_breaks_them(
    fragments: list[bytes], failing: int | None
) -> None:
    proto = ClientProtocol()
    for i, part in enumerate(fragments):
        opcode = 0x1 if i == 0 else 0x0
        proto.receive_data(server_frame(opcode, part, fin=i == len(fragments) - 1))
        if failing is not None and i >= failing:
            assert proto.failure is not None
            assert proto.failure.code == 1007
            return
        assert proto.failure is None
    assert failing is None


def test_text_fed_byte_by_byte_in_one_byte_fragments() -> None:
    text = "añ€𝄞"
    data = text.encode()
    stream = b"".join(
        server_frame(0x1 if i == 0 else 0x0, data[i : i + 1], fin=i == len(data) - 1)
        for i in range(len(data))
    )
    proto = ClientProtocol()
    events = [e for i in range(len(stream)) for e in proto.receive_data(stream[i : i + 1])]
    assert events == [Text(text)]


@pytest.mark.parametrize(
    "payload", [b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82"]
)
def test_invalid_single_frame_text_is_1007(payload: bytes) -> None:
    proto = ClientProtocol()
    assert proto.receive_data(server_frame(0x1, payload)) == []
    assert proto.failure is not None
    assert proto.failure.code == 1007


def test_invalid_close_reason_is_1007() -> None:
    proto = ClientProtocol()
    proto.receive_data(close_frame(1000, b"\xed\xa0\x80"))
    assert proto.failure is not None
    assert proto.failure.code == 1007
    assert proto.close_received is None


# ---------------------------------------------------------------- within a frame, in pieces

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # Autobahn's "κόσμε", 11 bytes
EDITED = b"edited"

# (payloads of the frames of one text message, the cut points in the wire, index of the
# chunk after which the connection must have failed or None, the text when it did not)
CHOPS = [
    # Autobahn 6.4.3: one frame, three chops; the second is the invalid sequence.
    ("6.4.3", [KOSME + b"\xf4\x90\x80\x80" + EDITED], [2 + 11, 2 + 15], 1, None),
    # Autobahn 6.4.4: the invalid byte alone opens the second chop.
    ("6.4.4", [KOSME + b"\xf4\x90\x80\x80" + EDITED], [2 + 12, 2 + 13], 1, None),
    ("header alone first", [b"ok\xc0\x80 more"], [2, 4], 2, None),
    ("valid 2-byte split", [b"caf\xc3\xa9!"], [2 + 4, 2 + 5], None, "café!"),
    ("valid 3-byte split twice", ["x€y".encode()], [2 + 2, 2 + 3], None, "x€y"),
    ("valid 4-byte split", ["𝄞".encode()], [2 + 1, 2 + 3], None, "𝄞"),
    ("surrogate ED | A0", [b"ab\xed\xa0\x80cd"], [2 + 3, 2 + 4], 1, None),
    ("truncated at the end", [b"abc\xe2\x82"], [2 + 4], 1, None),
    (
        "frame boundary inside a sequence",
        [b"a\xe2", b"\x82\xacb"],
        [2 + 1, 2 + 2 + 2 + 1, 2 + 2 + 2 + 2],
        None,
        "a€b",
    ),
    (
        "bad byte in a continuation frame",
        [b"a\xe2", b"\x82(", b"never"],
        [2 + 2 + 2 + 1, 2 + 2 + 2 + 2],
        1,
        None,
    ),
    ("bad byte in a chopped continuation", [b"good", b"still \xff bad"], [6 + 2 + 3], 1, None),
]


@pytest.mark.parametrize(
    ("payloads", "cuts", "failing", "text"), [c[1:] for c in CHOPS], ids=[c[0] for c in CHOPS]
)
def test_text_frames_in_pieces_fail_in_the_piece_that_breaks_them(
    payloads: list[bytes], cuts: list[int], failing: int | None, text: str | None
) -> None:
    wire = b"".join(
        server_frame(0x1 if i == 0 else 0x0, part, fin=i == len(payloads) - 1)
        for i, part in enumerate(payloads)
    )
    points = [0, *cuts, len(wire)]
    chunks = [wire[a:b] for a, b in itertools.pairwise(points)]
    proto = ClientProtocol()
    events = []
    for i, chunk in enumerate(chunks):
        events += proto.receive_data(chunk)
        if failing is not None and i >= failing:
            assert proto.failure is not None
            assert proto.failure.code == 1007
            assert events == []
            return
        assert proto.failure is None
    assert failing is None
    assert text is not None
    assert events == [Text(text)]


def test_autobahn_6_4_3_fails_before_the_frame_is_complete() -> None:
    payload = KOSME + b"\xf4\x90\x80\x80" + EDITED
    wire = server_frame(0x1, payload)
    proto = ClientProtocol()
    assert proto.receive_data(wire[: 2 + 11]) == []
    first = proto.failure
    assert proto.receive_data(wire[2 + 11 : 2 + 15]) == []
    assert first is None
    assert proto.failure is not None
    assert proto.failure.code == 1007
    proto.fail()
    assert proto.close_sent is not None
    assert proto.close_sent.code == 1007


@st.composite
def utf8ish(draw: st.DrawFn) -> bytes:
    """Mostly valid UTF-8 with, now and then, a byte or a sequence that is not."""
    parts = draw(
        st.lists(
            st.one_of(
                st.text(max_size=8).map(str.encode),
                st.sampled_from([b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90", b"\xe2\x82", b"\xff"]),
                st.binary(max_size=3),
            ),
            max_size=6,
        )
    )
    return b"".join(parts)


@settings(max_examples=150, deadline=None)
@given(
    utf8ish(), st.lists(st.integers(min_value=0), max_size=4), st.lists(st.integers(0), max_size=8)
)
def test_text_fails_in_the_chunk_holding_the_first_invalid_byte(
    payload: bytes, frame_cuts: list[int], chunk_cuts: list[int]
) -> None:
    # The message is cut into frames at frame_cuts and the wire into chunks at chunk_cuts.
    points = sorted({c % (len(payload) + 1) for c in frame_cuts} | {0, len(payload)})
    pieces = [payload[a:b] for a, b in itertools.pairwise(points)] or [b""]
    wire = b""
    offsets: list[int] = []  # wire offset of each payload byte
    for i, piece in enumerate(pieces):
        frame = server_frame(0x1 if i == 0 else 0x0, piece, fin=i == len(pieces) - 1)
        start = len(wire) + len(frame) - len(piece)
        offsets += range(start, start + len(piece))
        wire += frame
    bad = first_invalid_index(payload)
    try:
        payload.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    # The byte at which the connection must fail: the first invalid one, or for a truncated
    # tail the end of the message.
    expected = None if valid else offsets[bad] if bad is not None else len(wire) - 1

    edges = sorted({c % (len(wire) + 1) for c in chunk_cuts} | {0, len(wire)})
    proto = ClientProtocol()
    events = []
    for a, b in itertools.pairwise(edges):
        events += proto.receive_data(wire[a:b])
        if expected is not None and a <= expected < b:
            assert proto.failure is not None
            assert proto.failure.code == 1007
            break
        assert proto.failure is None
    if expected is None:
        assert events == [Text(payload.decode())]
    else:
        assert events == []


@st.composite
def long_pieces(draw: st.DrawFn) -> list[bytes]:
    """Long text, mostly valid (wide characters too), maybe broken near its end, cut into
    pieces by a repeated pattern of sizes: many tiny pieces, big ones, empty ones."""
    unit = draw(st.text(min_size=1, max_size=6)).encode()
    payload = unit * draw(st.integers(0, 9000 // len(unit))) + draw(utf8ish())
    pattern = [*draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 4096, 5000]), max_size=3)), 1]
    pieces = []
    pos = 0
    while pos < len(payload):
        for size in pattern:
            pieces.append(payload[pos : pos + size])
            pos += size
    return [*pieces, b""] if draw(st.booleans()) else pieces or [b""]


@settings(max_examples=100, deadline=None)
@given(long_pieces())
def test_decoder_fails_in_the_piece_that_breaks_the_text_or_returns_it(
    pieces: list[bytes],
) -> None:
    payload = b"".join(pieces)
    ends = list(itertools.accumulate(len(p) for p in pieces))
    bad = first_invalid_index(payload)
    try:
        expected: str | None = payload.decode()
        failing = None
    except UnicodeDecodeError:
        expected = None
        # The piece holding the first invalid byte, or the last one for a truncated end.
        failing = len(pieces) - 1 if bad is None else next(i for i, e in enumerate(ends) if e > bad)
    decoder = Utf8Decoder()
    for i, piece in enumerate(pieces):
        final = i == len(pieces) - 1
        if i == failing:
            with pytest.raises(RemoteProtocolError) as info:
                decoder.feed(piece, final=final)
            assert info.value.code == 1007
            return
        decoder.feed(piece, final=final)
    assert decoder.text() == expected
