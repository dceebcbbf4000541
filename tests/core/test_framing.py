"""Rule 1, 3, 5, 7 (wire level): frame layout, lengths, masking direction, opcodes, RSV bits,
control-frame rules and the Close body, in both directions."""

from __future__ import annotations

import pytest
from wire import close_body, close_frame, parse_frames, server_frame

from statews.core.errors import LocalProtocolError, RemoteProtocolError
from statews.core.events import Binary, Close, Ping, Pong, Text
from statews.core.framing import Opcode, client_frame, decode_close, encode_close
from statews.core.protocol import ClientProtocol


def receive(data: bytes, **options: int | None) -> ClientProtocol:
    proto = ClientProtocol(**options)  # type: ignore[arg-type]
    proto.receive_data(data)
    return proto


def failure_code(data: bytes, **options: int | None) -> int | None:
    proto = receive(data, **options)
    return None if proto.failure is None else proto.failure.code


# ---------------------------------------------------------------- parsing every opcode

PARSE_CASES = [
    ("text", server_frame(0x1, b"caf\xc3\xa9"), [Text("café")]),
    ("empty text", server_frame(0x1), [Text("")]),
    ("binary", server_frame(0x2, b"\x00\xff"), [Binary(b"\x00\xff")]),
    ("ping", server_frame(0x9, b"hi"), [Ping(b"hi")]),
    ("pong", server_frame(0xA, b"ho"), [Pong(b"ho")]),
    ("close", close_frame(1001, b"bye"), [Close(1001, "bye")]),
    ("empty close", server_frame(0x8), [Close(1005, "")]),
    (
        "continuation",
        server_frame(0x2, b"ab", fin=False) + server_frame(0x0, b"cd"),
        [Binary(b"abcd")],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_each_opcode(data: bytes, expected: list[object]) -> None:
    proto = ClientProtocol()
    assert proto.receive_data(data) == expected
    assert proto.failure is None


# ---------------------------------------------------------------- lengths

LENGTHS = [(0, 7), (1, 7), (125, 7), (126, 16), (127, 16), (65535, 16), (65536, 64), (70001, 64)]


@pytest.mark.parametrize(("size", "bits"), LENGTHS)
def test_parse_length_encodings(size: int, bits: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = server_frame(0x2, payload)
    assert len(frame) == size + {7: 2, 16: 4, 64: 10}[bits]
    proto = ClientProtocol()
    assert proto.receive_data(frame) == [Binary(payload)]


@pytest.mark.parametrize(("size", "bits"), LENGTHS)
def test_serialize_uses_the_minimal_length_encoding(size: int, bits: int) -> None:
    payload = b"\x5a" * size
    (frame,) = parse_frames(client_frame(0x2, payload, b"\x01\x02\x03\x04"))
    assert frame.width == bits
    assert frame.payload == payload


NON_MINIMAL = [(0, 16), (125, 16), (0, 64), (125, 64), (126, 64), (65535, 64)]


@pytest.mark.parametrize(("size", "bits"), NON_MINIMAL)
def test_non_minimal_length_is_1002(size: int, bits: int) -> None:
    assert failure_code(server_frame(0x2, b"x" * size, width=bits)) == 1002


def test_64_bit_length_with_msb_set_is_1002_from_the_header_alone() -> None:
    header = server_frame(0x2, length=2**63 + 70000, width=64)
    assert len(header) == 10
    assert failure_code(header, max_frame_size=None, max_message_size=None) == 1002


def test_largest_64_bit_length_is_accepted_from_the_header() -> None:
    header = server_frame(0x2, length=2**63 - 1, width=64)
    proto = receive(header, max_frame_size=None, max_message_size=None)
    assert proto.failure is None  # waits for the payload


# ---------------------------------------------------------------- masking direction


@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x8, 0x9, 0xA])
def test_masked_server_frame_is_1002(opcode: int) -> None:
    assert failure_code(server_frame(opcode, b"", mask=b"\x00\x00\x00\x00")) == 1002


SEND_CASES = [
    (Text("héllo"), 0x1, "héllo".encode()),
    (Binary(b"\x00\x01"), 0x2, b"\x00\x01"),
    (Ping(b"p"), 0x9, b"p"),
    (Pong(b"q"), 0xA, b"q"),
    (Close(1000, "done"), 0x8, close_body(1000, b"done")),
    (Close(1005), 0x8, b""),
]


@pytest.mark.parametrize(("frame", "opcode", "payload"), SEND_CASES)
def test_client_frames_are_masked_with_a_fresh_key(
    frame: Text | Binary | Ping | Pong | Close, opcode: int, payload: bytes
) -> None:
    proto = ClientProtocol()
    if not isinstance(frame, Close):
        proto.send(frame)  # a second frame, to compare keys
    proto.send(frame)
    frames = parse_frames(b"".join(proto.data_to_send()))
    for wire in frames:
        assert wire.masked
        assert (wire.fin, wire.rsv, wire.opcode, wire.payload) == (True, 0, opcode, payload)
    assert len({wire.key for wire in frames}) == len(frames)


def test_serialize_sets_fin_and_rsv_bits() -> None:
    for fin in (True, False):
        for rsv in range(8):
            (wire,) = parse_frames(client_frame(0x2, b"ab", b"kkkk", fin=fin, rsv=rsv))
            assert (wire.fin, wire.rsv, wire.key, wire.payload) == (fin, rsv, b"kkkk", b"ab")


# ---------------------------------------------------------------- reserved opcodes, RSV bits

RESERVED = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]


@pytest.mark.parametrize("opcode", RESERVED)
@pytest.mark.parametrize("payload", [b"", b"x", close_body(1000)])
def test_reserved_opcode_is_1002(opcode: int, payload: bytes) -> None:
    assert failure_code(server_frame(opcode, payload)) == 1002


@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x8, 0x9, 0xA])
@pytest.mark.parametrize("rsv", [0b100, 0b010, 0b001])
def test_rsv_bit_without_extension_is_1002(opcode: int, rsv: int) -> None:
    payload = close_body(1000) if opcode == 0x8 else b"x"
    assert failure_code(server_frame(opcode, payload, rsv=rsv)) == 1002


def test_opcode_enum_matches_the_rfc() -> None:
    assert [int(op) for op in Opcode] == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]
    assert [op.is_control for op in Opcode] == [False, False, False, True, True, True]


# ---------------------------------------------------------------- control frames


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_control_payload_over_125_is_1002(opcode: int) -> None:
    payload = close_body(1000, b"x" * 124) if opcode == 0x8 else b"x" * 126
    assert failure_code(server_frame(opcode, payload)) == 1002
    ok = close_body(1000, b"x" * 123) if opcode == 0x8 else b"x" * 125
    assert failure_code(server_frame(opcode, ok)) is None


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_fragmented_control_frame_is_1002(opcode: int) -> None:
    assert failure_code(server_frame(opcode, b"", fin=False)) == 1002


@pytest.mark.parametrize(
    ("control", "event"),
    [
        (server_frame(0x9, b"p"), Ping(b"p")),
        (server_frame(0xA, b"q"), Pong(b"q")),
        (close_frame(1000), Close(1000, "")),
    ],
)
def test_control_frame_between_fragments(control: bytes, event: object) -> None:
    proto = ClientProtocol()
    first = server_frame(0x1, b"ab", fin=False)
    assert proto.receive_data(first + control) == [event]
    rest = proto.receive_data(server_frame(0x0, b"cd"))
    assert rest == ([] if isinstance(event, Close) else [Text("abcd")])
    assert proto.failure is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Ping(b"x" * 126), "control frame payload"),
        (Pong(b"x" * 126), "control frame payload"),
    ],
)
def test_sending_control_payload_over_125_is_refused(frame: Ping | Pong, message: str) -> None:
    proto = ClientProtocol()
    with pytest.raises(LocalProtocolError, match=message):
        proto.send(frame)
    assert proto.data_to_send() == []
    proto.send(type(frame)(b"x" * 125))
    assert len(parse_frames(b"".join(proto.data_to_send()))[0].payload) == 125


# ---------------------------------------------------------------- Close body

DECODE_CLOSE = [
    (b"", Close(1005, ""), None),
    (b"\x03", None, 1002),
    (close_body(1000), Close(1000, ""), None),
    (close_body(1000, "réason".encode()), Close(1000, "réason"), None),
    (close_body(1014), Close(1014, ""), None),
    (close_body(3000), Close(3000, ""), None),
    (close_body(4999, b"x" * 123), Close(4999, "x" * 123), None),
    (close_body(999), None, 1002),
    (close_body(1004), None, 1002),
    (close_body(1005), None, 1002),
    (close_body(1006), None, 1002),
    (close_body(1015), None, 1002),
    (close_body(1016), None, 1002),
    (close_body(2999), None, 1002),
    (close_body(5000), None, 1002),
    (close_body(0), None, 1002),
    (close_body(1000, b"\xff"), None, 1007),
    (close_body(1000, b"ok\xed\xa0\x80"), None, 1007),
    (close_body(1000, b"\xc3"), None, 1007),
]


@pytest.mark.parametrize(("body", "close", "code"), DECODE_CLOSE)
def test_decode_close(body: bytes, close: Close | None, code: int | None) -> None:
    if code is None:
        assert decode_close(body) == close
    else:
        with pytest.raises(RemoteProtocolError) as info:
            decode_close(body)
        assert info.value.code == code


@pytest.mark.parametrize(("body", "close", "code"), DECODE_CLOSE)
def test_received_close_body(body: bytes, close: Close | None, code: int | None) -> None:
    proto = ClientProtocol()
    events = proto.receive_data(server_frame(0x8, body))
    if code is None:
        assert events == [close]
        assert proto.close_received == close
        assert proto.failure is None
    else:
        assert events == []
        assert proto.close_received is None
        assert proto.failure is not None
        assert proto.failure.code == code


ENCODE_CLOSE = [
    (Close(1005), b""),
    (Close(1000), close_body(1000)),
    (Close(1001, "bye"), close_body(1001, b"bye")),
    (Close(4000, "x" * 123), close_body(4000, b"x" * 123)),
    (Close(3000, "é" * 61 + "x"), close_body(3000, "é".encode() * 61 + b"x")),
    (Close(1005, "why"), None),
    (Close(1006), None),
    (Close(1015), None),
    (Close(1004), None),
    (Close(999), None),
    (Close(5000), None),
    (Close(1000, "x" * 124), None),
    (Close(1000, "é" * 62), None),
    (Close(1000, "\udc80"), None),
]


@pytest.mark.parametrize(("close", "body"), ENCODE_CLOSE)
def test_encode_close(close: Close, body: bytes | None) -> None:
    if body is not None:
        assert encode_close(close) == body
    else:
        with pytest.raises(LocalProtocolError):
            encode_close(close)


@pytest.mark.parametrize(("close", "body"), ENCODE_CLOSE)
def test_sending_close(close: Close, body: bytes | None) -> None:
    proto = ClientProtocol()
    if body is None:
        with pytest.raises(LocalProtocolError):
            proto.send(close)
        assert proto.close_sent is None
        assert proto.data_to_send() == []
        return
    proto.send(close)
    assert proto.close_sent == close
    (wire,) = parse_frames(b"".join(proto.data_to_send()))
    assert (wire.opcode, wire.payload) == (0x8, body)
