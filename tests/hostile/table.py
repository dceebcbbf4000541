"""The row types of the hostile tables (:mod:`.cases`, :mod:`.cases_handshake`).

A :class:`Case` is a server script (:mod:`.harness` steps) and the expected outcome:
the exception the application sees (``expect``, with ``code``: the close code of a
:class:`~statews.ConnectionClosed` or :class:`~statews.ProtocolError`, the HTTP status of a
:class:`~statews.HandshakeRejected`), its ``__cause__``, the close code the client put on
the wire as the server read it (``wire``; ``None``: no frame at all, TCP just ended), and
the time bounds. An :class:`Injection` is a set of options that must be refused before
any byte is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import statews
from statews import Frame

from .harness import Script, Seen

__all__ = ["BASE_OPTIONS", "Case", "Injection", "Seen", "expect_pongs", "reason_is"]

#: Options of every case unless a row overrides them: small timeouts keep the suite fast.
BASE_OPTIONS: Mapping[str, Any] = {
    "connect_timeout": 1.0,
    "close_timeout": 0.5,
    "compression": None,
    "ping_interval": None,
}


@dataclass(frozen=True)
class Case:
    """One hostile server behaviour and the outcome the application must see."""

    id: str
    steps: Script
    expect: type[BaseException]
    #: ``.code`` of a ConnectionClosed/ProtocolError, ``.status`` of a HandshakeRejected.
    code: int | None = None
    #: The client's Close code seen by the server; None: no frame at all.
    wire: int | None = None
    #: Expected type of ``__cause__``; None: not checked.
    cause: type[BaseException] | None = None
    #: "handshake": ``connect()`` raises; "open": the upgrade succeeds, then ``action``.
    phase: Literal["handshake", "open"] = "open"
    #: After connecting: "recv" reads until the end; "close" calls ``close()`` first.
    action: Literal["recv", "close"] = "recv"
    #: Seconds the application waits after connecting, before ``action``.
    idle: float = 0.0
    #: Messages ``recv()`` returns before the end; None: not checked (a reset may eat them).
    received: tuple[Frame, ...] | None = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    tls: Literal["trusted", "untrusted", "wrong-host", "plaintext"] | None = None
    #: Upper bound (seconds) for the whole case: connect, failure, close, server done.
    within: float = 3.0
    #: TCP connections the server must see (a redirect makes more); None: not checked.
    connections: int | None = 1
    #: Lower bound on the time to the exception: a timeout really was waited for.
    at_least: float = 0.0
    check: Callable[[BaseException], None] | None = None
    server_check: Callable[[Seen], None] | None = None


@dataclass(frozen=True)
class Injection:
    """Options that would put CR, LF or NUL into the request; ``url`` has ``{port}``."""

    id: str
    url: str = "ws://127.0.0.1:{port}/"
    options: Mapping[str, Any] = field(default_factory=dict)


def reason_is(reason: str) -> Callable[[BaseException], None]:
    """A ``check``: the ConnectionClosed carries ``reason``."""

    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.ConnectionClosed)
        assert exc.reason == reason

    return check


def expect_pongs(n: int) -> Callable[[Seen], None]:
    """A ``server_check``: the client sent exactly ``n`` pongs."""

    def check(seen: Seen) -> None:
        pongs = [f for f in seen.frames if f[0] == 0xA]
        assert len(pongs) == n, seen.frames

    return check
