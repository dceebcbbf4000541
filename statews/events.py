"""WebSocket frames as the application sees them: small frozen dataclasses.

The same five classes travel both ways. ``ws.send(Text("hi"))`` sends one, and the
protocol core (:mod:`statews.protocol`) turns the bytes it receives into them:
``Text`` and ``Binary`` are whole messages (reassembled from fragments, text already
validated and decoded), ``Ping``/``Pong``/``Close`` are control frames. ``Fragment``
is received only: a piece of a message the application takes in pieces.

Invariants: instances are immutable; ``Text.data`` is ``str``, every other payload is
``bytes``; a ``Close`` built here is not validated (the core checks codes and lengths
when it sends or parses one, so that a peer's bad Close can be represented in errors).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Binary", "Close", "Fragment", "Frame", "Ping", "Pong", "Text"]


@dataclass(frozen=True, slots=True)
class Text:
    """A text message (opcode 0x1); ``data`` is the decoded UTF-8 payload."""

    data: str


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary message (opcode 0x2)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping control frame (opcode 0x9); at most 125 bytes of payload."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong control frame (opcode 0xA); at most 125 bytes of payload."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Close:
    """A close control frame (opcode 0x8).

    ``code`` 1005 stands for a Close frame without a payload (RFC 6455 section 7.1.5);
    it is never written on the wire: sending ``Close(1005)`` sends an empty Close.
    """

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a message received in pieces (never sent): ``data`` is ``str`` (text,
    already validated and decoded) or ``bytes`` (binary); ``fin`` marks the message's last
    piece. The pieces follow the arrival of the bytes, not the peer's frames."""

    data: str | bytes
    fin: bool


#: Any frame the application can send or receive.
Frame = Text | Binary | Ping | Pong | Close
