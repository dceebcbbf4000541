"""Sphinx configuration of the statews documentation site (``docs/``).

Build: ``python -m sphinx -W -n -b html docs docs/_build/html`` (what ``.ci/run`` does).

* Prose is MyST Markdown; the reference is autodoc; the CLI page is drawn from
  ``statews.cli.command.build_parser()`` by sphinx-argparse; the lifecycle diagrams are
  drawn from ``statews.lifecycle.Lifecycle`` by python-statemachine's directive, and its
  tables are written at build time by ``tools/generate.py`` (``docs/_generated/``).
* Intersphinx needs inventories, which cannot be downloaded here (no network in CI).
  Python's comes from Debian's ``python3.11-doc`` package, which ``.ci/run`` installs
  (``/usr/share/doc/python3.11/html/objects.inv``); set ``STATEWS_DOCS_INVENTORIES`` to a
  directory holding ``python.inv``, ``trio.inv`` and/or ``pydantic.inv`` to link to those
  too (each present one is used, offline). Names without an inventory are left unlinked:
  nitpicky checking applies to statews' own names.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import statews  # noqa: E402
from tools.generate import write_docs_generated  # noqa: E402

project = "statews"
author = "statews developers"
copyright = "2026, statews developers"
release = statews.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "statemachine.contrib.diagram.sphinx_ext",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"statews {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Every cross-reference is checked; a statews name that does not resolve fails the build.
nitpicky = True
# The lifecycle page includes generated tables whose headings start at H2, on purpose.
suppress_warnings = ["myst.header"]
# Third-party and builtin names resolve only with intersphinx inventories (see above).
nitpick_ignore_regex = [(r"py:.*", r"(?!statews\b).*")]

_INVENTORIES = {
    "python": "https://docs.python.org/3",
    "trio": "https://trio.readthedocs.io/en/stable",
    "pydantic": "https://docs.pydantic.dev/latest",
}
#: Inventories that packages of the machine install (Debian's python3.11-doc).
_INSTALLED = {"python": Path("/usr/share/doc/python3.11/html/objects.inv")}
_inventory_dir = os.environ.get("STATEWS_DOCS_INVENTORIES")
intersphinx_mapping = {}
for _name, _url in _INVENTORIES.items():
    _path = Path(_inventory_dir) / f"{_name}.inv" if _inventory_dir else _INSTALLED.get(_name)
    if _path is not None and _path.is_file():
        intersphinx_mapping[_name] = (_url, str(_path))

# The lifecycle tables, generated from the class at every build (never committed).
write_docs_generated(Path(__file__).resolve().parent / "_generated")
