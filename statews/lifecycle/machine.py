"""The lifecycle of one WebSocket connection, declared once with python-statemachine.

``idle -> upgrading -> connected -> closing -> closed``. This class is the only holder of
lifecycle state: the runtime (:mod:`statews.trio.connection`) sends it events and asks it
what is allowed; ``diagrams/`` and ``specs/lifecycle.md`` are generated from it; the tests
walk its transitions. There is no second copy of the lifecycle anywhere.

Invariants:

* Callbacks are synchronous and do no I/O (python-statemachine's async engine runs a
  private asyncio loop and cannot run under trio). A trio task does the I/O, then sends
  the event that reports its outcome.
* Only lifecycle changes go through the machine (a transition costs tens of
  microseconds); frames never do. Reading :attr:`Lifecycle.state` is cheap: it reads the
  :class:`_Model` field that python-statemachine itself stores the state in and reads it
  from (``current_state_value``), the one copy of the state.
* An event the current state does not allow raises :class:`~statews.core.errors.InvalidStateError`
  naming the state; so does an operation :data:`OPERATIONS` does not allow there.
* Every event goes through :meth:`Lifecycle.fire`, the one place where state changes are
  logged (``statews.lifecycle`` logger) and the owner is told the state it entered
  (``on_enter``). No callback is declared on the machine itself: python-statemachine
  builds a callback registry per instance for every declared or listener callback,
  which tripled the memory of each connection's machine (bench/README.md).
* Each machine is built already in ``idle`` (a :class:`_Model` holding the state, so the
  initial macrostep is skipped) on a :class:`_TrioEngine`: python-statemachine's own
  synchronous engine, with event queues that are plain heaps instead of thread-safe
  ``PriorityQueue`` objects (a connection's machine is only ever driven from its trio thread).
  Both lean on python-statemachine internals, hence the exact version pin in
  ``pyproject.toml``; ``tests/test_lifecycle_engine.py`` checks them against the installed
  release.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
from collections.abc import Callable, Mapping
from threading import Lock
from typing import Any, Final, Literal, cast, get_args

from statemachine import State, StateMachine
from statemachine.engines.base import EventQueue
from statemachine.engines.sync import SyncEngine
from statemachine.exceptions import TransitionNotAllowed
from statemachine.invoke import InvokeManager
from statemachine.orderedset import OrderedSet

from ..core.errors import InvalidStateError

__all__ = ["OPERATIONS", "STATES", "Lifecycle", "Operation", "StateName"]

logger = logging.getLogger("statews.lifecycle")

#: A state's id, as :attr:`Lifecycle.state` and ``ws.state`` give it: typed so that a
#: misspelt state fails type checking (``ws.state == "conected"`` under mypy --strict).
#: Checked against the declared states when this module is imported.
StateName = Literal["idle", "upgrading", "connected", "closing", "closed"]

#: What the application may do, the keys of :data:`OPERATIONS`.
Operation = Literal[
    "connect", "send", "recv", "ping", "peername", "sockname", "setopts",
    "controlling_process", "close",
]  # fmt: skip


class _Heap:
    """The part of :class:`queue.PriorityQueue` that python-statemachine's ``EventQueue``
    uses (``queue``, ``mutex``, ``put``, ``get``, ``qsize``), without its lock and three
    conditions: a machine driven from one thread needs neither (~44% of an instance)."""

    __slots__ = ("queue",)
    mutex: Final = contextlib.nullcontext()

    def __init__(self) -> None:
        self.queue: list[Any] = []

    def put(self, item: Any) -> None:
        heapq.heappush(self.queue, item)

    def get(self, block: bool = True) -> Any:
        if not self.queue:
            raise queue.Empty
        return heapq.heappop(self.queue)

    def qsize(self) -> int:
        return len(self.queue)


class _PlainEventQueue(EventQueue):
    """python-statemachine's ``EventQueue`` over a :class:`_Heap`."""

    def __init__(self) -> None:
        self.queue = _Heap()  # type: ignore[assignment]  # the part of the interface it uses


def _no_debug(*args: Any, **kwargs: Any) -> None:
    """The engine's debug hook when its logger is not enabled for DEBUG."""


class _TrioEngine(SyncEngine):
    """python-statemachine's synchronous engine over plain :class:`_PlainEventQueue`.

    ``BaseEngine.__init__`` is replaced, not extended, so that the thread-safe queues are
    never built; it sets the same attributes (``tests/test_lifecycle_engine.py`` compares them
    with the installed release's engine). Everything else is the library's engine.
    """

    def __init__(self, sm: Any) -> None:
        self.sm = sm
        self.external_queue = _PlainEventQueue()
        self.internal_queue = _PlainEventQueue()
        self._sentinel = object()
        self.running = True
        self._processing = Lock()
        self._cache: dict[Any, Any] = {}
        self._invoke_manager = InvokeManager(self)
        self._macrostep_count = 0
        self._microstep_count = 0
        self._log_id = f"[{type(sm).__name__}]"
        debug = logging.getLogger("statemachine.engines.base")
        self._debug = debug.debug if debug.isEnabledFor(logging.DEBUG) else _no_debug
        self._root_parallel_final_pending = None

    def select_eventless_transitions(self, trigger_data: Any) -> Any:
        """None, without scanning every transition twice per event: the machine declares
        no eventless transition (checked when this module is imported)."""
        return _NO_TRANSITIONS


class _Model:
    """Holds the machine's state (python-statemachine's ``model``), created in the initial
    state.

    A state already set makes the engine skip the initial macrostep (about half of a
    machine's construction: the initial state has no entry callback to run); ``__slots__``
    keeps the listener discovery that runs ``dir()`` on the model short.
    """

    __slots__ = ("state",)

    def __init__(self, state: str | None) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Model(state={self.state})"


class Lifecycle(StateMachine):
    """States and transitions of one connection (hackney_ws's gen_statem, made explicit)."""

    # ``StateMachine`` already raises on an event without a transition and does not turn
    # callback errors into events; spelled out because the runtime relies on both.
    allow_event_without_transition = False
    catch_errors_as_events = False

    idle = State("idle", initial=True)
    """Started, not connected: options are validated, nothing has touched the network."""
    upgrading = State("upgrading")
    """TCP/TLS connect and the HTTP upgrade are under way."""
    connected = State("connected")
    """The upgrade succeeded: messages flow both ways."""
    closing = State("closing")
    """A Close frame was sent or received; waiting for the closing handshake and TCP end."""
    closed = State("closed", final=True)
    """The connection is over; only already-received messages can still be read."""

    connect = idle.to(upgrading)
    """The application called ``connect()``."""
    upgraded = upgrading.to(connected)
    """The server accepted the upgrade (101 with a valid accept key)."""
    upgrade_failed = upgrading.to(closed)
    """Connect, TLS or the upgrade failed, was rejected or timed out."""
    close_requested = connected.to(closing)
    """The application sent a Close frame (``close()`` or ``send(Close(...))``)."""
    close_received = connected.to(closing)
    """The peer sent a Close frame; it is echoed at once."""
    failed = connected.to(closing)
    """We failed the connection (protocol violation, keepalive timeout): a Close went out."""
    close_completed = closing.to(closed)
    """Both Close frames were exchanged and the TCP connection ended."""
    close_timeout = closing.to(closed)
    """The closing handshake did not finish within ``close_timeout``; TCP was aborted."""
    connection_lost = connected.to(closed) | closing.to(closed)
    """TCP ended or broke without a complete closing handshake (1006)."""
    aborted = idle.to(closed) | upgrading.to(closed) | connected.to(closed) | closing.to(closed)
    """The application closed before connecting, or the connection's tasks were cancelled."""

    def __init__(
        self,
        name: str = "ws",
        *,
        on_enter: Callable[[str], None] | None = None,
        listeners: list[Any] | None = None,
    ) -> None:
        self.name = name
        self._on_enter = on_enter
        # Listeners given here are told of the initial state's entry, as the library does:
        # only then does the machine start unset and run the initial macrostep.
        super().__init__(_Model(_INITIAL if listeners is None else None), listeners=listeners)

    def _get_engine(self) -> _TrioEngine:
        return _TrioEngine(self)

    @property
    def state(self) -> StateName:
        """The current state's id: ``"idle"``, ``"upgrading"``, ..., ``"closed"``."""
        # The field python-statemachine stores the state in and reads it from
        # (``current_state_value`` is ``getattr(model, "state")`` under three layers of
        # properties): read several times per message, it costs 0.1 us instead of 0.7.
        return cast(StateName, self.model.state)

    def fire(self, event: str) -> None:
        """Send ``event``.

        Raises:
            InvalidStateError: the current state has no transition for ``event``.
        """
        source = self.state
        try:
            self.send(event)
        except TransitionNotAllowed as exc:
            raise InvalidStateError(event.replace("_", " "), source) from exc
        target = self.state
        logger.debug("%s: %s -> %s (%s)", self.name, source, target, event)
        if self._on_enter is not None:
            self._on_enter(target)

    def require(self, operation: Operation) -> None:
        """Check that ``operation`` (a key of :data:`OPERATIONS`) is allowed now.

        Raises:
            InvalidStateError: it is not; the message names the operation and the state.
        """
        state = self.model.state
        if state not in OPERATIONS[operation]:
            allowed = ", ".join(s for s in STATES if s in OPERATIONS[operation])
            raise InvalidStateError(operation, state, f"allowed in: {allowed}")


#: The initial state's value, which every :class:`_Model` starts in.
_INITIAL: Final[str] = Lifecycle.initial_state.value

#: What :meth:`_TrioEngine.select_eventless_transitions` answers.
_NO_TRANSITIONS: Final = OrderedSet[Any]()
if any(t.is_eventless for s in Lifecycle.states for t in s.transitions if not t.initial):
    raise AssertionError("Lifecycle declares an eventless transition: _TrioEngine skips them")

#: The states in lifecycle order.
STATES: Final[tuple[StateName, ...]] = tuple(cast(StateName, s.id) for s in Lifecycle.states)
if set(STATES) != set(get_args(StateName)):  # the Literal is a copy: keep it true
    raise AssertionError(f"StateName {get_args(StateName)} != declared states {STATES}")

#: What the application may do in each state. The runtime checks these through
#: :meth:`Lifecycle.require`; the tests and ``specs/lifecycle.md`` are generated from them.
#: ``recv`` is allowed once closed so that messages received before the end can be read.
OPERATIONS: Final[Mapping[Operation, frozenset[StateName]]] = {
    "connect": frozenset({"idle"}),
    "send": frozenset({"connected"}),
    "recv": frozenset({"connected", "closing", "closed"}),
    "ping": frozenset({"connected"}),
    "peername": frozenset({"connected", "closing"}),
    "sockname": frozenset({"connected", "closing"}),
    "setopts": frozenset({"idle", "upgrading", "connected", "closing", "closed"}),
    "controlling_process": frozenset({"idle", "upgrading", "connected", "closing", "closed"}),
    "close": frozenset({"idle", "upgrading", "connected", "closing", "closed"}),
}
if set(OPERATIONS) != set(get_args(Operation)):
    raise AssertionError(f"Operation {get_args(Operation)} != OPERATIONS {tuple(OPERATIONS)}")
