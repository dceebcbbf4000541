"""What ``statews connect`` and ``check`` talk to: a target and flags, as Options.

A target is a configuration file (a name ending in .toml, .json, .yaml or .yml, without
``://``), a ``ws://``/``wss://`` URL, or a bare ``host:port[/path]``; ``-o key=value``
sets any option of the model (validated as a configuration file is), and the other
flags (``-H``, ``--origin``, ``--protocol``, ``--active``, ``-k``, ...) go on top.

Invariants: everything here is validated by the options model before any I/O; a
command line that parses but means nothing is a :class:`UsageError` (exit 2), an
invalid option an :class:`~statews.core.errors.OptionsError` naming it (exit 3).
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from collections.abc import Sequence
from typing import Any, Final

from ..core.errors import OptionsError
from ..options.config import load_config
from ..options.model import Options, resolve_options

__all__ = [
    "CONFIG_SUFFIXES",
    "UsageError",
    "connect_options",
    "is_config_file",
    "load_target",
    "option_overrides",
    "parse_header",
]

#: File name endings that make a ``connect``/``check`` target a configuration file.
CONFIG_SUFFIXES: Final = (".toml", ".json", ".yaml", ".yml")
# A bare host:port[/path] target: a name, an IPv4 address or a bracketed IPv6 address.
_BARE_TARGET = re.compile(r"(?:\[[0-9A-Fa-f:.%]+\]|[A-Za-z0-9._-]+):\d+(?:/.*)?")


class UsageError(Exception):
    """The command line is inconsistent in a way argparse cannot see."""


def load_target(target: str, name: str | None) -> Options:
    """The options a ``connect``/``check`` target names: a configuration file (a name
    ending in .toml, .json, .yaml or .yml, without ``://``), a URL, or a bare
    ``host:port[/path]`` for ``ws://host:port/path``.

    Raises:
        OptionsError: the file or the URL is invalid (``ConfigError`` for a file).
        UsageError: ``name`` given with a URL.
    """
    if is_config_file(target):
        return load_config(target, name)
    if name is not None:
        raise UsageError(f"--name selects a connection in a configuration file, not in {target}")
    if _BARE_TARGET.fullmatch(target):
        target = f"ws://{target}" if "/" in target else f"ws://{target}/"
    return resolve_options(target)


def is_config_file(target: str) -> bool:
    """Whether ``target`` names a configuration file rather than a URL."""
    return "://" not in target and target.lower().endswith(CONFIG_SUFFIXES)


def parse_header(text: str) -> tuple[str, str]:
    """``-H 'Name: value'`` as a (name, value) pair."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise UsageError(f"-H expects 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def option_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``-o key=value`` items as the nested mapping of options they set.

    Raises:
        UsageError: an item is not ``key=value``.
        OptionsError: a key sets both an option and options under it.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, equals, text = item.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise UsageError(f"-o expects key=value (dotted for groups), got {item!r}")
        node = result
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                group = ".".join(parts[: depth + 1])
                raise OptionsError(f"-o {key}: {group} is set to a value too", option=group)
        node[parts[-1]] = _option_value(text)
    return result


def _option_value(text: str) -> Any:
    """``text`` as JSON, else as a TOML value, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def connect_options(args: argparse.Namespace) -> Options:
    """The options of ``connect``: the target's, then ``-o``, then the other flags.

    Raises:
        OptionsError, UsageError: as :func:`load_target` and :func:`option_overrides`.
    """
    options = load_target(args.target, args.name)
    if args.option:
        try:
            options = resolve_options(options, **option_overrides(args.option))
        except OptionsError as exc:
            raise OptionsError(f"-o: {exc}", option=exc.option) from None
    overrides: dict[str, Any] = {}
    headers = [*map(parse_header, args.header)]
    if args.origin is not None:
        headers.append(("Origin", args.origin))
    if headers:
        overrides["headers"] = (*options.headers, *headers)
    if args.protocol:
        overrides["protocols"] = tuple(args.protocol)
    if args.active is not None:
        overrides["active"] = args.active
    if args.insecure:
        overrides["ssl_options"] = {"verify": False}
    if args.show_ping:
        overrides["control_frames"] = True
    if args.ping_interval is not None:
        overrides["ping_interval"] = None  # the command pings instead (Plan.ping_interval)
    return resolve_options(options, **overrides)
