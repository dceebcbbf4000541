"""Messages received in pieces: ``stream_next`` makes the next message come as Fragment events.

A streamed message is never held whole: each piece that arrived becomes one Fragment (text
decoded as it comes, a character split between pieces carried to the next), limits and
validation work as for whole messages, and parsing stops after the last piece.
"""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire import server_frame

from statews.core.deflate import DeflateAgreement, PerMessageDeflate
from statews.core.errors import CloseCode
from statews.core.events import Binary, Fragment, Ping, Text
from statews.core.protocol import ClientProtocol, Received

T, B, C, PING = 0x1, 0x2, 0x0, 0x9


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def feed_all(
    proto: ClientProtocol, chunks: list[bytes], budget: int | None = None
) -> list[Received]:
    """Feed ``chunks`` with ``budget``, draining what a budget left unparsed before each."""
    events: list[Received] = []
    for chunk in chunks:
        events += proto.receive_data(chunk, max_messages=budget)
        while proto.has_pending_input:
            events += proto.receive_data(b"", max_messages=budget)
    return events


def join(events: list[Received]) -> str | bytes:
    pieces = [e.data for e in events if isinstance(e, Fragment)]
    assert pieces
    return "".join(pieces) if isinstance(pieces[0], str) else b"".join(pieces)  # type: ignore[arg-type]


def test_default_is_whole_messages() -> None:
    proto = ClientProtocol()
    events = proto.receive_data(server_frame(B, b"ab", fin=False) + server_frame(C, b"cd"))
    assert events == [Binary(b"abcd")]


def test_one_frame_message_is_one_final_fragment() -> None:
    proto = ClientProtocol()
    proto.stream_next = True
    assert proto.receive_data(server_frame(B, b"abc")) == [Fragment(b"abc", True)]
    assert not proto.stream_next
    # stream_next is consumed: the next message is whole again.
    assert proto.receive_data(server_frame(T, b"hi")) == [Text("hi")]


@pytest.mark.parametrize(("opcode", "empty"), [(B, b""), (T, "")])
def test_empty_message_gives_an_empty_final_fragment(opcode: int, empty: str | bytes) -> None:
    proto = ClientProtocol()
    proto.stream_next = True
    events = proto.receive_data(server_frame(opcode, b"", fin=False) + server_frame(C, b""))
    assert events == [Fragment(empty, True)]


def test_pieces_follow_arrival_and_the_message_is_never_whole() -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB in one frame, read 10 KiB at a time
    proto = ClientProtocol()
    proto.stream_next = True
    events = feed_all(proto, cut(server_frame(B, payload), 10_000))
    assert all(isinstance(e, Fragment) for e in events)
    assert max(len(e.data) for e in events if isinstance(e, Fragment)) <= 10_000
    assert [e.fin for e in events if isinstance(e, Fragment)][-1] is True
    assert join(events) == payload
    assert not proto.receiving_message
    assert not proto.streaming_message


def test_control_frames_between_pieces_keep_their_place() -> None:
    wire = server_frame(B, b"ab", fin=False) + server_frame(PING, b"p") + server_frame(C, b"cd")
    proto = ClientProtocol()
    proto.stream_next = True
    assert proto.receive_data(wire) == [
        Fragment(b"ab", False),
        Ping(b"p"),
        Fragment(b"cd", True),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_text_split_inside_characters(size: int) -> None:
    text = "aé€𝄞" * 50
    raw = text.encode()
    frames = b"".join(
        server_frame(T if i == 0 else C, piece, fin=i + 13 >= len(raw))
        for i, piece in enumerate(cut(raw, 13))
    )
    proto = ClientProtocol()
    proto.stream_next = True
    events = feed_all(proto, cut(frames, size))
    assert all(isinstance(e, Fragment) and isinstance(e.data, str) for e in events)
    assert join(events) == text
    assert proto.failure is None


@given(st.text(), st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_text_pieces_join_to_the_message(text: str, cuts: list[int]) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    valid = all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)
    pieces, pos = [], 0
    for n in cuts:
        pieces.append(raw[pos : pos + n])
        pos += n
    pieces.append(raw[pos:])
    wire = b"".join(
        server_frame(T if i == 0 else C, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)
    )
    proto = ClientProtocol()
    proto.stream_next = True
    events = proto.receive_data(wire)
    if valid:
        assert join(events) == text
    else:
        assert proto.failure is not None
        assert proto.failure.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_invalid_utf8_fails_fast_inside_a_frame() -> None:
    good = "é".encode() * 1000
    wire = server_frame(T, good + b"\xff" + b"x" * 5000)
    proto = ClientProtocol()
    proto.stream_next = True
    events = proto.receive_data(wire[: 4 + len(good)])  # header (16-bit length) + good part
    assert join(events) == "é" * 1000
    assert proto.receive_data(b"\xff") == []
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_encoded_surrogate_fails_at_once() -> None:
    proto = ClientProtocol()
    proto.stream_next = True
    proto.receive_data(server_frame(T, b"ok\xed\xa0", fin=False))
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_truncated_character_at_the_end_fails() -> None:
    proto = ClientProtocol()
    proto.stream_next = True
    events = proto.receive_data(server_frame(T, b"ab\xc3", fin=False) + server_frame(C, b""))
    assert events == [Fragment("ab", False)]
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_max_message_size_counts_all_pieces() -> None:
    proto = ClientProtocol(max_message_size=10)
    proto.stream_next = True
    wire = server_frame(B, b"x" * 6, fin=False) + server_frame(C, b"y" * 5)
    assert proto.receive_data(wire) == [Fragment(b"x" * 6, False)]
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.MESSAGE_TOO_BIG


def test_max_frame_size_is_checked_from_the_header() -> None:
    proto = ClientProtocol(max_frame_size=100)
    proto.stream_next = True
    assert proto.receive_data(server_frame(B, b"x" * 101)[:4]) == []
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.MESSAGE_TOO_BIG


def test_parsing_stops_after_the_streamed_message() -> None:
    wire = server_frame(B, b"ab", fin=False) + server_frame(C, b"cd") + server_frame(B, b"next")
    proto = ClientProtocol()
    proto.stream_next = True
    assert proto.receive_data(wire) == [Fragment(b"ab", False), Fragment(b"cd", True)]
    assert proto.has_pending_input
    proto.stream_next = True  # the driver's choice for the next message
    assert proto.receive_data(b"") == [Fragment(b"next", True)]
    assert not proto.has_pending_input


def test_parsing_stops_after_a_streamed_frame_that_arrived_in_pieces() -> None:
    first = server_frame(B, b"z" * 1000)
    proto = ClientProtocol()
    proto.stream_next = True
    assert proto.receive_data(first[:500]) == [Fragment(first[4:500], False)]
    events = proto.receive_data(first[500:] + server_frame(T, b"whole"))
    assert events == [Fragment(first[500:], True)]
    assert proto.has_pending_input
    assert proto.receive_data(b"") == [Text("whole")]


@pytest.mark.parametrize("budget", [1, 2, 5])
def test_budget_counts_fragments(budget: int) -> None:
    pieces = [bytes([i]) * 10 for i in range(12)]
    wire = b"".join(
        server_frame(B if i == 0 else C, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)
    )
    proto = ClientProtocol()
    proto.stream_next = True
    first = proto.receive_data(wire, max_messages=budget)
    assert len(first) == budget
    assert proto.has_pending_input
    events = first + feed_all(proto, [b""], budget)
    assert [e.data for e in events if isinstance(e, Fragment)] == pieces


def test_stream_next_set_mid_message_streams_its_rest() -> None:
    proto = ClientProtocol()
    assert proto.receive_data(server_frame(B, b"ab", fin=False)) == []
    assert proto.receiving_message
    assert not proto.streaming_message
    proto.stream_next = True
    events = proto.receive_data(server_frame(C, b"cd", fin=False))
    assert events == [Fragment(b"ab", False), Fragment(b"cd", False)]
    assert proto.streaming_message
    assert proto.receive_data(server_frame(C, b"ef") + server_frame(B, b"gh")) == [
        Fragment(b"ef", True)
    ]
    assert proto.receive_data(b"") == [Binary(b"gh")]


@pytest.mark.parametrize("parts", [1, 20, 40])  # kept as text, or partly as bytes (utf8.py)
def test_text_switched_mid_character(parts: int) -> None:
    clef = "𝄞".encode()
    pieces = ["€".encode()] * parts + [clef[:2]]  # ends with half of the clef
    frames = [server_frame(T if i == 0 else C, p, fin=False) for i, p in enumerate(pieces)]
    proto = ClientProtocol()
    assert feed_all(proto, frames) == []
    proto.stream_next = True
    events = proto.receive_data(server_frame(C, clef[2:]))
    assert events == [Fragment("€" * parts, False), Fragment("𝄞", True)]


def test_deflate_messages_are_decoded_per_frame() -> None:
    message = random.Random(7).randbytes(50_000) * 2
    deflater = zlib.compressobj(wbits=-15)
    data = deflater.compress(message) + deflater.flush(zlib.Z_SYNC_FLUSH)
    body = data[:-4]
    parts = cut(body, 1000)
    wire = b"".join(
        server_frame(B if i == 0 else C, p, fin=i == len(parts) - 1, rsv=0b100 if i == 0 else 0)
        for i, p in enumerate(parts)
    )
    proto = ClientProtocol(extensions=[PerMessageDeflate(DeflateAgreement())])
    proto.stream_next = True
    events = proto.receive_data(wire)
    assert len(events) > 1
    assert join(events) == message


def test_deflate_bomb_stops_at_max_message_size() -> None:
    message = b"\0" * 2_000_000
    deflater = zlib.compressobj(wbits=-15)
    body = (deflater.compress(message) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    proto = ClientProtocol(
        max_message_size=100_000, extensions=[PerMessageDeflate(DeflateAgreement())]
    )
    proto.stream_next = True
    proto.receive_data(server_frame(B, body, rsv=0b100))
    assert proto.failure is not None
    assert proto.failure.code == CloseCode.MESSAGE_TOO_BIG
