"""The delivery mode of a connection (hackney_ws's ``active``): its type and its one parser.

Every entry point reads a mode through :func:`parse_active`: the options model (so
``Options``, mappings and configuration files), ``statews connect --active`` and
``WebSocket.setopts``; so they all accept and refuse the same values. Kept free of trio
so that the options model, which is sans I/O, can use it.
"""

from __future__ import annotations

from typing import Literal

from ..core.errors import OptionsError

__all__ = ["Active", "parse_active"]

#: A delivery mode: passive (``False``), active (``True``), or one message (``"once"``).
Active = bool | Literal["once"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_active(value: object) -> Active:
    """``value`` as a delivery mode: ``True``, ``False`` or ``"once"``.

    Accepts the booleans and these strings, in any case and with surrounding spaces:
    ``"once"``; ``"true"``, ``"yes"``, ``"on"``, ``"1"``; ``"false"``, ``"no"``,
    ``"off"``, ``"0"``. Numbers and every other value are refused.

    Raises:
        OptionsError: ``value`` is none of these; ``option`` is ``"active"``, the
            message reads ``active: Input should be true, false or 'once', got ...``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "once":
            return "once"
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    shown = repr(value)
    if not isinstance(value, str | int | float | None) or len(shown) > 40:
        shown = type(value).__name__  # a container's repr would be long and might leak
    raise OptionsError(
        f"active: Input should be true, false or 'once', got {shown}", option="active"
    )
