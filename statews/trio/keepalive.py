"""Pings and their pongs: ``ws.ping()`` and the keepalive task.

A connection owns one :class:`Keepalive` from the upgrade on. :meth:`Keepalive.ping`
sends a ping and waits for the pong that answers it; :meth:`Keepalive.run` (a task,
when ``ping_interval`` is set) pings every interval and fails the connection with
1011 when a pong is ``ping_timeout`` late.

Invariants:

* A pong answers the ping with the same payload and every ping sent before it (RFC
  6455 5.5.3 lets a peer answer only the latest); a pong nobody waits for is ignored.
* When the connection ends, every waiting ping is released (:meth:`release_all`) and
  reports the end, never hangs.
* The timeout is not counted while our own reader is held back by a full inbox (the
  pong may be queued behind messages the application has not taken): the slow side is
  then us, and failing the peer for it would be wrong.
* No ping is sent in the middle of a streamed message we are sending (legal, but some
  peers mishandle it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable

import trio

from ..core.errors import ConnectionClosed, InvalidStateError, WebSocketError

__all__ = ["Keepalive"]


class Keepalive:
    """The pings of one connection in flight, and the keepalive loop."""

    __slots__ = (
        "_rtt_total",
        "_send_ping",
        "last_rtt",
        "on_pong",
        "pings",
        "pings_sent",
        "pongs_received",
        "scope",
    )

    def __init__(self, send_ping: Callable[[bytes], Awaitable[None]]) -> None:
        self._send_ping = send_ping
        #: Told of each answered ping's round-trip time (the listeners' ``on_pong``).
        self.on_pong: Callable[[float], None] | None = None
        #: Pings sent, pings answered, and the round-trip time of the last one answered.
        self.pings_sent = 0
        self.pongs_received = 0
        self.last_rtt: float | None = None
        self._rtt_total = 0.0
        #: Payload -> (time sent, set when answered or when the connection ended).
        self.pings: dict[bytes, tuple[float, trio.Event]] = {}
        #: Cancelled when the connection starts closing: the loop ends.
        self.scope = trio.CancelScope()

    async def ping(self, data: bytes | None, closed_error: Callable[[], ConnectionClosed]) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        Raises: as ``send``; what ``closed_error()`` builds if the connection ends first;
        :class:`WebSocketError` if a ping with the same payload is still waiting.
        """
        payload, sent_at, waiter = await self._start(data)
        try:
            await waiter.wait()
        except BaseException:  # cancelled: nobody waits for this payload any more
            entry = self.pings.get(payload)
            if entry is not None and entry[1] is waiter:  # not yet answered or released
                del self.pings[payload]
            raise
        if payload in self.pings:  # woken by the end, not by a pong
            del self.pings[payload]
            raise closed_error()
        return trio.current_time() - sent_at

    async def _start(self, data: bytes | None) -> tuple[bytes, float, trio.Event]:
        pings = self.pings
        if data is None:
            payload = os.urandom(4)
            while payload in pings:
                payload = os.urandom(4)
        else:
            payload = bytes(data)
            if payload in pings:
                raise WebSocketError(f"a ping with payload {payload!r} is already waiting")
        waiter = trio.Event()
        sent_at = trio.current_time()
        pings[payload] = (sent_at, waiter)
        try:
            await self._send_ping(payload)
        except BaseException:
            pings.pop(payload, None)
            raise
        self.pings_sent += 1
        return payload, sent_at, waiter

    @property
    def mean_rtt(self) -> float | None:
        """The mean round-trip time of the pings answered with their own payload."""
        answered = self.pongs_received
        return self._rtt_total / answered if answered and self.last_rtt is not None else None

    def acknowledge(self, payload: bytes) -> None:
        """A pong with ``payload`` arrived: it answers that ping and every earlier one."""
        pings = self.pings
        if payload not in pings:
            return
        for key in list(pings):
            sent_at, waiter = pings.pop(key)
            waiter.set()
            if key == payload:
                rtt = self.last_rtt = trio.current_time() - sent_at
                self._rtt_total += rtt
                self.pongs_received += 1
                if self.on_pong is not None:
                    self.on_pong(rtt)
                break

    def stop(self) -> None:
        """The connection is closing: the loop ends (pings in flight still wait)."""
        self.scope.cancel()

    def release_all(self) -> None:
        """The connection ended: every waiting ping wakes up (and reports the end)."""
        self.scope.cancel()
        for _, waiter in self.pings.values():
            waiter.set()

    async def run(  # noqa: PLR0917 - the connection's hooks, passed in one place
        self,
        interval: float,
        timeout: float | None,
        between_messages: Callable[[], Awaitable[None]],
        reader_held_back: Callable[[], bool],
        fail: Callable[[BaseException, str], None],
        connected: Callable[[], bool],
    ) -> None:
        """Ping every ``interval`` seconds; call ``fail`` when a pong is ``timeout``
        late, unless ``reader_held_back()``. Ends when the connection leaves
        ``connected``."""
        with self.scope:
            while True:
                await trio.sleep(interval)
                await between_messages()
                try:
                    _, _, waiter = await self._start(None)
                except (ConnectionClosed, InvalidStateError):
                    return
                while not waiter.is_set():
                    with trio.move_on_after(math.inf if timeout is None else timeout):
                        await waiter.wait()
                    if waiter.is_set() or reader_held_back():
                        continue
                    fail(
                        TimeoutError(f"keepalive: no pong within {timeout} s"),
                        "keepalive ping timeout",
                    )
                    return
                if not connected():
                    return
