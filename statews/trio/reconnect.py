"""Reconnecting for ever: one fresh connection per attempt, exponential backoff between.

::

    async with statews.connect_forever("wss://feed.example/", backoff_max=10) as attempts:
        async for ws in attempts:
            try:
                while True:
                    handle(await ws.recv())
            except statews.ConnectionClosed:
                continue  # the policy below decides: reconnect, or stop the loop

Each iteration yields a new, connected :class:`~statews.WebSocket` with its own
lifecycle. When the body of the loop ends (or ``continue``\\ s), the connection it was
given decides what happens next:

* still open: the body is done with it; it is closed (1000) and the loop stops;
* the application closed it (``close()``, ``send(Close(...))``, or an owner channel
  that went away): the loop stops, whatever the code and however the close ended;
* the server closed it with a Close frame: wait and reconnect when the code is one of
  ``retry_codes`` (default :data:`RETRY_CODES`: 1001 going away, 1011 internal error,
  1012 service restart, 1013 try again later, 1014 bad gateway), stop on any other
  code (1000 normal closure, 1008 policy violation, 4000-4999, ...);
* it ended without the server's Close (TCP lost, a protocol violation or keepalive
  timeout we failed it for, 1006): wait, reconnect.

``break`` or an exception leaving the body closes the connection and ends the block.
A failed connection attempt is retried when it is transient (:func:`is_transient`:
TCP connect failures and timeouts, a connection broken during the handshake, HTTP 5xx
and 429), and raised otherwise (a 4xx, an invalid handshake, TLS, a redirect refused).

Invariants:

* Each attempt is one :class:`~statews.WebSocket` through :func:`statews.start_link`;
  nothing of one attempt is reused by the next. Their tasks live in the nursery the
  ``async with`` block owns (trio's structured concurrency: they must outlive each
  iteration), so the block never ends with a connection task still running.
* Who closed a connection is read from its lifecycle (the event that left
  ``connected``: ``close_requested``, ``close_received`` or ``failed``), not guessed
  from the codes, which are the same both ways once a Close is echoed.
* The wait before a retry is ``Backoff.delay(n)`` for the n-th failure in a row (a
  failed attempt, or a connection that ended in a way that reconnects), and at least
  the server's ``Retry-After``; a successful connection sets n back to 0.
* ``max_attempts`` bounds the connection attempts in a row that may fail: the last
  one's error is raised.
* Cancellation is never swallowed: it ends the wait or the attempt at once, and
  leaving the block closes the current connection (shielded, bounded by its
  ``close_timeout``).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import trio

from ..core.errors import (
    CloseCode,
    ConnectError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeError,
    HandshakeRejected,
    InvalidHandshake,
    OptionsError,
    is_valid_wire_code,
)
from ..options.model import Options, resolve_options
from .client import start_link, task_nursery
from .connection import WebSocket

__all__ = ["RETRY_CODES", "Attempts", "Backoff", "connect_forever", "is_transient"]

logger = logging.getLogger("statews.reconnect")

#: HTTP statuses worth retrying besides 5xx: 429 Too Many Requests (RFC 6585 4).
_RETRY_STATUSES = frozenset({429})

#: Close codes of the server's that reconnect by default: the server is going away
#: (1001: a graceful restart or shutdown), failed (1011), restarts (1012), is
#: overloaded (1013) or is a gateway whose upstream failed (1014). Any other code the
#: server closes with (1000, a policy violation, an application's 4xxx) stops the loop.
RETRY_CODES: Final[tuple[int, ...]] = (
    CloseCode.GOING_AWAY,
    CloseCode.INTERNAL_ERROR,
    CloseCode.SERVICE_RESTART,
    CloseCode.TRY_AGAIN_LATER,
    CloseCode.BAD_GATEWAY,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter.

    The n-th wait (n >= 1) is ``min(maximum, initial * factor ** (n - 1))`` less a
    random part of up to ``jitter`` of it: with the default 0.5 it lies between half
    the delay and the whole ("equal jitter"), so that clients cut off together do not
    come back together, and it never exceeds ``maximum``.

    Raises:
        OptionsError: ``initial`` is not > 0, ``maximum`` < ``initial``, ``factor`` < 1,
            ``jitter`` not in 0..1, or a value is not finite; ``option`` names it.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        names = ("backoff_initial", "backoff_max", "backoff_factor", "jitter")
        values = (self.initial, self.maximum, self.factor, self.jitter)
        for option, value in zip(names, values, strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OptionsError(f"{option}: expected a number, got {value!r}", option=option)
        rules = (
            (self.initial > 0, "> 0"),
            (self.maximum >= self.initial, ">= backoff_initial"),
            (self.factor >= 1, ">= 1"),
            (0 <= self.jitter <= 1, "in 0..1"),
        )
        for option, value, (ok, rule) in zip(names, values, rules, strict=True):
            if not ok or not math.isfinite(value):
                raise OptionsError(
                    f"{option}: expected a finite number {rule}, got {value!r}", option=option
                )

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after ``failures`` (>= 1) failures in a row.

        ``rand`` returns a float in [0, 1): the random part.
        """
        steps = failures - 1
        if self.factor > 1 and steps > math.log(self.maximum / self.initial, self.factor):
            base = self.maximum  # and no float overflow for large ``failures``
        else:
            base = min(self.maximum, self.initial * self.factor**steps)
        return base * (1.0 - self.jitter * rand())


def is_transient(error: BaseException) -> bool:
    """Whether a failed connection attempt is worth retrying.

    Yes for :class:`~statews.ConnectError` and :class:`~statews.ConnectTimeout`, an
    :class:`~statews.InvalidHandshake` caused by the connection breaking or closing, and a
    :class:`~statews.HandshakeRejected` with status 5xx or 429. No for anything else:
    another 4xx, an invalid answer, a TLS or proxy failure, a refused redirect, bad
    options. A ``Retry-After`` is honoured on the retried statuses.
    """
    if isinstance(error, ConnectError | ConnectTimeout):
        return True
    if isinstance(error, HandshakeRejected):
        return error.status >= 500 or error.status in _RETRY_STATUSES
    if isinstance(error, InvalidHandshake):
        # The connection broke or the server hung up mid-handshake (a restart, say).
        return isinstance(error.__cause__, trio.BrokenResourceError | EOFError)
    return False


class Attempts:
    """The async iterator of :func:`connect_forever`: one connected WebSocket per step.

    ``attempts`` counts the connection attempts made, ``failures`` the failures in a
    row (reset by a successful connection), ``last_error`` is what caused the last
    retry (a connection error, or the :class:`~statews.ConnectionClosed` of a
    connection that ended in a way that reconnects), ``current`` the connection last
    yielded, ``retry_codes`` the server's close codes that reconnect (a frozenset).

    Raises:
        OptionsError: ``retry_codes`` is not a collection of close codes.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        options: Options,
        backoff: Backoff,
        max_attempts: int | None,
        retry_if: Callable[[BaseException], bool],
        *,
        retry_codes: Collection[int] = RETRY_CODES,
    ) -> None:
        self._nursery = nursery
        self.options = options
        self.backoff = backoff
        self.max_attempts = max_attempts
        self._retry_if = retry_if
        self.retry_codes = check_retry_codes(retry_codes)
        # How the connection last yielded left ``connected`` (see _ClosedBy).
        self._closed_by: _ClosedBy | None = None
        self.attempts = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self.current: WebSocket | None = None
        self._done = False

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> WebSocket:
        """Settle the previous connection, then connect, retrying as the policy says.

        Raises:
            StopAsyncIteration: the previous connection was left open or closed cleanly.
            HandshakeError: an attempt failed and is not retried, or ``max_attempts``
                attempts in a row failed (the last one's error).
            OptionsError: the options cannot be used (nothing is retried).
        """
        if self._done:
            raise StopAsyncIteration
        wait = 0.0
        previous = self.current
        if previous is not None:
            self.current = None
            left_open = previous.state == "connected"
            # Closes a connection the body left open; waits for the end of a closing one.
            await previous.close()
            ended = previous.closed_reason
            closed_by, self._closed_by = self._closed_by, None
            if left_open or ended is None or not self._reconnects(ended, closed_by):
                self._done = True
                raise StopAsyncIteration
            wait = self._failed(ended, None)
        failed_attempts = 0
        while True:
            await trio.sleep(wait)
            ws = await start_link(self._nursery, self.options)
            # Before connect(): the server's Close may come with its 101.
            closed_by = _ClosedBy()
            ws.lifecycle.add_listener(closed_by)  # type: ignore[no-untyped-call]
            self.attempts += 1
            try:
                await ws.connect()
            except HandshakeError as exc:
                failed_attempts += 1
                if not self._retry_if(exc) or failed_attempts == self.max_attempts:
                    self._done = True
                    raise
                retry_after = exc.retry_after if isinstance(exc, HandshakeRejected) else None
                wait = self._failed(exc, retry_after)
                continue
            except BaseException:
                self._done = True
                raise
            self.failures = 0
            self.current = ws
            self._closed_by = closed_by
            return ws

    def _reconnects(self, ended: ConnectionClosed, closed_by: _ClosedBy | None) -> bool:
        """Whether a connection that ended as ``ended`` is followed by another."""
        event = closed_by.event if closed_by is not None else None
        if event == "close_requested":
            return False  # the application closed it: it is done
        if event == "close_received" and ended.rcvd is not None:
            return ended.rcvd.code in self.retry_codes
        # No Close from the server first: TCP lost, or we failed the connection.
        return isinstance(ended, ConnectionClosedError)

    def _failed(self, error: BaseException, retry_after: float | None) -> float:
        """Count a failure; return how long to wait before the next attempt."""
        self.failures += 1
        self.last_error = error
        wait = self.backoff.delay(self.failures)
        if retry_after is not None:
            wait = max(wait, retry_after)
        logger.info(
            "%s: failure %d in a row (%s); reconnecting in %.3g s",
            self.options.url,
            self.failures,
            error,
            wait,
        )
        return wait

    async def aclose(self) -> None:
        """Close the current connection (if any) and stop iterating."""
        self._done = True
        current, self.current = self.current, None
        if current is not None:
            await current.close()


class _ClosedBy:
    """A lifecycle listener (python-statemachine's listener protocol) recording the
    event that took the connection out of ``connected``."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: str | None = None

    def after_transition(self, event: str, source: Any) -> None:
        if source.id == "connected":
            self.event = str(event)


def check_retry_codes(codes: Collection[int]) -> frozenset[int]:
    """``codes`` as a frozenset, checked: each a close code a server can send (RFC 6455
    7.4: 1000-1014 but 1004-1006, 3000-4999), or 1005 for a Close without a code.

    Raises:
        OptionsError: ``codes`` is a string or not a collection, or holds something else;
            ``option`` is ``"retry_codes"``.
    """
    if isinstance(codes, str | bytes) or not isinstance(codes, Collection):
        raise OptionsError(
            f"retry_codes: expected a collection of close codes, got {codes!r}",
            option="retry_codes",
        )
    for code in codes:
        valid = type(code) is int or isinstance(code, CloseCode)
        if not valid or not (is_valid_wire_code(code) or code == CloseCode.NO_STATUS_RCVD):
            raise OptionsError(
                f"retry_codes: {code!r} is not a close code a server can send",
                option="retry_codes",
            )
    return frozenset(int(code) for code in codes)


@asynccontextmanager
async def connect_forever(
    url_or_options: Options | Mapping[str, Any] | str,
    /,
    *,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    backoff_factor: float = 2.0,
    jitter: float = 0.5,
    max_attempts: int | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
    retry_codes: Collection[int] = RETRY_CODES,
    **overrides: Any,
) -> AsyncIterator[Attempts]:
    """Reconnect with backoff: ``async with connect_forever(url) as attempts: async for
    ws in attempts: ...`` (see the module docstring for when it reconnects).

    ``url_or_options`` and ``overrides`` are as for :func:`statews.open_websocket`. The
    wait after the n-th failure in a row is described by :class:`Backoff`
    (``backoff_initial``, ``backoff_max``, ``backoff_factor``, ``jitter``) and is at
    least the ``Retry-After`` of a 5xx/429. ``max_attempts`` (None: no limit) is the
    number of connection attempts in a row that may fail before the last error is
    raised. ``retry_if`` decides which failed attempts are retried
    (:func:`is_transient` by default). ``retry_codes`` are the close codes that
    reconnect when the server closes with them (:data:`RETRY_CODES` by default: 1001,
    1011, 1012, 1013, 1014); the server's other codes, 1000 among them, and a close
    the application made end the loop. Leaving the block closes the current connection.

    Raises:
        OptionsError: invalid options, backoff parameters or ``retry_codes`` (before
            any I/O).
        HandshakeError: from the iteration, as :meth:`Attempts.__anext__`.
    """
    options = resolve_options(url_or_options, **overrides)
    backoff = Backoff(backoff_initial, backoff_max, backoff_factor, jitter)
    if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
        raise OptionsError(
            f"max_attempts: expected None or an integer >= 1, got {max_attempts!r}",
            option="max_attempts",
        )
    codes = check_retry_codes(retry_codes)
    async with task_nursery() as nursery:
        attempts = Attempts(nursery, options, backoff, max_attempts, retry_if, retry_codes=codes)
        try:
            yield attempts
        finally:
            with trio.CancelScope(shield=True):
                await attempts.aclose()
