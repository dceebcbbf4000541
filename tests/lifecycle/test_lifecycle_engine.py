"""The connection's machine runs on python-statemachine's engine, made lean per instance.

:mod:`statews.lifecycle.machine` builds each :class:`Lifecycle` already in its initial
state, on an engine whose event queues are plain heaps, without the eventless scan the
machine has no use for. These lean on python-statemachine internals (the version is
pinned exactly in pyproject.toml): these tests fail when an upgrade changes them.
"""

from __future__ import annotations

import queue
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from statemachine.engines.base import EventQueue
from statemachine.engines.sync import SyncEngine

from statews import InvalidStateError
from statews.lifecycle import Lifecycle
from statews.lifecycle.machine import _Heap, _TrioEngine

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_version_is_installed() -> None:
    pinned = [
        line.strip().strip('",')
        for line in (ROOT / "pyproject.toml").read_text().splitlines()
        if line.strip().startswith('"python-statemachine')
    ]
    assert pinned == [f"python-statemachine=={metadata.version('python-statemachine')}"]


def test_the_engine_sets_what_the_library_engine_sets() -> None:
    machine = Lifecycle()
    library = SyncEngine(machine)  # does not start: the machine already has a state
    lean = machine._engine
    assert type(lean) is _TrioEngine
    assert set(vars(lean)) == set(vars(library))
    for name, value in vars(library).items():
        if name not in {"sm", "external_queue", "internal_queue", "_sentinel", "_processing"}:
            assert type(getattr(lean, name)) is type(value), name
    assert isinstance(lean.external_queue, EventQueue)
    assert isinstance(lean.external_queue.queue, _Heap)


def test_the_heap_behaves_as_the_priority_queue_it_replaces() -> None:
    heap, reference = _Heap(), queue.PriorityQueue[Any]()
    for item in (5, 1, 4, 1, 3):
        heap.put(item)
        reference.put(item)
    assert heap.qsize() == reference.qsize()
    with heap.mutex:  # entered and left as the library's EventQueue does
        assert sorted(heap.queue) == sorted(reference.queue)
    assert [heap.get(block=False) for _ in range(5)] == [
        reference.get(block=False) for _ in range(5)
    ]
    with pytest.raises(queue.Empty):
        heap.get(block=False)


def test_a_machine_starts_in_the_initial_state_without_a_macrostep() -> None:
    machine = Lifecycle()
    assert machine.state == "idle"
    assert machine._engine._macrostep_count == 0
    assert [s.id for s in machine.configuration] == ["idle"]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.entered: list[str] = []

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self.seen.append((source.id, event, target.id))

    def on_enter_state(self, target: Any) -> None:
        self.entered.append(target.id)


def test_listeners_given_at_construction_see_the_initial_entry() -> None:
    recorder = Recorder()
    machine = Lifecycle(listeners=[recorder])
    assert machine.state == "idle"
    assert recorder.entered == ["idle"]


def test_events_go_through_the_engine_with_listeners_and_refusals() -> None:
    entered: list[str] = []
    machine = Lifecycle(on_enter=entered.append)
    recorder = Recorder()
    machine.add_listener(recorder)
    for event in ("connect", "upgraded", "close_requested", "close_completed"):
        machine.fire(event)
    assert recorder.seen == [
        ("idle", "connect", "upgrading"),
        ("upgrading", "upgraded", "connected"),
        ("connected", "close_requested", "closing"),
        ("closing", "close_completed", "closed"),
    ]
    assert entered == ["upgrading", "connected", "closing", "closed"]
    assert machine.is_terminated
    with pytest.raises(InvalidStateError, match="closed"):
        machine.fire("connect")
    assert machine.state == "closed"


def test_refused_event_leaves_the_queues_empty() -> None:
    machine = Lifecycle()
    with pytest.raises(InvalidStateError):
        machine.fire("upgraded")
    assert machine.state == "idle"
    assert machine._engine.external_queue.is_empty()
    machine.fire("connect")
    assert machine.state == "upgrading"


@pytest.mark.parametrize("listeners", [None, [Recorder()]])
def test_the_state_read_is_the_library_state_value(listeners: list[Any] | None) -> None:
    machine = Lifecycle(listeners=listeners)
    states = [machine.state]
    assert machine.state == machine.current_state_value
    for event in ("connect", "upgraded", "close_received", "connection_lost"):
        machine.fire(event)
        assert machine.state == machine.current_state_value == machine.configuration_values[0]
        states.append(machine.state)
    assert states == ["idle", "upgrading", "connected", "closing", "closed"]
