"""Repository tooling (not shipped in the wheel): every generated file, from the classes.

:func:`artifacts` builds the generated files of the repository (``diagrams/``,
``specs/lifecycle.md``, ``specs/options.schema.json``, ``docs/options.md`` and the
README's generated blocks) from the declared lifecycle and the options model, drawing
with :func:`statews.lifecycle.render`; ``python tools/generate.py [--check] [ROOT]``
writes them (or reports the stale ones and exits 1). Tests and ``.ci/run`` run it.

Invariants:

* The classes are the single source: :class:`Lifecycle` with its attribute docstrings,
  :data:`~statews.lifecycle.OPERATIONS`, the :class:`~statews.options.model.Options` model,
  :func:`~statews.options.model.json_schema` and :func:`~statews.options.config.config_json_schema`.
  Nothing here restates a state, an event or an option.
* Every text artifact is deterministic: the same classes give the same bytes. The DOT
  source is made so too (the library names clusters after object ids). Only the SVG
  depends on the installed Graphviz, and tests do not byte-compare it.
* A state or an event without a docstring is an error (:class:`ValueError`), so the
  contract in ``specs/lifecycle.md`` cannot silently lose a line.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from statews.lifecycle import OPERATIONS, STATES, Lifecycle, render
from statews.options.config import config_json_schema_text
from statews.options.model import Options, json_schema

__all__ = [
    "artifacts",
    "generate",
    "lifecycle_spec",
    "lifecycle_tables",
    "main",
    "options_doc",
    "options_schema",
    "stale",
    "write_docs_generated",
]

#: The command that regenerates the artifacts; named in every generated file.
COMMAND: Final = "python tools/generate.py"
SVG_PATH: Final = "diagrams/lifecycle.svg"


# --- the lifecycle contract ------------------------------------------------------------


def attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the class attributes of ``cls`` (``x = ...`` then a
    string literal), by attribute name; Python keeps no such docstring at run time."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    docs = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.targets[0].id] = inspect.cleandoc(following.value.value)
    return docs


def lifecycle_spec() -> str:
    """``specs/lifecycle.md``: the lifecycle contract, from :class:`Lifecycle` and
    :data:`OPERATIONS`.

    Raises:
        ValueError: a state or an event has no docstring.
    """
    lines = [
        _generated_note("statews/lifecycle.py"),
        "# The connection lifecycle",
        "",
        _markdown(inspect.getdoc(Lifecycle) or ""),
        "",
        "Declared once, with python-statemachine, in `statews.lifecycle.Lifecycle`: the",
        "runtime sends it events and asks it what is allowed. An event that the current",
        "state does not allow, or an operation that the table below does not allow, raises",
        "`InvalidStateError` naming the state. This page is generated from the class.",
        "",
        "```mermaid",
        render(Lifecycle, "mermaid").rstrip("\n"),
        "```",
        "",
        lifecycle_tables(),
    ]
    return "\n".join(lines)


def lifecycle_tables() -> str:
    """The States, Events, Transitions and Operations sections (``##`` headings, Markdown
    tables) of the lifecycle contract, from :class:`Lifecycle` and :data:`OPERATIONS`:
    the end of ``specs/lifecycle.md`` and the tables of the documentation's lifecycle page.

    Raises:
        ValueError: a state or an event has no docstring.
    """
    docs = attribute_docs(Lifecycle)
    states = list(Lifecycle.states)
    events = list(cast("Iterable[Any]", Lifecycle.events))  # a class-level property
    for name in [s.id for s in states] + [e.id for e in events]:
        if not docs.get(name):
            raise ValueError(f"Lifecycle.{name} has no docstring: document it under its line")
    transitions = [(t.source.id, t.event, t.target.id) for s in states for t in s.transitions]
    lines = [
        "## States",
        "",
        *_table(
            ("State", "Kind", "Meaning"),
            [(f"`{s.id}`", _state_kind(s), _markdown(docs[s.id])) for s in states],
        ),
        "",
        "## Events",
        "",
        *_table(
            ("Event", "Transitions", "Meaning"),
            [
                (
                    f"`{e.id}`",
                    ", ".join(f"{a} → {b}" for a, name, b in transitions if name == e.id),
                    _markdown(docs[e.id]),
                )
                for e in events
            ],
        ),
        "",
        "## Transitions",
        "",
        *_table(
            ("Source", "Event", "Target"),
            [(f"`{a}`", f"`{e}`", f"`{b}`") for a, e, b in transitions],
        ),
        "",
        "## Operations",
        "",
        "What the application may call in each state (`statews.lifecycle.OPERATIONS`);",
        "elsewhere the call raises `InvalidStateError`.",
        "",
        *_table(
            ("Operation", *(f"`{s}`" for s in STATES)),
            [
                (f"`{op}`", *("yes" if s in allowed else "no" for s in STATES))
                for op, allowed in OPERATIONS.items()
            ],
        ),
    ]
    return "\n".join(lines) + "\n"


#: What the documentation build writes under ``docs/_generated/`` (not committed): pages
#: drawn from the classes at every build, so that the site cannot drift from them.
DOCS_GENERATED: Final[Mapping[str, Callable[[], str]]] = {
    "lifecycle_tables.md": lifecycle_tables,
}


def write_docs_generated(directory: Path) -> list[Path]:
    """Write :data:`DOCS_GENERATED` under ``directory`` (``docs/conf.py`` calls this at
    every build); a file already up to date is left untouched, so that Sphinx does not
    rebuild its pages needlessly. Returns the paths.

    Raises:
        OSError: a file cannot be written.
        ValueError: a state or an event has no docstring.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DOCS_GENERATED.items():
        target = directory / name
        text = build()
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target)
    return written


def _state_kind(state: Any) -> str:
    if state.initial:
        return "initial"
    return "final" if state.final else ""


# --- the options -----------------------------------------------------------------------


def options_schema() -> str:
    """``specs/options.schema.json``: :func:`~statews.options.config.config_json_schema` (a whole
    configuration file), pretty-printed with sorted keys and a final newline."""
    return config_json_schema_text()


def options_doc() -> str:
    """``docs/options.md``: every option of :class:`Options` (groups as dotted names) with
    its type as files give it, its default and its description."""
    schema = json_schema()
    definitions: dict[str, Any] = schema.get("$defs", {})
    url = schema["properties"]["url"]
    rows = [("`url`", "string", "—", _markdown(url["description"]))]
    groups: list[tuple[str, type[BaseModel], FieldInfo]] = []
    for name, field in Options.model_fields.items():
        group = _group_model(field)
        if group is not None:
            groups.append((name, group, field))
            rows.append((f"`{name}`", "table", "see below", _markdown(field.description or "")))
        else:
            rows.append(_option_row(name, field, schema["properties"].get(name)))
    lines = [
        _generated_note("statews/options.py"),
        "# Options",
        "",
        "The options of one connection: keyword arguments of `statews.open_websocket()` and",
        "`statews.start_link()`, keys of a configuration file (`statews.load_config`),",
        "fields of `statews.Options`. Times are in seconds. `null` (Python `None`) means",
        "no limit where a type allows it. `host` or `url` is required; `url` sets",
        "`transport`, `host`, `port` and `path`, and the other keys override it.",
        "`specs/options.schema.json` is the JSON Schema of a configuration file: these",
        "keys at the top level for one connection, or under `connections.<name>` for",
        "several; `statews check FILE` validates every connection of a file, checks that",
        "the files it names exist, and prints the options it resolves to.",
        "",
        *_table(("Option", "Type", "Default", "Description"), rows),
    ]
    for name, group, field in groups:
        properties = definitions.get(group.__name__, {}).get("properties", {})
        lines += [
            "",
            f"## `{name}`",
            "",
            _markdown(field.description or inspect.getdoc(group) or ""),
            "",
            *_table(
                ("Option", "Type", "Default", "Description"),
                [
                    _option_row(f"{name}.{sub}", subfield, properties.get(sub))
                    for sub, subfield in group.model_fields.items()
                ],
            ),
        ]
    return "\n".join(lines) + "\n"


def _group_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _option_row(
    name: str, field: FieldInfo, prop: Mapping[str, Any] | None
) -> tuple[str, str, str, str]:
    description = _markdown(field.description or "")
    if prop is None:  # kept out of the schema: the Python API only
        kind = str(field.annotation).replace("typing.", "")
        return f"`{name}`", f"Python only: `{kind}`", _default_text(field.default), description
    default = "required" if field.is_required() else _default_text(prop.get("default"))
    return f"`{name}`", _type_text(prop), default, description


def _default_text(value: Any) -> str:
    text = f"`{json.dumps(value, ensure_ascii=False)}`"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024:
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value % size == 0:
                return f"{text} ({value // size} {unit})"
    return text


def _type_text(prop: Mapping[str, Any], form: str | None = None) -> str:
    """A short reading of a JSON Schema: ``number > 0 or null``, ``integer 1-65535``.
    ``form`` is a ``format`` given beside an ``anyOf``."""
    form = prop.get("format", form)
    if "anyOf" in prop:
        return " or ".join(_type_text(alternative, form) for alternative in prop["anyOf"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " or ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(_type_text(item) for item in prop["prefixItems"]) + "]"
        return f"array of {_type_text(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"table of {_type_text(values)}" if isinstance(values, Mapping) else "table"
    if kind == "string":
        return {"path": "path", "password": "string (secret)"}.get(form, "string")
    if kind in ("integer", "number"):
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and high is not None:
            return f"{kind} {low}-{high}"
        if "exclusiveMinimum" in prop:
            return f"{kind} > {prop['exclusiveMinimum']}"
        if low is not None:
            return f"{kind} >= {low}"
    return str(kind)


# --- markdown --------------------------------------------------------------------------


def _generated_note(source: str) -> str:
    return f"<!-- Generated from {source} by `{COMMAND}`: do not edit. -->\n"


def _markdown(text: str) -> str:
    """reStructuredText-flavoured docstring text as one Markdown paragraph."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # :class:`~x.Y` -> `x.Y`
    return " ".join(text.replace("``", "`").split())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]


# --- the generated files ---------------------------------------------------------------

#: Every generated text file, by path relative to the repository root.
TEXT_ARTIFACTS: Final[Mapping[str, Callable[[], str]]] = {
    "diagrams/lifecycle.mmd": lambda: render(Lifecycle, "mermaid"),
    "specs/lifecycle.md": lifecycle_spec,
    "specs/options.schema.json": options_schema,
    "docs/options.md": options_doc,
}


def artifacts(root: Path | None = None) -> dict[str, str]:
    """The content of every generated text file, by path relative to the repository root
    (the SVG, which depends on the installed Graphviz, is not among them). With ``root``,
    also README.md with its generated blocks brought up to date."""
    files = {path: build() for path, build in TEXT_ARTIFACTS.items()}
    readme = None if root is None else root / README_PATH
    if readme is not None and readme.is_file():
        files[README_PATH] = fill_readme(readme.read_text(encoding="utf-8"), files)
    return files


#: README.md embeds generated files between ``<!-- begin: PATH -->`` and ``<!-- end: PATH -->``.
README_PATH = "README.md"
_README_BLOCK = re.compile(r"(<!-- begin: (\S+) -->\n).*?(<!-- end: \2 -->)", re.DOTALL)


def fill_readme(text: str, files: Mapping[str, str]) -> str:
    """``text`` with every generated block replaced by the current content of its file:
    Mermaid in a ``mermaid`` fence, Markdown from its first table on."""

    def block(match: re.Match[str]) -> str:
        path = match.group(2)
        content = files[path]
        if path.endswith(".mmd"):
            body = f"```mermaid\n{content.rstrip()}\n```\n"
        else:
            body = content[content.index("\n| ") + 1 :]
        return f"{match.group(1)}{body}{match.group(3)}"

    return _README_BLOCK.sub(block, text)


def stale(root: Path) -> list[str]:
    """The generated text files under ``root`` that are missing or out of date."""
    return [
        path
        for path, text in artifacts(root).items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def generate(root: Path, *, svg: bool = True) -> list[Path]:
    """Write every generated file under ``root``; return the paths written.

    ``diagrams/lifecycle.svg`` is written too when ``svg`` is true and Graphviz's ``dot``
    is on ``PATH``.

    Raises:
        OSError: a file cannot be written.
        ImportError: the SVG is wanted and ``pydot`` is missing.
    """
    files: dict[str, str] = artifacts(root)
    if svg and shutil.which("dot") is not None:
        files[SVG_PATH] = render(Lifecycle, "svg")
    written = []
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python tools/generate.py [--check] [ROOT]``: write the generated files under
    ROOT (default: this repository); with ``--check``, write nothing and exit 1 if any
    is stale."""
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Regenerate the diagrams, specs and docs from the classes."
    )
    parser.add_argument(
        "root",
        nargs="?",
        default=Path(__file__).resolve().parent.parent,
        type=Path,
        help="repository root (default: this repository)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report stale files (exit 1 if any)"
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.root)
        for path in outdated:
            print(f"{path} is out of date: run {COMMAND}", file=sys.stderr)
        return 1 if outdated else 0
    for target in generate(args.root):
        print(f"wrote {target}")
    if shutil.which("dot") is None:
        print(f"{SVG_PATH} not written: Graphviz's dot is not on PATH", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
