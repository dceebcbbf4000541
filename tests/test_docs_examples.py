"""The documentation site tells the truth: every Python block of ``docs/**/*.md`` runs.

Each page follows the conventions of ``markdown_blocks.py`` (those of README.md): a
program per ``python`` block, run against a fresh echo server, with the page's ``file``
blocks written beside it; ``not run`` blocks give their reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from markdown_blocks import ROOT, Block, read_blocks, run_block

DOCS = ROOT / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "_generated" not in p.parts
)
#: The docs' Python blocks that must run: the guides are made of them.
MIN_RUN = 40


def page_blocks() -> dict[str, list[Block]]:
    return {
        str(page.relative_to(ROOT)): read_blocks(
            page.read_text(encoding="utf-8"), str(page.relative_to(ROOT))
        )
        for page in PAGES
    }


BLOCKS = page_blocks()
RUN = [block for blocks in BLOCKS.values() for block in blocks if block.runs]


def test_blocks_are_found_and_enough_run() -> None:
    assert len(RUN) >= MIN_RUN, [b.id for b in RUN]
    for blocks in BLOCKS.values():
        for block in blocks:
            if block.language == "python" and block.marker is not None:
                assert block.marker[1], f"{block.id}: a marker needs a reason or a name"
            if block.file_name is not None:
                name = block.file_name
                assert Path(name).name == name, f"{block.id}: file marker is not a plain name"


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
async def test_python_block_runs(nursery: trio.Nursery, tmp_path: Path, block: Block) -> None:
    files = [b for b in BLOCKS[block.page] if b.file_name is not None]
    await run_block(nursery, tmp_path, block, files)
