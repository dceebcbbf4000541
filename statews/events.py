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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Binary", "Close", "Fragment", "Frame", "Ping", "Pong", "Text", "to_frame"]


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

# isinstance() with a tuple is several times faster than with a union type.
_FRAME_TYPES = (Text, Binary, Ping, Pong, Close)
_BYTES_FRAMES: dict[str, Callable[[bytes], Frame]] = {"binary": Binary, "ping": Ping, "pong": Pong}


def to_frame(frame: Frame | tuple[Any, ...] | str) -> Frame:
    """A frame object for ``frame``, which may also be one of hackney's forms: ``"ping"``,
    ``"pong"``, ``"close"``, ``("text", d)``, ``("binary", d)``, ``("ping", d)``,
    ``("pong", d)``, ``("close", code, reason)``.

    Raises:
        TypeError: not a frame in any accepted form.
    """
    if isinstance(frame, _FRAME_TYPES):
        return frame
    if frame == "ping":
        return Ping()
    if frame == "pong":
        return Pong()
    if frame == "close":
        return Close()
    if isinstance(frame, tuple) and frame:
        kind, *rest = frame
        if kind == "text" and len(rest) == 1:
            data = rest[0]
            return Text(data.decode("utf-8") if isinstance(data, bytes | bytearray) else data)
        if kind in ("binary", "ping", "pong") and len(rest) == 1:
            data = rest[0]
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            return _BYTES_FRAMES[kind](payload)
        if kind == "close" and len(rest) == 2:
            code, reason = rest
            return Close(int(code), reason.decode() if isinstance(reason, bytes) else reason)
    raise TypeError(f"not a WebSocket frame: {frame!r}")
