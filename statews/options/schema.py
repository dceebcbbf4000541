"""What an option value may be: the field types of the options models with their
validation rules, and the JSON Schema of the options as files and mappings give them.

Invariants: every rule raises through :func:`invalid`, so pydantic reports it at the
field's location with our message (``Input should ...``), never as a "Value error";
the rules look at the value alone, and only accept, reject or normalise it (IPv6
brackets, header forms); :func:`input_json_schema` is deterministic.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainValidator
from pydantic_core import PydanticCustomError

from ..core.errors import OptionsError
from ..core.handshake import RESERVED_HEADERS
from ..core.http11 import TCHARS
from ..core.proxyconf import AUTO, parse_proxy_url
from .modes import Active as ActiveMode
from .modes import parse_active

__all__ = [
    "PATH",
    "RESERVED_HEADERS",
    "ALPNProtocols",
    "Active",
    "Count",
    "Delay",
    "FileName",
    "HTTP2Mode",
    "Headers",
    "Host",
    "IPAddress",
    "Port",
    "Protocols",
    "ProxySetting",
    "RequestPath",
    "Seconds",
    "Size",
    "WindowBits",
    "check_host",
    "input_json_schema",
    "invalid",
]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(TCHARS)
# Control characters except HTAB, which RFC 9110 allows inside a field value.
_CTL_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Characters that cannot appear in a host name without changing the URL's structure.
_BAD_HOST_CHAR = re.compile(r"[\x00-\x20\x7f/?#@\[\]\\%]")
_BAD_PATH_CHAR = re.compile(r"[\x00-\x20\x7f#]")


def invalid(message: str) -> PydanticCustomError:
    """The error a validation rule raises: pydantic reports ``message`` as it is."""
    # Without a context, pydantic leaves "{...}" in the message untouched.
    return PydanticCustomError("invalid_option", message)


# --- field types -----------------------------------------------------------------------


def _not_bool(value: object) -> object:
    # pydantic's lax mode reads True as 1; a boolean for a number is always a mistake.
    if isinstance(value, bool):
        raise invalid("Input should be a number, not a boolean")
    return value


def check_host(value: str) -> str:
    """``value`` as a host: a name, an IPv4 address, or an IPv6 one (returned without
    brackets). Raises the :func:`invalid` error otherwise."""
    if not value:
        raise invalid("Input should be a host name or an IP address, not empty")
    bad = re.search(r"[\x00-\x20\x7f]", value)
    if bad:
        raise invalid(f"Input should not contain {bad.group()!r}")
    bracketed = value.startswith("[") and value.endswith("]")
    inner = value[1:-1] if bracketed else value
    if bracketed or inner.count(":") > 1:
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise invalid(f"Input should be a valid IPv6 address, got {value!r}") from None
        return inner
    if ":" in value:
        raise invalid(f"Input should not contain a port, got {value!r} (use 'port')")
    bad = _BAD_HOST_CHAR.search(value)
    if bad:
        raise invalid(f"Input should be a host name or an IP address without {bad.group()!r}")
    return value


def _check_path(value: str) -> str:
    if not value.startswith("/"):
        raise invalid(f"Input should start with '/', got {value!r}")
    bad = _BAD_PATH_CHAR.search(value)
    if bad:
        raise invalid(f"Input should not contain {bad.group()!r}")
    if not value.isascii():
        raise invalid("Input should be ASCII (percent-encode other characters)")
    return value


def _parse_active(value: object) -> ActiveMode:
    try:
        return parse_active(value)
    except OptionsError as exc:
        # pydantic puts the location ("active: ") in front itself.
        raise invalid(str(exc).removeprefix("active: ")) from None


def _parse_headers(value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            if not isinstance(item, list | tuple) or len(item) != 2:
                raise invalid(f"item {index} should be a [name, value] pair")
            items.append((item[0], item[1]))
    else:
        raise invalid(
            "Input should be a mapping of names to values or a list of [name, value] pairs"
        )
    headers = []
    hosts = 0
    for name, text in items:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise invalid(f"{name!r} is not a valid header name (an HTTP token)")
        if name.lower() in RESERVED_HEADERS:
            hint = " (use 'protocols')" if name.lower() == "sec-websocket-protocol" else ""
            raise invalid(f"{name!r} is set by the handshake and cannot be given{hint}")
        hosts += name.lower() == "host"
        if hosts > 1:
            raise invalid("Host is given twice")
        if not isinstance(text, str):
            raise invalid(f"the value of {name!r} should be a string")
        if _CTL_IN_VALUE.search(text):
            raise invalid(
                f"the value of {name!r} should not contain CR, LF, NUL or other control characters"
            )
        headers.append((name, text))
    return tuple(headers)


def _check_token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise invalid(f"Input should be an HTTP token, got {value!r}")
    return value


def _check_unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise invalid(f"{value!r} is listed twice")
        seen.add(value)
    return values


def _check_ip_address(value: str) -> str:
    inner = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        raise invalid(f"Input should be an IP address, got {value!r}") from None
    return inner


def _check_alpn(value: str) -> str:
    if not value.isascii() or not 1 <= len(value) <= 255:
        raise invalid("Input should be 1 to 255 ASCII characters")
    return value


def _check_proxy(value: str | None) -> str | None:
    if value is None or value == AUTO:
        return value
    try:
        parse_proxy_url(value)
    except ValueError as exc:  # the message never holds the password
        raise invalid(f"Input should be a proxy URL, 'auto' or null: {exc}") from None
    return value


#: Marks the fields holding a file-system path: config files resolve relative ones
#: against their own directory. Also their JSON Schema "format".
PATH: dict[str, Any] = {"format": "path"}

# Numbers: finite, never a boolean. Seconds > 0 (None is written where "no limit" is allowed).
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_not_bool)]
Delay = Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(_not_bool)]
Size = Annotated[int, Field(ge=1), BeforeValidator(_not_bool)]
Count = Annotated[int, Field(ge=0), BeforeValidator(_not_bool)]
WindowBits = Annotated[int, Field(ge=9, le=15), BeforeValidator(_not_bool)]
Port = Annotated[int, Field(ge=1, le=65535), BeforeValidator(_not_bool)]
# Text that ends up on the wire or in a URL, checked for injection and structure.
Host = Annotated[str, AfterValidator(check_host)]
IPAddress = Annotated[str, AfterValidator(_check_ip_address)]
RequestPath = Annotated[str, AfterValidator(_check_path)]
FileName = Annotated[str, Field(min_length=1)]
# Values with several input forms, stored in one normalised form.
Active = Annotated[ActiveMode, PlainValidator(_parse_active)]
Headers = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_parse_headers)]
Protocols = Annotated[
    tuple[Annotated[str, AfterValidator(_check_token)], ...], AfterValidator(_check_unique)
]
ProxySetting = Annotated[str | None, AfterValidator(_check_proxy)]
ALPNProtocols = tuple[Annotated[str, AfterValidator(_check_alpn)], ...]
#: Whether WebSockets go over HTTP/2 (RFC 8441): see ``Options.http2``.
HTTP2Mode = Literal["never", "auto", "always"]


# --- JSON Schema ---------------------------------------------------------------------

_STRING = {"type": "string"}

#: The forms the validators accept where the model stores a normalised one.
_INPUT_FORMS: dict[str, dict[str, Any]] = {
    "headers": {
        "anyOf": [
            {"type": "object", "additionalProperties": _STRING},
            {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [_STRING, _STRING],
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        ]
    },
    "active": {"anyOf": [{"type": "boolean"}, {"const": "once", "type": "string"}]},
}

_URL = {
    "description": "ws:// or wss:// URL setting transport, host, port and path "
    "(user:password@ becomes an Authorization: Basic header); the other keys override it.",
    "title": "Url",
    "type": "string",
}


def input_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of ``model`` (a connection's options) as mappings and files give it.

    pydantic's schema of ``model``, with the input forms of ``headers`` (mapping or
    pairs) and ``active``, plus the ``url`` key that
    :func:`~statews.options.model.resolve_options` accepts, so ``host`` or ``url`` is required.
    """
    schema = model.model_json_schema()
    properties = schema["properties"]
    for name, form in _INPUT_FORMS.items():
        kept = {k: v for k, v in properties[name].items() if k in ("default", "description")}
        properties[name] = {**form, **kept, "title": properties[name]["title"]}
    schema["properties"] = {"url": dict(_URL), **properties}
    del schema["required"]
    schema["anyOf"] = [{"required": ["host"]}, {"required": ["url"]}]
    return schema
