"""Drawing a declared state machine: Mermaid, a Markdown transition table, DOT or SVG.

What ``ws.diagram()`` and ``statews diagram`` print, drawn from the class itself with
python-statemachine's own diagram model (``statemachine.contrib.diagram``), so the
drawing cannot drift from the declaration. Works for any python-statemachine machine,
an application's own included.

Invariants: only the declared structure is drawn (never listeners or the connection's
internals); an instance's current state is the one highlighted; the output is
deterministic (generated ids are numbered, not taken from ``id()``).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from statemachine import StateMachine
from statemachine.contrib.diagram.extract import extract
from statemachine.contrib.diagram.graphviz import run_graphviz
from statemachine.contrib.diagram.model import DiagramGraph
from statemachine.contrib.diagram.renderers.mermaid import MermaidRenderer
from statemachine.contrib.diagram.renderers.table import TransitionTableRenderer

__all__ = ["FORMATS", "Format", "render"]

#: A drawing format.
Format = Literal["mermaid", "md", "dot", "svg"]
#: The formats :func:`render` produces (the one list: the CLI and docs take it from here).
FORMATS: Final[tuple[Format, ...]] = ("mermaid", "md", "dot", "svg")

MachineLike = StateMachine | type[StateMachine]


def render(machine: MachineLike, fmt: Format = "mermaid") -> str:
    """Draw ``machine`` in ``fmt``.

    ``machine`` is a python-statemachine class (:class:`Lifecycle`, the declared
    lifecycle, or an application's own machine) or an instance of one, whose current
    state is highlighted (Mermaid ``classDef active``, a filled DOT node). ``fmt`` is
    ``"mermaid"`` (stateDiagram-v2), ``"md"`` (transition table), ``"dot"`` or
    ``"svg"``. Only the declared structure is drawn: the connection's private
    callbacks are not.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
        ImportError: ``"dot"``/``"svg"`` without the ``pydot`` package.
        FileNotFoundError: ``"svg"`` without Graphviz's ``dot`` program on ``PATH``.
        statemachine.contrib.diagram.GraphvizError: ``dot`` failed.
    """
    graph = _graph(machine)
    if fmt == "mermaid":
        return MermaidRenderer().render(graph)
    if fmt == "md":
        return TransitionTableRenderer().render(graph, fmt="md")
    if fmt == "dot":
        return _dot(graph)
    if fmt == "svg":
        return run_graphviz(_dot(graph), "svg").decode("utf-8")
    raise ValueError(f"unknown diagram format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _graph(machine: MachineLike) -> DiagramGraph:
    """The library's diagram model of the declared class, with ``machine``'s state active."""
    # The class, not the instance: an instance's model also lists the listeners' hooks
    # (the connection's internals) as entry actions.
    graph = extract(machine if isinstance(machine, type) else type(machine))
    if not isinstance(machine, type):
        for state in graph.states:
            state.is_active = state.id == machine.current_state_value
    return graph


def _dot(graph: DiagramGraph) -> str:
    from statemachine.contrib.diagram.renderers.dot import DotRenderer  # noqa: PLC0415 - pydot

    source: str = DotRenderer().render(graph).to_string()
    # The renderer names clusters and the initial node after id(); number them instead.
    numbers: dict[str, str] = {}

    def stable(match: re.Match[str]) -> str:
        return match[1] + numbers.setdefault(match[2], str(len(numbers)))

    return re.sub(r"(__initial_|__atomic_)(\d+)", stable, source)
