"""README.md tells the truth: every ``statews.X`` it names imports, every Python block runs.

Conventions for README.md's fenced code blocks (a marker is an HTML comment on the last
non-blank line before the fence):

* every ```` ```python ```` block is a complete program; it is run as ``python main.py``
  in a fresh directory, with this repository first on ``PYTHONPATH``, against the
  embedded echo server (:func:`statews.cli.server.serve_echo`): the example address
  ``127.0.0.1:8765`` is replaced by that of a server started for the test. It must exit
  with status 0 within :data:`RUN_TIMEOUT` seconds.
* ``<!-- file: NAME -->`` before a block (of any language): its text, with the same
  replacement, is written to ``NAME`` in the program's directory before each program
  runs (the configuration example reads ``conn.toml``).
* ``<!-- not run: REASON -->`` before a Python block: it is not run; the reason is
  required, and at least :data:`MIN_RUN` blocks must run.
* programs find ``STATEWS_TOKEN`` in their environment (``${STATEWS_TOKEN}`` in the
  configuration example).
"""

from __future__ import annotations

import ast
import importlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import trio

import statews
from statews.cli.server import serve_echo

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Seconds a README program may take (each talks to loopback only).
RUN_TIMEOUT = 30
#: The README's Python blocks that must run (today: Use, the hackney_ws API, config).
MIN_RUN = 3
#: The server address the README's examples use, replaced by the test server's.
EXAMPLE_ADDRESS = "127.0.0.1:8765"

_MARKER = re.compile(r"<!--\s*(file|not run):\s*(.*?)\s*-->")
_NAMED = re.compile(r"(?<![\w/.])statews(?:\.[A-Za-z_]\w*)+")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its info string, text, first line (1-based) and marker."""

    language: str
    text: str
    line: int
    marker: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def read_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of ``markdown``, in order.

    Raises:
        ValueError: a fence is not closed.
    """
    blocks: list[Block] = []
    lines = markdown.splitlines()
    last_text = ""  # the last non-blank line outside a block
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```"):
            if line.strip():
                last_text = line.strip()
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md:{i + 1}: code block not closed")
        match = _MARKER.fullmatch(last_text)
        marker = (match[1], match[2]) if match else None
        blocks.append(Block(line[3:].strip(), "\n".join(lines[start:end]) + "\n", i + 1, marker))
        last_text = ""
        i = end + 1
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.language == "python"]
RUN = [b for b in PYTHON if b.marker is None or b.marker[0] != "not run"]
FILES = [b for b in BLOCKS if b.marker is not None and b.marker[0] == "file"]


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
        Block("python", "x = 1\n", 4, ("not run", "needs a proxy")),
        Block("toml", "k = 1\n", 9, ("file", "a.toml")),
        Block("python", "y = 2\n", 12, None),
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
    server = await nursery.start(serve_echo, "127.0.0.1", 0)
    address = f"127.0.0.1:{server.port}"
    for file in FILES:
        assert file.marker is not None
        text = file.text.replace(EXAMPLE_ADDRESS, address)
        (tmp_path / file.marker[1]).write_text(text, encoding="utf-8")
    (tmp_path / "main.py").write_text(block.text.replace(EXAMPLE_ADDRESS, address))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["STATEWS_TOKEN"] = "readme-test-token"
    with trio.fail_after(RUN_TIMEOUT):
        done = await trio.run_process(
            [sys.executable, "main.py"],
            cwd=tmp_path,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{block.id} exited with {done.returncode}:\n{output}"
