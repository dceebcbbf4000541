"""A ``ws://`` or ``wss://`` URL as the options it sets (pure, no I/O).

Invariants: the fields returned validate as :class:`~statews.options.model.Options`
fields (``transport``, ``host`` without brackets, ``port`` or None, ``path`` with its
query, percent-encoded printable ASCII); user:password becomes Basic credentials, never
a field; every refusal is a pydantic ``ValidationError`` located at ``url``, which the
model turns into an :class:`~statews.core.errors.OptionsError` like any other.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .schema import check_host, invalid

__all__ = ["invalid_at", "url_fields"]

_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


def invalid_at(loc: tuple[str | int, ...], message: str) -> ValidationError:
    """A ValidationError at ``loc``, so that every failure goes through one converter."""
    detail = InitErrorDetails(type=invalid(message), loc=loc, input=None)
    return ValidationError.from_exception_data("Options", [detail])


def url_fields(url: object) -> tuple[dict[str, Any], str | None]:
    """The options a ws:// URL sets, and its Basic credentials if it carries any."""
    if not isinstance(url, str):
        raise invalid_at(("url",), "Input should be a string")
    bad = re.search(r"[\x00-\x20\x7f]", url)
    if bad:
        raise invalid_at(("url",), f"Input should not contain {bad.group()!r}")
    if "#" in url:
        raise invalid_at(("url",), "Input should not have a fragment ('#...')")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise invalid_at(("url",), f"Input should be a valid URL ({exc})") from None
    if parts.scheme not in ("ws", "wss"):
        got = f"got scheme {parts.scheme!r}" if parts.scheme else "got no scheme"
        raise invalid_at(("url",), f"Input should be a ws:// or wss:// URL, {got}")
    if not url[len(parts.scheme) :].startswith("://"):
        raise invalid_at(("url",), f"Input should look like {parts.scheme}://host[:port]/path")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise invalid_at(("url",), "Input should close the IPv6 address with ']'")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise invalid_at(("url",), "Input should have ':port' after the IPv6 address")
        port_text = rest[1:] if rest else ""
        host = host.replace("%25", "%")  # RFC 6874 zone identifier
    elif hostport.count(":") > 1:
        raise invalid_at(("url",), "Input should have an IPv6 address in brackets")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise invalid_at(("url",), "Input should have a host")
    try:
        check_host(host)
    except PydanticCustomError as exc:
        raise invalid_at(("url",), f"bad host: {exc.message()}") from None
    port = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise invalid_at(
                ("url",), f"Input should have a port from 1 to 65535, got {port_text!r}"
            )
        port = int(port_text)
    path = quote(parts.path or "/", safe=_PRINTABLE_ASCII)
    if parts.query or url.endswith("?"):  # no fragment, so an empty query ends the URL
        path += "?" + quote(parts.query, safe=_PRINTABLE_ASCII)
    fields = {
        "transport": "ssl" if parts.scheme == "wss" else "tcp",
        "host": host,
        "port": port,
        "path": path,
    }
    credentials = None
    if at and userinfo:
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        credentials = "Basic " + base64.b64encode(pair).decode("ascii")
    return fields, credentials
