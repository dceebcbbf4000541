"""The lifecycle diagrams: drawn from the class by python-statemachine's renderers,
a live connection's state highlighted, committed copies up to date."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio
from peers import WsServer

import statews
from statews.lifecycle import STATES, Lifecycle, render
from tools.generate import COMMAND, SVG_PATH, generate, main, stale

ROOT = Path(__file__).resolve().parents[2]

#: (source, event name as drawn, target) for every declared transition.
TRANSITIONS = [
    (t.source.id, next(e.name for e in Lifecycle.events if e.id == t.event), t.target.id)
    for state in Lifecycle.states
    for t in state.transitions
]


def test_committed_mermaid_is_current() -> None:
    committed = (ROOT / "diagrams/lifecycle.mmd").read_text(encoding="utf-8")
    assert committed == render(Lifecycle, "mermaid"), f"diagrams/lifecycle.mmd: run {COMMAND}"


def test_mermaid_draws_every_declared_transition() -> None:
    text = render(Lifecycle, "mermaid")
    assert text.startswith("stateDiagram-v2\n")
    lines = set(text.splitlines())
    assert "    [*] --> idle" in lines
    assert "    closed --> [*]" in lines
    for source, name, target in TRANSITIONS:
        assert f"    {source} --> {target} : {name}" in lines
    assert ":::active" not in text  # the class has no current state


def test_mermaid_of_a_machine_highlights_its_state() -> None:
    machine = Lifecycle()
    assert "    idle:::active" in render(machine, "mermaid").splitlines()
    machine.fire("connect")
    machine.fire("upgraded")
    text = render(machine, "mermaid")
    assert "    classDef active fill:#40E0D0,stroke:#333" in text.splitlines()
    assert re.findall(r"(\w+):::active", text) == ["connected"]


async def test_live_connection_renders_its_own_state(ws_server: WsServer) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ws = await statews.start_link(nursery, ws_server.url())
            assert re.findall(r"(\w+):::active", ws.diagram("mermaid")) == ["idle"]
            await ws.connect()
            text = ws.diagram("mermaid")
            assert re.findall(r"(\w+):::active", text) == ["connected"]
            # The connection's private listener hooks are not part of the diagram.
            assert "entry" not in text
            assert "on_enter" not in text
            assert render(ws.lifecycle, "dot") == ws.diagram("dot")
            await ws.close()
            assert re.findall(r"(\w+):::active", render(ws.lifecycle, "mermaid")) == ["closed"]


def test_markdown_table_has_a_row_per_transition() -> None:
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in render(Lifecycle, "md").splitlines()[2:]
    ]
    assert [(r[0], r[1], r[3]) for r in rows] == TRANSITIONS


def test_dot_is_deterministic_and_complete() -> None:
    text = render(Lifecycle, "dot")
    assert text == render(Lifecycle, "dot")
    assert text.startswith("digraph Lifecycle {")
    assert not re.search(r"\d{6,}", text), "object ids leaked into the DOT source"
    for state in STATES:
        assert re.search(rf"^{state} \[", text, re.MULTILINE)
    for source, _, target in TRANSITIONS:
        assert f"{source} -> {target} " in text
    assert "turquoise" not in text


def test_dot_of_a_machine_fills_its_state() -> None:
    machine = Lifecycle()
    (idle,) = [line for line in render(machine, "dot").splitlines() if line.startswith("idle [")]
    assert "fillcolor=turquoise" in idle


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="png"):
        render(Lifecycle, "png")  # type: ignore[arg-type]


def _check_svg(text: str) -> None:
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = {"".join(node.itertext()).strip() for node in root.iter() if node.tag.endswith("text")}
    for state in STATES:
        assert state in labels, f"{state} is not drawn"


def test_committed_svg_is_an_svg_of_every_state() -> None:
    _check_svg((ROOT / SVG_PATH).read_text(encoding="utf-8"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_is_rendered_by_graphviz() -> None:
    text = render(Lifecycle, "svg")
    _check_svg(text)
    machine = Lifecycle()
    machine.fire("connect")
    assert "turquoise" in render(machine, "svg")


def test_generate_writes_what_check_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        "diagrams/lifecycle.mmd",
        "specs/lifecycle.md",
        "specs/options.schema.json",
        "docs/options.md",
    }
    assert set(stale(tmp_path)) == expected
    assert main(["--check", str(tmp_path)]) == 1
    assert f"docs/options.md is out of date: run {COMMAND}" in capsys.readouterr().err
    written = generate(tmp_path, svg=False)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == expected
    assert stale(tmp_path) == []
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "docs/options.md").write_text("edited\n", encoding="utf-8")
    assert stale(tmp_path) == ["docs/options.md"]
