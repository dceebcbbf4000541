"""Connection options from a TOML, JSON or YAML file, and options back as plain data.

Invariants:

- The format follows the extension: ``.toml`` (tomllib), ``.json``, ``.yaml``/``.yml``
  (PyYAML ``safe_load``). Text is UTF-8 (a BOM is allowed).
- A file holds one connection's options at the top level, or several under
  ``connections.<name>``. :func:`load_config` selects one and validates only it (an
  unset variable in another connection does not matter); :func:`load_configs` and
  :func:`check_config` validate every one. :func:`config_json_schema` is the schema
  of this layout.
- ``url`` may stand beside the other keys: the URL first, the other keys on top.
- ``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment
  (the default when VAR is unset or empty, taken literally); ``$$`` is a literal ``$``;
  any other ``$`` is an error, so a typo never passes silently. Keys are never
  interpolated.
- Relative file paths (``ssl_options.cafile``, ...; the fields marked with
  :data:`~statews.schema.PATH`) are relative to the file's directory, not the working
  directory; ``~`` is expanded.
- Every failure is a :class:`ConfigError` reading ``<file>: <key path>: <what>``, or
  ``<file>: line L, column C: invalid FORMAT: <what>`` for a syntax error; never a
  traceback from a parser or from pydantic.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from ..core.errors import OptionsError
from .model import Options, build_options, dotted, json_schema, options_error
from .redact import MASK, SECRET_OPTIONS, masked
from .schema import PATH

__all__ = [
    "MASK",
    "ConfigError",
    "check_config",
    "config_json_schema",
    "config_json_schema_text",
    "dump_options",
    "load_config",
    "load_configs",
]

# $$, ${NAME}, ${NAME:-default}; a "$" matching none of them is an error.
_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")

Key = tuple[str | int, ...]


class ConfigError(OptionsError):
    """A configuration file cannot be used; the message starts with the file's name.

    ``file`` is the path as given, ``option`` the offending option's dotted path inside
    the connection (``None`` when the problem is the file itself). ``problems`` holds
    one error per problem when several were found together (:func:`load_configs`,
    :func:`check_config`; the message joins theirs with ``"; "``), else just this one.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        option: str | None = None,
        problems: Sequence[ConfigError] = (),
    ) -> None:
        super().__init__(message, option=option)
        self.file = file
        self.problems: tuple[ConfigError, ...] = tuple(problems) or (self,)


def load_config(path: str | os.PathLike[str], name: str | None = None) -> Options:
    """The options of one connection described in the file at ``path``.

    With several connections under ``connections``, ``name`` selects one; with exactly
    one it may be omitted. A file without ``connections`` is one connection and takes no
    ``name``. Only the selected connection is interpolated and validated.

    Raises:
        ConfigError: the file is missing, unreadable, of an unsupported type, not valid
            for its format, or describes invalid options; or ``name`` selects nothing.
    """
    file, data = _read(path)
    base, section = _select(data, name, file)
    return _build(file, base, section)


def load_configs(path: str | os.PathLike[str]) -> dict[str | None, Options]:
    """Every connection described in the file at ``path``, each validated.

    The keys are the connection names of ``connections.<name>``, in the file's order,
    or ``None`` alone for a file that is one connection: ``load_config(path, key)``
    gives the same options for every key.

    Raises:
        ConfigError: the file cannot be used (as for :func:`load_config`), or some
            connections are invalid: then ``problems`` has one error per invalid
            connection, each naming it (``connections.<name>.<option>``).
    """
    file, data = _read(path)
    configs, problems = _build_all(file, data)
    _raise_problems(file, problems)
    return configs


def check_config(
    path: str | os.PathLike[str], name: str | None = None
) -> dict[str | None, Options]:
    """What ``statews check`` validates: every connection of the file (as
    :func:`load_configs`), or the one ``name`` selects (keyed by ``name``), and that the
    files they reference exist: ``ssl_options`` ``cafile``, ``certfile`` and ``keyfile``
    (files), ``capath`` (a directory) and the directory of ``unix_path``.

    Raises:
        ConfigError: the file cannot be used, ``name`` selects nothing, or there are
            problems: ``problems`` has one error per invalid connection and one per
            missing file, each reading ``<file>: <key path>: <what>``.
    """
    file, data = _read(path)
    if name is None:
        configs, problems = _build_all(file, data)
    else:
        base, section = _select(data, name, file)
        configs, problems = {name: _build(file, base, section)}, []
    for key, options in configs.items():
        base = () if key is None else ("connections", key)
        for option, what in _missing_files(options):
            where = dotted((*base, *option.split(".")))
            problems.append(ConfigError(f"{file}: {where}: {what}", file=file, option=option))
    _raise_problems(file, problems)
    return configs


def _read(path: str | os.PathLike[str]) -> tuple[str, dict[Any, Any]]:
    """The file name as given and the mapping the file holds."""
    file = os.fspath(path)
    extension = os.path.splitext(file)[1].lower()
    parse = _PARSERS.get(extension)
    if parse is None:
        got = f"{extension!r}" if extension else "no extension"
        raise ConfigError(
            f"{file}: unsupported file type ({got}): expected .toml, .json, .yaml or .yml",
            file=file,
        )
    try:
        with open(file, encoding="utf-8-sig") as stream:
            text = stream.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})", file=file) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}", file=file) from None
    data = parse(text, file)
    if not isinstance(data, dict):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{file}: expected a mapping of options, got {got}", file=file)
    return file, data


def _build(file: str, base: Key, section: dict[Any, Any]) -> Options:
    """The options of the connection at key path ``base``: interpolated, paths
    resolved, validated."""
    section = _interpolate(section, base, len(base), file)
    _resolve_paths(section, os.path.dirname(os.path.abspath(file)), Options)
    try:
        return build_options(section, {})
    except ValidationError as exc:
        error = options_error(exc, prefix=file, key_base=base)
        raise ConfigError(str(error), file=file, option=error.option) from None


def _build_all(
    file: str, data: dict[Any, Any]
) -> tuple[dict[str | None, Options], list[ConfigError]]:
    """Every connection of the file that is valid, and one error per invalid one."""
    connections = _connections(data, file)
    if connections is None:
        return {None: _build(file, (), data)}, []
    configs: dict[str | None, Options] = {}
    problems = []
    for name in connections:
        try:
            configs[name] = _build(file, *_section(connections, name, file))
        except ConfigError as exc:
            problems.append(exc)
    return configs, problems


def _raise_problems(file: str, problems: Sequence[ConfigError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        message = "; ".join(str(problem) for problem in problems)
        raise ConfigError(message, file=file, option=problems[0].option, problems=problems)


#: The options naming a file system entry that must exist, and what it must be.
_REFERENCED: Final[Mapping[str, Literal["file", "directory", "socket"]]] = {
    "ssl_options.cafile": "file",
    "ssl_options.capath": "directory",
    "ssl_options.certfile": "file",
    "ssl_options.keyfile": "file",
    "unix_path": "socket",  # need not exist yet: its directory must
}


def _missing_files(options: Options) -> list[tuple[str, str]]:
    """``(option, problem)`` for each referenced file system entry that is missing."""
    problems = []
    for option, kind in _REFERENCED.items():
        value: Any = options
        for part in option.split("."):
            value = getattr(value, part)
        if value is None:
            continue
        path = str(value)
        if kind == "socket":
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                problems.append((option, f"no such directory {directory!r} for the socket"))
        elif kind == "directory" and not os.path.isdir(path):
            what = "not a directory" if os.path.exists(path) else "no such directory"
            problems.append((option, f"{what}: {path!r}"))
        elif kind == "file" and not os.path.isfile(path):
            what = "not a file" if os.path.exists(path) else "no such file"
            problems.append((option, f"{what}: {path!r}"))
    return problems


# --- parsing ---------------------------------------------------------------------------


def _parse_toml(text: str, file: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
    # tomllib puts the position at the end of the message: "... (at line 3, column 7)",
    # or "(at end of document)".
    lines = text.split("\n")
    line, column = len(lines), len(lines[-1]) + 1
    position = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if position:
        line, column = int(position[1]), int(position[2])
        message = message[: position.start()]
    message = message.removesuffix(" (at end of document)")
    where = f"line {line}, column {column}"
    raise ConfigError(f"{file}: {where}: invalid TOML: {message}", file=file)


def _parse_json(text: str, file: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(f"{file}: {where}: invalid JSON: {exc.msg}", file=file) from None


def _parse_yaml(text: str, file: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "syntax error"
        if exc.problem and exc.context:
            what = f"{exc.problem} ({exc.context})"
        raise ConfigError(f"{file}: {where}invalid YAML: {what}", file=file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}", file=file) from None


_PARSERS: dict[str, Callable[[str, str], object]] = {
    ".toml": _parse_toml,
    ".json": _parse_json,
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
}


# --- selecting, interpolating, resolving paths -----------------------------------------


def _select(data: dict[Any, Any], name: str | None, file: str) -> tuple[Key, dict[Any, Any]]:
    """The key path and the options of the selected connection."""
    connections = _connections(data, file)
    if connections is None:
        if name is not None:
            raise ConfigError(
                f"{file}: no 'connections' table, so no connection named {name!r}", file=file
            )
        return (), data
    names = ", ".join(connections)
    if name is None:
        if len(connections) > 1:
            raise ConfigError(
                f"{file}: connections: several connections ({names}); choose one by name",
                file=file,
            )
        name = next(iter(connections))
    elif name not in connections:
        raise ConfigError(
            f"{file}: connections: no connection named {name!r} (available: {names})",
            file=file,
        )
    return _section(connections, name, file)


def _connections(data: dict[Any, Any], file: str) -> dict[str, Any] | None:
    """The file's ``connections`` table, checked; ``None`` for a file that is one
    connection."""
    if "connections" not in data:
        return None
    connections = data["connections"]
    if not isinstance(connections, dict):
        raise ConfigError(
            f"{file}: connections: expected a mapping of named connections, "
            f"got a {type(connections).__name__}",
            file=file,
        )
    for key in data:
        if key != "connections":
            raise ConfigError(
                f"{file}: {key}: not allowed beside 'connections' "
                "(options go under connections.<name>)",
                file=file,
            )
    if not connections:
        raise ConfigError(f"{file}: connections: no connection defined", file=file)
    for name in connections:
        if not isinstance(name, str):
            raise ConfigError(
                f"{file}: connections: connection names should be strings, got {name!r}",
                file=file,
            )
    return connections


def _section(connections: dict[str, Any], name: str, file: str) -> tuple[Key, dict[Any, Any]]:
    section = connections[name]
    if not isinstance(section, dict):
        raise ConfigError(
            f"{file}: connections.{name}: expected a mapping of options, "
            f"got a {type(section).__name__}",
            file=file,
        )
    return ("connections", name), section


def _interpolate(value: Any, key: Key, depth: int, file: str) -> Any:
    """``value`` with ``${VAR}`` references replaced in every string, at any depth.

    ``key`` is the key path of ``value``; its first ``depth`` parts lead to the
    connection (they are not part of the option's name).
    """
    if isinstance(value, str):
        return _substitute(value, key, depth, file)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*key, k), depth, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*key, i), depth, file) for i, v in enumerate(value)]
    return value


def _substitute(text: str, key: Key, depth: int, file: str) -> str:
    def replace(match: re.Match[str]) -> str:
        variable, default = match[1], match[2]
        if match[0] == "$$":
            return "$"
        if variable is None:
            problem = "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')"
        else:
            value = os.environ.get(variable)
            if default is not None:
                return value or default
            if value is not None:
                return value
            problem = (
                f"environment variable {variable!r} is not set "
                f"(write ${{{variable}:-default}} to give a default)"
            )
        option = _option_at(key[depth:])
        raise ConfigError(f"{file}: {dotted(key)}: {problem}", file=file, option=option)

    return _REFERENCE.sub(replace, text)


def _option_at(key: Key) -> str | None:
    """The option that the key path ``key`` (inside a connection) belongs to."""
    model: type[BaseModel] = Options
    names: list[str] = []
    for part in key:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            break
        names.append(str(part))
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            break
        model = field.annotation
    if not names and key[:1] == ("url",):
        names.append("url")
    return ".".join(names) or None


def _resolve_paths(section: dict[Any, Any], directory: str, model: type[BaseModel]) -> None:
    """Make the relative paths in ``section`` (options of ``model``) relative to
    ``directory``, in place. Values of the wrong type are left for validation."""
    for name, field in model.model_fields.items():
        value = section.get(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if isinstance(value, dict):
                section[name] = value = dict(value)
                _resolve_paths(value, directory, annotation)
        elif _is_path(field) and isinstance(value, str) and value:
            section[name] = os.path.join(directory, os.path.expanduser(value))


def _is_path(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, Mapping) and extra.get("format") == PATH["format"]


# --- dumping ---------------------------------------------------------------------------


def dump_options(options: Options, *, mask_secrets: bool = True) -> dict[str, Any]:
    """``options`` as plain JSON-able data (lists, dicts, strings, numbers, None).

    Every field is present, defaults included; ``ssl_options.context`` is left out.
    With ``mask_secrets`` the options of :data:`~statews.options.redact.SECRET_OPTIONS` read
    as ``repr(options)`` shows them: the SSL key password, the proxy's password, the
    values of headers named like a secret (Authorization, Proxy-Authorization, Cookie,
    anything with auth, token, secret, password, api-key, session, ...) and such query
    parameters in ``path`` read :data:`MASK`. Without it,
    :func:`~statews.options.model.resolve_options` of the result gives back equal options
    (when no ``context`` was set).
    """
    data = options.model_dump(mode="json")
    if not mask_secrets:
        password = options.ssl_options.password
        if password is not None:
            data["ssl_options"]["password"] = password.get_secret_value()
        return data
    for option in SECRET_OPTIONS:
        *groups, name = option.split(".")
        model: BaseModel = options
        section = data
        for group in groups:
            model, section = getattr(model, group), section[group]
        section[name] = to_jsonable_python(masked(option, getattr(model, name)))
    return data


# --- the JSON Schema of a file ---------------------------------------------------------


def config_json_schema_text() -> str:
    """:func:`config_json_schema` as ``statews schema`` prints it and
    ``specs/options.schema.json`` holds it: indented, keys sorted, a final newline."""
    return json.dumps(config_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration file, as :func:`load_config` reads it
    (``specs/options.schema.json``, ``statews schema``): one connection's options at
    the top level, or several under ``connections.<name>`` (nothing beside them), each
    as :func:`statews.options.json_schema` describes one connection (``$defs.Options``).
    Unknown keys are refused. Deterministic: the same schema on every call.
    """
    connection = json_schema()
    definitions = connection.pop("$defs", {})
    options = {"$ref": "#/$defs/Options"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "statews configuration file",
        "description": "The options of one connection at the top level, or of several "
        "under connections.<name>; load with statews.config.load_config(path, name).",
        "type": "object",
        "$defs": {**definitions, "Options": connection},
        "if": {"required": ["connections"]},
        "then": {
            "properties": {
                "connections": {
                    "description": "Named connections, each with its options.",
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": options,
                }
            },
            "additionalProperties": False,
        },
        "else": options,
    }
