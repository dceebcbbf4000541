"""The hostile-server table: one misbehaviour per row and what the client must make of it.

:data:`CASES` is every row: the handshake ones (:mod:`.cases_handshake`) and, here, the
ones after a valid upgrade: framing violations, limits, faults of TCP and of the closing
handshake, keepalive against a dead server, permessage-deflate abuse. Each row ends with
``ws.state == "closed"`` within its bound (:mod:`.table` describes a row).
"""

from __future__ import annotations

import zlib
from typing import Any

import trio
from wire import close_frame, server_frame, upgrade_response

import statews
from statews import Binary, Text

from .cases_handshake import HANDSHAKE, INJECTIONS, REDIRECTS, invalid
from .harness import (
    AnswerPings,
    CloseTCP,
    Flood,
    HalfClose,
    ReadRequest,
    Reset,
    Respond,
    Script,
    Seen,
    Send,
    Upgrade,
    Watch,
    bytewise,
    once_then,
)
from .table import BASE_OPTIONS, Case, Injection, expect_pongs, reason_is

__all__ = ["BASE_OPTIONS", "CASES", "INJECTIONS", "Case", "Injection"]

# ------------------------------------------------------------------------ framing


def _violation(id: str, data: bytes, code: int = 1002, *, then: Script = (), **kwargs: Any) -> Case:
    """After a valid upgrade the server sends ``data``; the client must fail with ``code``."""
    cause = statews.PayloadTooBig if code == 1009 else statews.RemoteProtocolError
    return Case(
        id,
        (*Upgrade(), Send(data), Watch(), *then),
        statews.ConnectionClosedError,
        code=code,
        wire=code,
        cause=cause,
        **kwargs,
    )


_TEXT_HI = server_frame(0x1, b"hi")

FRAMING: list[Case] = [
    _violation("masked-frame", server_frame(0x1, b"hi", mask=b"\x12\x34\x56\x78")),
    _violation("rsv1-without-extension", server_frame(0x1, b"hi", rsv=0b100)),
    _violation("rsv2-without-extension", server_frame(0x1, b"hi", rsv=0b010)),
    _violation("rsv3-without-extension", server_frame(0x1, b"hi", rsv=0b001)),
    _violation("rsv1-on-ping", server_frame(0x9, b"", rsv=0b100)),
    *(_violation(f"reserved-opcode-{op:#x}", server_frame(op, b"x")) for op in (3, 4, 5, 6, 7)),
    *(_violation(f"reserved-opcode-{op:#x}", server_frame(op, b"x")) for op in range(0xB, 0x10)),
    _violation("ping-126-bytes", server_frame(0x9, b"p" * 126)),
    _violation("close-126-bytes", server_frame(0x8, b"\x03\xe8" + b"r" * 124)),
    _violation("pong-125-bytes-16bit-length", server_frame(0xA, b"p" * 125, width=16)),
    _violation("fragmented-ping", server_frame(0x9, b"p", fin=False)),
    _violation("continuation-without-start", server_frame(0x0, b"x")),
    _violation("final-continuation-without-start", server_frame(0x0, b"x", fin=True)),
    _violation(
        "text-inside-unfinished-message",
        server_frame(0x1, b"a", fin=False) + server_frame(0x1, b"b"),
    ),
    _violation(
        "binary-inside-unfinished-message",
        server_frame(0x2, b"a", fin=False) + server_frame(0x2, b"b"),
    ),
    _violation("non-minimal-16-bit-length", server_frame(0x2, b"x" * 100, width=16)),
    _violation("non-minimal-64-bit-length", server_frame(0x2, b"x" * 1000, width=64)),
    _violation("64-bit-length-msb-set", server_frame(0x2, b"", length=2**63 + 5, width=64)),
    _violation("length-2^63-1-announced", server_frame(0x2, b"", length=2**63 - 1, width=64), 1009),
    _violation("invalid-utf8-text", server_frame(0x1, b"ok \xff no"), 1007),
    _violation("utf8-encoded-surrogate", server_frame(0x1, b"\xed\xa0\x80"), 1007),
    _violation("utf8-overlong-encoding", server_frame(0x1, b"\xc0\xaf"), 1007),
    _violation("utf8-truncated-at-message-end", server_frame(0x1, b"ok \xe2\x82"), 1007),
    # Fail-fast: the server sends the bad fragment, then waits for the client's Close
    # before it sends the end of the message.
    _violation(
        "invalid-utf8-in-second-fragment",
        server_frame(0x1, b"good", fin=False) + server_frame(0x0, b"bad \xff", fin=False),
        1007,
        then=(Send(server_frame(0x0, b"end")),),
    ),
    _violation(
        "invalid-utf8-split-across-fragments",
        server_frame(0x1, b"euro \xe2\x82", fin=False) + server_frame(0x0, b"(", fin=False),
        1007,
        then=(Send(server_frame(0x0, b"end")),),
    ),
    _violation(
        "invalid-utf8-lead-byte-ends-fragment",
        server_frame(0x1, b"abc \xf8", fin=False),
        1007,
        then=(Send(server_frame(0x0, b"\x88\x80\x80\x80")),),
    ),
    _violation(
        "encoded-surrogate-split-across-fragments",
        server_frame(0x1, b"abc \xed", fin=False) + server_frame(0x0, b"\xa0", fin=False),
        1007,
        then=(Send(server_frame(0x0, b"\x80")),),
    ),
    _violation(
        "utf8-truncated-at-final-fragment",
        server_frame(0x1, b"abc \xe2\x82", fin=False) + server_frame(0x0, b""),
        1007,
    ),
    _violation("invalid-utf8-close-reason", close_frame(1000, b"bye \xff"), 1007),
    *(
        _violation(f"close-code-{code}", close_frame(code))
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)
    ),
    _violation("close-1-byte-payload", server_frame(0x8, b"\x03")),
    Case(
        "bad-frame-in-101-packet",
        (*Upgrade(extra=server_frame(0x3)), Watch()),
        statews.ConnectionClosedError,
        code=1002,
        wire=1002,
        cause=statews.RemoteProtocolError,
    ),
    _violation(
        "violation-after-valid-messages",
        server_frame(0x1, b"one")
        + server_frame(0x2, b"two")
        + server_frame(0x1, b"x", fin=False)
        + server_frame(0x9, b"")
        + server_frame(0x1, b"y"),
        received=(Text("one"), Binary(b"two")),
        server_check=expect_pongs(1),
    ),
]


# ------------------------------------------------------------------------- limits

LIMITS: list[Case] = [
    _violation(
        "frame-just-over-max-frame-size",
        server_frame(0x2, b"x" * 1025),
        1009,
        options={"max_frame_size": 1024},
    ),
    _violation(
        "frame-over-limit-refused-at-header",
        server_frame(0x2, b"", length=16 * 2**20 + 1),
        1009,
    ),
    _violation(
        "message-just-over-max-message-size",
        server_frame(0x2, b"x" * 512, fin=False)
        + server_frame(0x0, b"x" * 512, fin=False)
        + server_frame(0x0, b"x"),
        1009,
        options={"max_message_size": 1024},
    ),
    _violation(
        "message-over-limit-refused-at-header",
        server_frame(0x1, b"x" * 1000, fin=False)
        + server_frame(0x0, b"", length=10_000, fin=False),
        1009,
        options={"max_message_size": 4096},
    ),
    Case(
        "endless-continuation-frames",
        (
            *Upgrade(),
            Flood(
                once_then(
                    server_frame(0x2, b"x" * 1000, fin=False),
                    server_frame(0x0, b"y" * 1000, fin=False),
                )
            ),
        ),
        statews.ConnectionClosedError,
        code=1009,
        wire=1009,
        cause=statews.PayloadTooBig,
        options={"max_message_size": 64 * 1024},
    ),
    Case(
        "message-at-the-limits-is-fine",
        (
            *Upgrade(),
            Send(
                server_frame(0x2, b"x" * 1024, fin=False)
                + server_frame(0x0, b"y" * 1024)
                + close_frame(1000)
            ),
            Watch(),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        received=(Binary(b"x" * 1024 + b"y" * 1024),),
        options={"max_frame_size": 1024, "max_message_size": 2048},
    ),
]

# ------------------------------------------------------------------------- faults

_MESSAGES = (
    server_frame(0x1, b"first") + server_frame(0x2, b"sec", fin=False) + server_frame(0x0, b"ond")
)
_RECEIVED = (Text("first"), Binary(b"second"))


def _closed_error(id: str, steps: Script, **kwargs: Any) -> Case:
    """TCP ends without a closing handshake: 1006, and no frame from the client."""
    return Case(id, steps, statews.ConnectionClosedError, code=1006, wire=None, **kwargs)


FAULTS: list[Case] = [
    _closed_error("reset-after-upgrade", (*Upgrade(), Reset())),
    _closed_error(
        "reset-mid-frame",
        (*Upgrade(), Send(server_frame(0x1, b"x" * 100)[:50]), Reset()),
        received=None,
        cause=trio.BrokenResourceError,
    ),
    _closed_error("fin-after-upgrade", (*Upgrade(), CloseTCP())),
    _closed_error(
        "fin-mid-frame",
        (*Upgrade(), Send(_MESSAGES + server_frame(0x1, b"x" * 100)[:50]), CloseTCP()),
        received=_RECEIVED,
    ),
    _closed_error(
        "fin-mid-fragmented-message",
        (*Upgrade(), Send(_MESSAGES + server_frame(0x1, b"half", fin=False)), CloseTCP()),
        received=_RECEIVED,
    ),
    _closed_error("half-close-after-upgrade", (*Upgrade(), HalfClose(), Watch())),
    _closed_error(
        "half-close-mid-frame",
        (*Upgrade(), Send(_MESSAGES + server_frame(0x2, b"z" * 300)[:100]), HalfClose(), Watch()),
        received=_RECEIVED,
    ),
    Case(
        "never-answers-our-close",
        (*Upgrade(), Watch(), Watch()),
        statews.ConnectionClosedError,
        code=1000,
        wire=1000,
        cause=TimeoutError,
        action="close",
        at_least=0.45,
        within=2.0,
    ),
    Case(
        "reset-during-closing-handshake",
        (*Upgrade(), Watch(), Reset()),
        statews.ConnectionClosedError,
        code=1000,
        wire=1000,
        action="close",
    ),
    Case(
        "fin-during-closing-handshake",
        (*Upgrade(), Watch(), CloseTCP()),
        statews.ConnectionClosedError,
        code=1000,
        wire=1000,
        action="close",
    ),
    Case(
        "close-then-never-ends-tcp",
        (*Upgrade(), Send(close_frame(1000)), Watch(), Watch()),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        at_least=0.45,
        within=2.0,
    ),
    Case(
        "close-then-half-close",
        (*Upgrade(), Send(close_frame(1001, b"bye")), HalfClose(), Watch()),
        statews.ConnectionClosedOK,
        code=1001,
        wire=1001,
        check=reason_is("bye"),
    ),
    Case(
        "close-with-empty-body",
        (*Upgrade(), Send(close_frame(None)), Watch()),
        statews.ConnectionClosedOK,
        code=1005,
        wire=1005,
    ),
    Case(
        "data-after-close-ignored",
        (
            *Upgrade(),
            Send(_MESSAGES + close_frame(1000) + server_frame(0x1, b"late") + b"\xff" * 64),
            Watch(),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        received=_RECEIVED,
    ),
    Case(
        "messages-dribbled-byte-by-byte",
        (
            ReadRequest(),
            Flood(
                bytewise(
                    upgrade_response()
                    + _MESSAGES
                    + server_frame(0x9, b"ping")
                    + server_frame(0x1, "é€😀".encode(), fin=False)
                    + server_frame(0x0, b"!")
                    + close_frame(1000)
                )
            ),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        received=(*_RECEIVED, Text("é€😀!")),
        server_check=expect_pongs(1),
    ),
    Case(
        "ping-storm-between-fragments",
        (
            *Upgrade(),
            Send(
                server_frame(0x1, b"a", fin=False)
                + server_frame(0x9, b"1") * 50
                + server_frame(0x0, b"b", fin=False)
                + server_frame(0xA, b"unsolicited") * 50
                + server_frame(0x0, b"c")
                + close_frame(1000)
            ),
            Watch(),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        received=(Text("abc"),),
        server_check=expect_pongs(50),
    ),
]


def _keepalive(id: str, steps: Script, **kwargs: Any) -> Case:
    """Keepalive pings every 0.2 s, 0.3 s for each pong: a dead server fails with 1011."""
    return Case(
        id,
        steps,
        statews.ConnectionClosedError,
        code=1011,
        wire=1011,
        cause=TimeoutError,
        options={"ping_interval": 0.2, "ping_timeout": 0.3},
        received=None,
        at_least=0.45,
        within=2.5,
        server_check=_pinged,
        **kwargs,
    )


def _pinged(seen: Seen) -> None:
    assert any(f[0] == 0x9 for f in seen.frames), "no keepalive ping was sent"


KEEPALIVE: list[Case] = [
    _keepalive("never-answers-pings", (*Upgrade(), Watch())),
    _keepalive(
        "answers-pings-with-wrong-payload", (*Upgrade(), AnswerPings(lambda p: b"not " + p))
    ),
    _keepalive(
        "slow-frame-and-no-pongs",
        (*Upgrade(), Flood(bytewise(server_frame(0x2, b"s" * 10_000)), every=0.05)),
    ),
    Case(
        "answers-pings-stays-open",
        (
            *Upgrade(),
            Send(server_frame(0x1, b"hello")),
            AnswerPings(lambda p: p),
            Send(close_frame(1000)),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        action="close",
        idle=0.3,
        options={"ping_interval": 0.05, "ping_timeout": 0.3},
        received=(Text("hello"),),
        server_check=_pinged,
    ),
]


# ---------------------------------------------------------------- permessage-deflate


def deflated(data: bytes) -> bytes:
    """``data`` as a permessage-deflate payload (RFC 7692 7.2.1: sync flush, tail removed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


_DEFLATE = {"compression": "deflate"}
_ACCEPT_DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"


def _deflate_violation(id: str, data: bytes, code: int = 1002, **kwargs: Any) -> Case:
    """permessage-deflate is agreed, then the server sends ``data``."""
    cause = statews.PayloadTooBig if code == 1009 else statews.RemoteProtocolError
    options = {**_DEFLATE, **kwargs.pop("options", {})}
    return Case(
        id,
        (ReadRequest(), Respond(upgrade_response(extra=_ACCEPT_DEFLATE)), Send(data), Watch()),
        statews.ConnectionClosedError,
        code=code,
        wire=code,
        cause=cause,
        options=options,
        **kwargs,
    )


def _deflate_refused(id: str, extensions: bytes) -> Case:
    return invalid(
        id,
        upgrade_response(extra=b"Sec-WebSocket-Extensions: " + extensions + b"\r\n"),
        options=_DEFLATE,
    )


_BOMB = deflated(b"\0" * (10 * 2**20))  # 10 MiB of zeros in about 10 KB

DEFLATE: list[Case] = [
    _deflate_refused("deflate-unknown-parameter", b"permessage-deflate; x_unknown=1"),
    _deflate_refused("deflate-accepted-twice", b"permessage-deflate, permessage-deflate"),
    _deflate_refused("deflate-window-bits-16", b"permessage-deflate; server_max_window_bits=16"),
    _deflate_refused("deflate-window-bits-7", b"permessage-deflate; server_max_window_bits=7"),
    _deflate_refused(
        "deflate-flag-with-value", b"permessage-deflate; server_no_context_takeover=1"
    ),
    _deflate_refused(
        "deflate-duplicate-parameter",
        b"permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
    ),
    _deflate_violation(
        "deflate-bomb-one-frame",
        server_frame(0x2, _BOMB, rsv=0b100),
        1009,
        options={"max_message_size": 2**20},
    ),
    _deflate_violation(
        "deflate-bomb-in-fragments",
        server_frame(0x2, _BOMB[:5000], rsv=0b100, fin=False) + server_frame(0x0, _BOMB[5000:]),
        1009,
        options={"max_message_size": 2**20},
    ),
    _deflate_violation(
        "deflate-rsv1-on-continuation",
        server_frame(0x1, deflated(b"a"), rsv=0b100, fin=False)
        + server_frame(0x0, deflated(b"b"), rsv=0b100),
    ),
    _deflate_violation("deflate-rsv1-on-ping", server_frame(0x9, b"", rsv=0b100)),
    _deflate_violation("deflate-rsv2-still-reserved", server_frame(0x1, b"hi", rsv=0b010)),
    _deflate_violation(
        "deflate-garbage-data", server_frame(0x2, b"\xff\xfe\xfd\xfc", rsv=0b100), 1007
    ),
    _deflate_violation(
        "deflate-data-after-final-block",
        server_frame(0x2, zlib.compress(b"x")[2:-4] + b"trailing junk", rsv=0b100),
        1007,
    ),
    _deflate_violation(
        "deflate-inflates-to-invalid-utf8", server_frame(0x1, deflated(b"ok \xff"), rsv=0b100), 1007
    ),
    Case(
        "deflate-valid-messages",
        (
            ReadRequest(),
            Respond(upgrade_response(extra=_ACCEPT_DEFLATE)),
            Send(
                server_frame(0x1, deflated("héllo".encode()), rsv=0b100)
                + server_frame(0x2, b"plain")
                + server_frame(0x2, deflated(b"frag")[:3], rsv=0b100, fin=False)
                + server_frame(0x0, deflated(b"frag")[3:])
                + close_frame(1000)
            ),
            Watch(),
        ),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        received=(Text("héllo"), Binary(b"plain"), Binary(b"frag")),
        options=_DEFLATE,
    ),
]


CASES: list[Case] = [*HANDSHAKE, *REDIRECTS, *FRAMING, *LIMITS, *FAULTS, *KEEPALIVE, *DEFLATE]
