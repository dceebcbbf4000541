"""README.md tells the truth: every ``statews.X`` it names imports, every Python block runs.

The conventions of its fenced code blocks (``file`` and ``not run`` markers, the example
address replaced by an echo server's) are those of ``markdown_blocks.py``, shared with the
documentation site's pages; at least :data:`MIN_RUN` of its blocks must run.
"""

from __future__ import annotations

import ast
import importlib
import logging
import re
from pathlib import Path
from types import ModuleType

import pytest
import trio
from markdown_blocks import ROOT, Block, read_blocks, run_block

import statews
from statews.cli.server import serve_echo

README = ROOT / "README.md"

#: The README's Python blocks that must run (today: Use, the hackney_ws API, config).
MIN_RUN = 3

_NAMED = re.compile(r"(?<![\w/.])statews(?:\.[A-Za-z_]\w*)+")

BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.language == "python"]
RUN = [b for b in PYTHON if b.runs]
FILES = [b for b in BLOCKS if b.file_name is not None]


def named_in_readme() -> list[str]:
    """Dotted names ``statews.X[.Y...]`` in the README's text, and the names the Python
    blocks import from statews (``from statews import X``, ``import statews.x``)."""
    names = set(_NAMED.findall(README.read_text(encoding="utf-8")))
    for block in PYTHON:
        for node in ast.walk(ast.parse(block.text, block.id)):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                if node.module == "statews" or node.module.startswith("statews."):
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("statews."))
    return sorted(names)


def resolve(dotted: str) -> object:
    """What ``dotted`` names, found as ``from statews import X`` finds it: an attribute,
    else a submodule; then attribute by attribute (submodules too).

    Raises:
        ImportError: a part is neither an attribute nor a submodule.
    """
    parts = dotted.split(".")
    found: object = statews
    for index, part in enumerate(parts[1:], start=1):
        if hasattr(found, part):
            found = getattr(found, part)
            continue
        if not isinstance(found, ModuleType):
            raise ImportError(f"{'.'.join(parts[:index])} has no attribute {part!r}")
        try:
            found = importlib.import_module(f"{found.__name__}.{part}")
        except ModuleNotFoundError:
            raise ImportError(
                f"cannot import name {part!r} from {'.'.join(parts[:index])}"
            ) from None
    return found


# ------------------------------------------------------------------ the conventions


def test_blocks_are_found_and_enough_run() -> None:
    assert len(RUN) >= MIN_RUN, [b.id for b in RUN]
    for block in PYTHON:
        if block.marker is not None and block.marker[0] == "not run":
            assert block.marker[1], f"{block.id}: a 'not run' marker needs a reason"
    for block in FILES:
        assert block.marker is not None
        name = Path(block.marker[1])
        assert name.name == block.marker[1], f"{block.id}: file marker is not a plain name"


def test_read_blocks_honours_markers() -> None:
    text = (
        "prose\n\n<!-- not run: needs a proxy -->\n```python\nx = 1\n```\n"
        "<!-- file: a.toml -->\n\n```toml\nk = 1\n```\n```python\ny = 2\n```\n"
    )
    assert read_blocks(text) == [
        Block("README.md", "python", "x = 1\n", 4, ("not run", "needs a proxy")),
        Block("README.md", "toml", "k = 1\n", 9, ("file", "a.toml")),
        Block("README.md", "python", "y = 2\n", 12, None),
    ]
    with pytest.raises(ValueError, match="not closed"):
        read_blocks("```python\nx = 1\n")


def test_names_are_collected() -> None:
    names = named_in_readme()
    # from the text, from a table, from a block's import
    assert {"statews.open_websocket", "statews.Message", "statews.Binary"} <= set(names)
    assert "statews.lifecycle.Lifecycle" in names


def test_resolve_fails_on_a_missing_name() -> None:
    assert resolve("statews.lifecycle.Lifecycle") is statews.lifecycle.Lifecycle
    assert resolve("statews.cli.server.serve_echo") is serve_echo
    with pytest.raises(ImportError, match="no_such_name"):
        resolve("statews.no_such_name")
    with pytest.raises(ImportError, match="'nope'"):
        resolve("statews.Text.nope")


# ------------------------------------------------------------------ the README itself


@pytest.mark.parametrize("name", named_in_readme())
def test_named_in_readme_imports(name: str) -> None:
    """A name the README uses imports; or it is one of the loggers statews logs to
    (``statews.connection``, ...), made when statews is imported."""
    if name in logging.Logger.manager.loggerDict and name not in _MODULE_NAMES:
        return
    resolve(name)


# Dotted names that are modules as well as loggers must resolve as modules.
_MODULE_NAMES = {"statews.lifecycle"}


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
async def test_python_block_runs(nursery: trio.Nursery, tmp_path: Path, block: Block) -> None:
    await run_block(nursery, tmp_path, block, FILES)
