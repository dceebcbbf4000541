"""The fenced code blocks of a Markdown page, and how one Python block is run.

Shared by ``test_readme.py`` (README.md) and ``test_docs_examples.py`` (``docs/**/*.md``),
so both follow one set of conventions (a marker is an HTML comment on the last non-blank
line before the fence):

* every ```` ```python ```` block is a complete program; it is run as ``python main.py``
  in a fresh directory, with this repository first on ``PYTHONPATH``, against the
  embedded echo server (:func:`statews.cli.server.serve_echo`): the example address
  ``127.0.0.1:8765`` is replaced by that of a server started for the test. It must exit
  with status 0 within :data:`RUN_TIMEOUT` seconds.
* ``<!-- file: NAME -->`` before a block (of any language): its text, with the same
  replacement, is written to ``NAME`` in the program's directory before each program of
  the same page runs.
* ``<!-- not run: REASON -->`` before a Python block: it is not run; the reason is
  required.
* programs find ``STATEWS_TOKEN`` in their environment.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import trio

from statews.cli.server import serve_echo

ROOT = Path(__file__).resolve().parents[1]

#: Seconds one program may take (each talks to loopback only).
RUN_TIMEOUT = 30
#: The server address the examples use, replaced by the test server's.
EXAMPLE_ADDRESS = "127.0.0.1:8765"

_MARKER = re.compile(r"<!--\s*(file|not run):\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, info string, text, first line (1-based), marker."""

    page: str
    language: str
    text: str
    line: int
    marker: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        """A Python block without a ``not run`` marker."""
        return self.language == "python" and (self.marker is None or self.marker[0] != "not run")

    @property
    def file_name(self) -> str | None:
        """The name a ``file`` marker gives the block, if it has one."""
        return self.marker[1] if self.marker is not None and self.marker[0] == "file" else None


def read_blocks(markdown: str, page: str = "README.md") -> list[Block]:
    """The fenced code blocks of ``markdown``, in order (``page`` names them).

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
        fence = line[: len(line) - len(line.lstrip("`"))]
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{page}:{i + 1}: code block not closed")
        match = _MARKER.fullmatch(last_text)
        marker = (match[1], match[2]) if match else None
        text = "\n".join(lines[start:end]) + "\n"
        blocks.append(Block(page, line[len(fence) :].strip(), text, i + 1, marker))
        last_text = ""
        i = end + 1
    return blocks


async def run_block(
    nursery: trio.Nursery, directory: Path, block: Block, files: list[Block]
) -> str:
    """Run ``block`` as ``python main.py`` in ``directory`` against a fresh echo server,
    after writing ``files`` there; return its output.

    Raises:
        AssertionError: the program exited with another status than 0.
        trio.TooSlowError: it ran longer than :data:`RUN_TIMEOUT` seconds.
    """
    server = await nursery.start(serve_echo, "127.0.0.1", 0)
    address = f"127.0.0.1:{server.port}"
    for file in files:
        assert file.file_name is not None
        (directory / file.file_name).write_text(
            file.text.replace(EXAMPLE_ADDRESS, address), encoding="utf-8"
        )
    (directory / "main.py").write_text(block.text.replace(EXAMPLE_ADDRESS, address))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["STATEWS_TOKEN"] = "readme-test-token"
    with trio.fail_after(RUN_TIMEOUT):
        done = await trio.run_process(
            [sys.executable, "main.py"],
            cwd=directory,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{block.id} exited with {done.returncode}:\n{output}"
    return output
