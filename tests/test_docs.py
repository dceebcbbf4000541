"""The documentation site builds without a warning and documents every public name.

The site is built once per test session (``python -m sphinx -W -n``) into a temporary
directory; its inventory (``objects.inv``) must hold every name of ``statews.__all__``
and every public method and attribute of :class:`statews.WebSocket`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import statews

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 300

pytest.importorskip("sphinx")
pytest.importorskip("sphobjinv")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-n", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def inventory_names(site: Path) -> set[str]:
    import sphobjinv  # noqa: PLC0415

    return {obj.name for obj in sphobjinv.Inventory(site / "objects.inv").objects}


def test_every_public_name_is_documented(built_site: Path) -> None:
    names = inventory_names(built_site)
    missing = [n for n in statews.__all__ if f"statews.{n}" not in names]
    assert not missing, missing


def test_every_websocket_member_is_documented(built_site: Path) -> None:
    names = inventory_names(built_site)
    public = [n for n in dir(statews.WebSocket) if not n.startswith("_")]
    public += ["options", "lifecycle", "subprotocol", "response_headers", "extensions"]
    missing = [n for n in public if f"statews.WebSocket.{n}" not in names]
    assert not missing, missing


def test_lifecycle_diagram_is_drawn_at_build_time(built_site: Path) -> None:
    page = (built_site / "lifecycle.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 2  # the class and the live state
    assert not (ROOT / "docs" / "lifecycle.svg").exists()


PYTHON_INVENTORY = Path("/usr/share/doc/python3.11/html/objects.inv")


@pytest.mark.skipif(not PYTHON_INVENTORY.is_file(), reason="Debian's python3.11-doc is absent")
def test_python_names_link_to_the_python_docs(built_site: Path) -> None:
    page = (built_site / "reference" / "connection.html").read_text(encoding="utf-8")
    assert 'href="https://docs.python.org/3/library/stdtypes.html#str"' in page


def readme_features() -> list[tuple[str, list[str]]]:
    """The README's "feature | how" table: each feature, and the names its row spells."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme[readme.index("| feature | how |") :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        feature, how = line.strip("|").split(" | ", 1)
        words = {w for code in re.findall(r"`([^`]+)`", how) for w in re.findall(r"\w{4,}", code)}
        rows.append((feature.strip(), sorted(words)))
    return rows


@pytest.mark.parametrize(("feature", "words"), readme_features())
def test_every_readme_feature_is_in_the_docs(feature: str, words: list[str]) -> None:
    """A newcomer finds each feature of the README's table in the site, by its names."""
    docs = " ".join(
        page.read_text(encoding="utf-8")
        for page in (ROOT / "docs").rglob("*.md")
        if "_build" not in page.parts
    )
    missing = [w for w in words if w not in docs]
    assert not missing, f"{feature}: {missing}"
