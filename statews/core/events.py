"""WebSocket frames as the application sees them: small frozen dataclasses.

The same five classes travel both ways. ``ws.send(Text("hi"))`` sends one, and the
protocol core (:mod:`statews.core.protocol`) turns the bytes it receives into them:
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
from typing import Any, Literal, cast

__all__ = [
    "MESSAGE_TYPES",
    "Binary",
    "Close",
    "Fragment",
    "Frame",
    "HackneyFrame",
    "Ping",
    "Pong",
    "Sendable",
    "Text",
    "summary",
    "to_frame",
]


# Frames check their payload's type when built, so that a wrong one fails at the call
# that made it (not later inside send); their __init__ is written out for that, and kept
# as cheap as the generated one (the core builds one per message received).
_set = object.__setattr__


def _payload(frame: str, data: object) -> bytes:
    """``data`` as bytes for a binary payload, or TypeError naming the field."""
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    hint = " (use Text for str)" if isinstance(data, str) else ""
    raise TypeError(
        f"{frame}.data must be bytes, bytearray or memoryview, not {type(data).__name__}{hint}"
    )


@dataclass(frozen=True, slots=True, init=False)
class Text:
    """A text message (opcode 0x1); ``data`` is the decoded UTF-8 payload.

    Raises (when built):
        TypeError: ``data`` is not a ``str``.
    """

    data: str

    def __init__(self, data: str) -> None:
        value: object = data  # typed str, checked for callers without type checking
        if type(value) is not str and not isinstance(value, str):
            hint = " (use Binary for bytes)" if isinstance(value, bytes | bytearray) else ""
            raise TypeError(f"Text.data must be str, not {type(value).__name__}{hint}")
        _set(self, "data", data)


@dataclass(frozen=True, slots=True, init=False)
class Binary:
    """A binary message (opcode 0x2); ``bytearray`` and ``memoryview`` data are copied
    into ``bytes``.

    Raises (when built):
        TypeError: ``data`` is not bytes-like.
    """

    data: bytes

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        _set(self, "data", data if type(data) is bytes else _payload("Binary", data))


@dataclass(frozen=True, slots=True, init=False)
class _ControlPayload:
    """What Ping and Pong share: at most 125 bytes of payload (checked when sent);
    ``bytearray`` and ``memoryview`` data are copied into ``bytes``."""

    data: bytes = b""

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        if type(data) is not bytes:
            data = _payload(type(self).__name__, data)
        _set(self, "data", data)


@dataclass(frozen=True, slots=True, init=False)
class Ping(_ControlPayload):
    """A ping control frame (opcode 0x9); at most 125 bytes of payload.

    Raises (when built):
        TypeError: ``data`` is not bytes-like.
    """


@dataclass(frozen=True, slots=True, init=False)
class Pong(_ControlPayload):
    """A pong control frame (opcode 0xA); at most 125 bytes of payload.

    Raises (when built):
        TypeError: ``data`` is not bytes-like.
    """


@dataclass(frozen=True, slots=True, init=False)
class Close:
    """A close control frame (opcode 0x8).

    ``code`` 1005 stands for a Close frame without a payload (RFC 6455 section 7.1.5);
    it is never written on the wire: sending ``Close(1005)`` sends an empty Close.

    Raises (when built):
        TypeError: ``code`` is not an ``int`` or ``reason`` not a ``str``.
    """

    code: int = 1000
    reason: str = ""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        number: object = code  # typed, and checked for callers without type checking
        text: object = reason
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"Close.code must be int, not {type(number).__name__}")
        if not isinstance(text, str):
            raise TypeError(f"Close.reason must be str, not {type(text).__name__}")
        _set(self, "code", int(code))  # a CloseCode member reads as its number
        _set(self, "reason", reason)


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a message received in pieces (never sent): ``data`` is ``str`` (text,
    already validated and decoded) or ``bytes`` (binary); ``fin`` marks the message's last
    piece. The pieces follow the arrival of the bytes, not the peer's frames."""

    data: str | bytes
    fin: bool


#: Any frame the application can send or receive.
Frame = Text | Binary | Ping | Pong | Close

#: hackney_ws's frame forms: ``("text", d)``, ``("binary", d)``, ``("ping",)``,
#: ``("ping", d)``, ``("pong",)``, ``("pong", d)``, ``("close",)``,
#: ``("close", code, reason)``.
HackneyFrame = (
    tuple[Literal["text"], str | bytes]
    | tuple[Literal["binary", "ping", "pong"], str | bytes | bytearray | memoryview]
    | tuple[Literal["ping", "pong", "close"]]
    | tuple[Literal["close"], int, str | bytes]
)

#: What ``send()`` accepts: a ``str`` is a text message, bytes-like a binary message,
#: else a frame object or one of hackney's tuples.
Sendable = str | bytes | bytearray | memoryview | Frame | HackneyFrame

# isinstance() with a tuple is several times faster than with a union type.
_FRAME_TYPES = (Text, Binary, Ping, Pong, Close)
#: The data messages, as a tuple for isinstance() (faster than the union type).
MESSAGE_TYPES = (Text, Binary)
_BYTES_FRAMES: dict[str, Callable[[bytes], Frame]] = {"binary": Binary, "ping": Ping, "pong": Pong}
_BARE: dict[str, Callable[[], Frame]] = {"ping": Ping, "pong": Pong, "close": Close}


def to_frame(message: Sendable) -> Frame:
    """The frame ``send()`` sends for ``message``: a frame object as it is, a ``str`` as
    :class:`Text`, ``bytes``/``bytearray``/``memoryview`` as :class:`Binary`, or one of
    hackney's tuples (:data:`HackneyFrame`). A bare string is always text: hackney's
    atoms are the 1-tuples ``("ping",)``, ``("pong",)``, ``("close",)``.

    Raises:
        TypeError: not a message or frame in any accepted form.
    """
    if isinstance(message, _FRAME_TYPES):
        return message
    if isinstance(message, str):
        return Text(message)
    if isinstance(message, bytes | bytearray | memoryview):
        return Binary(message)
    if isinstance(message, tuple) and message:
        kind, *rest = cast(tuple[Any, ...], message)  # checked one form at a time below
        if not rest and isinstance(kind, str) and kind in _BARE:
            return _BARE[kind]()
        if kind == "text" and len(rest) == 1:
            data = rest[0]
            return Text(data.decode("utf-8") if isinstance(data, bytes | bytearray) else data)
        if kind in ("binary", "ping", "pong") and len(rest) == 1:
            data = rest[0]
            payload = data.encode("utf-8") if isinstance(data, str) else data
            return _BYTES_FRAMES[kind](payload)
        if kind == "close" and len(rest) == 2:
            code, reason = rest
            return Close(code, reason.decode() if isinstance(reason, bytes) else reason)
    raise TypeError(
        "send() takes str (text), bytes-like (binary), a frame (Text, Binary, Ping, Pong,"
        f" Close) or a hackney tuple such as ('ping',), not {message!r}"
    )


def summary(frame: Frame | Fragment) -> str:
    """One line for the frame log: kind, size, and the close code."""
    if isinstance(frame, Close):
        return f"CLOSE {frame.code} {frame.reason!r}" if frame.reason else f"CLOSE {frame.code}"
    data = frame.data
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if isinstance(frame, Fragment):
        return f"FRAGMENT {size} {'chars' if isinstance(data, str) else 'bytes'} fin={frame.fin}"
    return f"{type(frame).__name__.upper()} {size} bytes"
