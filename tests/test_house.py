"""The house rules that a reviewer would otherwise check by hand: every module of the
package states its purpose in a header docstring and stays under about 700 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "statews"
#: "Modules stay under about 700 lines": the ceiling a module may not pass.
MAX_LINES = 720
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_module_is_small_and_says_what_it_is(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines (split it by concern)"
    if path.name != "__main__.py":
        assert ast.get_docstring(ast.parse(text)), f"{path.name} has no module docstring"
