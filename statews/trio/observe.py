"""What the declared machine does not see: frames in and out, pongs, and the statistics.

Listeners given to ``start_link(..., listeners=[...])`` may also have these methods,
looked up once when the connection is made (errors contained as for lifecycle
listeners, :mod:`statews.lifecycle.listeners`):

================================ ======================================================
``on_frame_received(ws, frame)`` each message (Text/Binary, decompressed), Fragment of a
                                 streamed message, or control frame the peer sent
``on_frame_sent(ws, frame)``     each message or control frame the application sent
``on_pong(ws, rtt)``             a pong answered a ping of ours after ``rtt`` seconds
``on_attach(ws)``                once, when the connection is made (``start_link``)
================================ ======================================================

:class:`Stats` is what ``ws.stats`` returns: a snapshot of the connection's counters,
taken by its :class:`Meter` from the parts that count (the core: frames and wire bytes;
the inbox: messages in; the keepalive: pings; the reader: time paused) and from what
the meter counts itself (messages out, time per lifecycle state).

Invariants: with no listener defining them, a frame costs one ``is None`` test per
batch read and one per send; hooks run synchronously, in order, and a failing hook is
logged and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..core.events import Fragment, Frame
from ..core.protocol import ClientProtocol
from ..lifecycle.listeners import contained_method
from ..lifecycle.machine import STATES, StateName

if TYPE_CHECKING:
    from .connection import WebSocket
    from .inbox import Inbox
    from .keepalive import Keepalive
    from .reader import Reader

__all__ = ["FrameHook", "Hooks", "Meter", "Stats"]

FrameHook = Callable[["WebSocket", Frame | Fragment], object]


class Hooks:
    """The frame hooks of one connection's listeners (None where no listener has one)."""

    __slots__ = ("attach", "frame_received", "frame_sent", "pong")

    def __init__(self, listeners: Sequence[object]) -> None:
        self.attach = _collect(listeners, "on_attach")
        self.frame_received = _collect(listeners, "on_frame_received")
        self.frame_sent = _collect(listeners, "on_frame_sent")
        self.pong = _collect(listeners, "on_pong")

    @property
    def any(self) -> bool:
        return bool(self.frame_received or self.frame_sent or self.pong)

    def received(self, ws: WebSocket, frame: Frame | Fragment) -> None:
        for hook in self.frame_received or ():
            hook(ws, frame)

    def sent(self, ws: WebSocket, frame: Frame) -> None:
        for hook in self.frame_sent or ():
            hook(ws, frame)

    def ponged(self, ws: WebSocket, rtt: float) -> None:
        for hook in self.pong or ():
            hook(ws, rtt)


def _collect(listeners: Sequence[object], name: str) -> tuple[Callable[..., Any], ...] | None:
    found = tuple(
        contained_method(getattr(listener, name), listener)
        for listener in listeners
        if callable(getattr(listener, name, None))
    )
    return found or None


@dataclass(frozen=True, slots=True)
class Stats:
    """A connection's counters at one moment (``ws.stats``).

    ``bytes_*`` are wire bytes (frame headers included, compressed when permessage-deflate
    is on); ``payload_bytes_*`` the messages' payloads as the application sees them
    (decompressed, UTF-8 for text). Round-trip times are in seconds (None before the
    first pong). ``reader_paused`` is the time the reader waited for the application
    (a full inbox), ``state_seconds`` the time spent in each lifecycle state so far.
    """

    messages_in: int
    messages_out: int
    payload_bytes_in: int
    payload_bytes_out: int
    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    pings_sent: int
    pongs_received: int
    last_rtt: float | None
    mean_rtt: float | None
    inbox_depth: int
    reader_paused: float
    state_seconds: Mapping[StateName, float]

    def summary(self) -> str:
        """One line for a log or ``statews connect -v``."""
        rtt = "" if self.mean_rtt is None else f", rtt {self.mean_rtt * 1000:.2f} ms mean"
        return (
            f"{self.messages_in} messages in ({self.payload_bytes_in} bytes, {self.bytes_in}"
            f" on the wire), {self.messages_out} out ({self.payload_bytes_out} bytes,"
            f" {self.bytes_out} on the wire), {self.frames_in}/{self.frames_out} frames,"
            f" {self.pongs_received}/{self.pings_sent} pings answered{rtt}, reader paused"
            f" {self.reader_paused:.3f} s"
        )


class Meter:
    """The counters a connection keeps itself, and the snapshot of all of them.

    Each lifecycle state is entered at most once (the machine has no cycle), so one
    entry time per state gives the time spent in each.
    """

    __slots__ = ("entered_at", "messages_out", "payload_out")

    def __init__(self) -> None:
        self.entered_at: dict[StateName, float] = {"idle": trio.current_time()}
        self.messages_out = 0
        self.payload_out = 0

    def entered(self, state: StateName) -> None:
        self.entered_at[state] = trio.current_time()

    def snapshot(
        self,
        inbox: Inbox,
        proto: ClientProtocol | None,
        keepalive: Keepalive | None,
        reader: Reader | None,
    ) -> Stats:
        """The counters now (``proto``, ``keepalive`` and ``reader`` exist once upgraded)."""
        now = trio.current_time()
        entered = self.entered_at
        order = [s for s in STATES if s in entered]
        state_seconds = {
            state: (entered[order[i + 1]] if i + 1 < len(order) else now) - entered[state]
            for i, state in enumerate(order)
        }
        return Stats(
            messages_in=inbox.messages_in,
            messages_out=self.messages_out,
            payload_bytes_in=inbox.payload_in,
            payload_bytes_out=self.payload_out,
            bytes_in=proto.bytes_received if proto is not None else 0,
            bytes_out=proto.bytes_sent if proto is not None else 0,
            frames_in=proto.frames_received if proto is not None else 0,
            frames_out=proto.frames_sent if proto is not None else 0,
            pings_sent=keepalive.pings_sent if keepalive is not None else 0,
            pongs_received=keepalive.pongs_received if keepalive is not None else 0,
            last_rtt=keepalive.last_rtt if keepalive is not None else None,
            mean_rtt=keepalive.mean_rtt if keepalive is not None else None,
            inbox_depth=len(inbox),
            reader_paused=reader.paused if reader is not None else 0.0,
            state_seconds=state_seconds,
        )
