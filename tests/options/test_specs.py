"""The generated specs and docs are current, and the examples agree with the model and
the JSON Schema of a configuration file (both accept the examples, whole files; both
refuse the same mistakes)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import tools.generate
from statews.core.errors import OptionsError
from statews.lifecycle import OPERATIONS, STATES, Lifecycle
from statews.options.config import config_json_schema, load_config, load_configs
from statews.options.model import Options, json_schema, resolve_options
from tools.generate import COMMAND, TEXT_ARTIFACTS, attribute_docs, lifecycle_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "specs/examples").iterdir())
VALIDATOR = jsonschema.Draft202012Validator(config_json_schema())


@pytest.mark.parametrize("path", sorted(TEXT_ARTIFACTS))
def test_committed_artifact_is_current(path: str) -> None:
    committed = ROOT / path
    assert committed.is_file(), f"{path} is missing: run {COMMAND}"
    text = committed.read_text(encoding="utf-8")
    assert text == TEXT_ARTIFACTS[path](), f"{path} is stale: run {COMMAND}"


def test_schema_file_is_the_schema_of_a_configuration_file() -> None:
    committed = json.loads((ROOT / "specs/options.schema.json").read_text(encoding="utf-8"))
    assert committed == config_json_schema()
    jsonschema.Draft202012Validator.check_schema(committed)
    # One connection's schema, as the docs read it, is kept whole under $defs.
    connection = json_schema()
    definitions = connection.pop("$defs")
    assert committed["$defs"] == {**definitions, "Options": connection}


def _parse(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix == ".json":
        data: dict[str, Any] = json.loads(text)
        return data
    return dict(yaml.safe_load(text))


def _connections(path: Path) -> list[tuple[str | None, dict[str, Any]]]:
    data = _parse(path)
    if "connections" in data:
        return list(data["connections"].items())
    return [(None, data)]


EXAMPLE_CONNECTIONS = [
    pytest.param(path, name, section, id=f"{path.name}-{name or 'top'}")
    for path in EXAMPLES
    for name, section in _connections(path)
]


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4
    assert len(EXAMPLE_CONNECTIONS) > len(EXAMPLES)


@pytest.mark.parametrize(("path", "name", "section"), EXAMPLE_CONNECTIONS)
def test_example_loads(
    path: Path, name: str | None, section: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEWS_TOKEN", "t0ken")
    options = load_config(path, name)
    assert isinstance(options, Options)
    if "url" in section:
        assert options.url.split("?")[0] in section["url"]


def _schema_errors(document: object) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(document)]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_file_matches_the_schema(path: Path) -> None:
    assert _schema_errors(_parse(path)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_a_typo_in_an_example_fails_the_schema(path: Path) -> None:
    data = _parse(path)
    section = next(iter(data["connections"].values())) if "connections" in data else data
    section["max_queu"] = 1
    errors = _schema_errors(data)
    assert len(errors) == 1
    assert "'max_queu' was unexpected" in errors[0]


# Whole files that the loader and the schema must both accept, or both refuse.
FILE_AGREEMENT = [
    ({"connections": {"a": {"url": "ws://h/"}, "b": {"host": "h", "port": 1}}}, True),
    ({"connections": {"a": {"url": "ws://h/", "ssl_options": {"verify": False}}}}, True),
    ({"url": "ws://h/", "host": "other"}, True),
    ({"connections": {}}, False),
    ({"connections": {"a": {"url": "ws://h/"}}, "host": "h"}, False),  # beside connections
    ({"connections": {"a": {"host": "h", "bogus": 1}}}, False),
    ({"connections": {"a": {"host": "h"}, "b": {"port": 1}}}, False),  # b has no host
    ({"connections": {"a": {"host": "h", "deflate": {"treshold": 1}}}}, False),
    ({"connections": {"a": ["host", "h"]}}, False),
    ({"connections": [{"host": "h"}]}, False),
    ({"connection": {"a": {"host": "h"}}}, False),
]


@pytest.mark.parametrize(("document", "valid"), FILE_AGREEMENT)
def test_schema_and_loader_agree_on_files(
    document: dict[str, Any], valid: bool, tmp_path: Path
) -> None:
    assert VALIDATOR.is_valid(document) is valid, _schema_errors(document)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        load_configs(path)
    except OptionsError:
        accepted = False
    else:
        accepted = True
    assert accepted is valid


# Documents that the model and the schema must both accept, or both refuse.
AGREEMENT = [
    ({"url": "ws://127.0.0.1:8765/"}, True),
    ({"host": "::1", "port": 8765, "active": "once", "headers": {"X-A": "1"}}, True),
    ({"host": "h", "headers": [["X-A", "1"], ["X-B", "2"]], "deflate": {"threshold": 0}}, True),
    ({"host": "h", "ssl_options": {"verify": False, "alpn_protocols": ["http/1.1"]}}, True),
    ({"port": 8765}, False),  # neither host nor url
    ({"host": "h", "bogus": 1}, False),
    ({"host": "h", "max_queue": 0}, False),
    ({"host": "h", "port": 70000}, False),
    ({"host": "h", "connect_timeout": 0}, False),
    ({"host": "h", "active": "twice"}, False),
    ({"host": "h", "transport": "udp"}, False),
    ({"host": "h", "headers": [["X-A"]]}, False),
    ({"host": "h", "deflate": {"client_max_window_bits": 8}}, False),
    ({"host": "h", "connect_options": {"nodelay": "very"}}, False),
    ({"host": "h", "ssl_options": {"context": None}}, False),  # Python only
]


@pytest.mark.parametrize(("document", "valid"), AGREEMENT)
def test_schema_and_model_agree(document: dict[str, Any], valid: bool) -> None:
    assert VALIDATOR.is_valid(document) is valid
    try:
        resolve_options(document)
    except OptionsError:
        accepted = False
    else:
        accepted = True
    # ssl_options.context=None is a valid Python call; the schema keeps it out of files.
    if "context" not in json.dumps(document):
        assert accepted is valid


def test_lifecycle_spec_covers_the_machine() -> None:
    text = lifecycle_spec()
    docs = attribute_docs(Lifecycle)
    for state in STATES:
        assert f"| `{state}` |" in text
    for event in Lifecycle.events:
        assert f"| `{event.id}` |" in text
        first_words = " ".join(docs[event.id].replace("``", "`").split()[:4])
        assert first_words in text
    operations = text.split("## Operations")[1].splitlines()
    for operation, allowed in OPERATIONS.items():
        row = next(line for line in operations if line.startswith(f"| `{operation}` |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")[1:]]
        assert cells == ["yes" if s in allowed else "no" for s in STATES]
    assert "```mermaid\nstateDiagram-v2\n" in text


def test_attribute_docs_reads_docstrings_under_assignments() -> None:
    class Example:
        a = 1
        """About a."""
        b = 2
        c: int = 3
        """Annotated assignments are not states or events."""

    assert attribute_docs(Example) == {"a": "About a."}


def test_undocumented_event_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = attribute_docs(Lifecycle)
    del docs["close_timeout"]
    monkeypatch.setattr(tools.generate, "attribute_docs", lambda cls: docs)
    with pytest.raises(ValueError, match=r"Lifecycle\.close_timeout has no docstring"):
        lifecycle_spec()


def test_options_doc_lists_every_option() -> None:
    text = TEXT_ARTIFACTS["docs/options.md"]()
    rows = {
        line.split("|")[1].strip().strip("`") for line in text.splitlines() if line[:3] == "| `"
    }
    expected = {"url", *Options.model_fields}
    for name, field in Options.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and hasattr(group, "model_fields"):
            expected |= {f"{name}.{sub}" for sub in group.model_fields}
    assert rows == expected
    assert "| `ssl_options.cafile` | path or null | `null` |" in text
    assert "| `max_frame_size` | integer >= 1 or null | `16777216` (16 MiB) |" in text
