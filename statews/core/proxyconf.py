"""The ``proxy`` option: proxy URLs, and which proxy a connection goes through.

* :class:`ProxyURL` and :func:`parse_proxy_url`: a proxy URL (``http://``, ``https://``,
  ``socks5://``, ``socks5h://``, optional ``user:password@``) as a record.
* :func:`select_proxy`: the option's semantics. A URL is used as is, ``None`` means a
  direct connection, ``"auto"`` (:data:`AUTO`, the default) asks the environment
  (:func:`environment_proxy`, :func:`no_proxy_matches`).

Invariants: pure functions of their arguments (the environment is passed in, never
read here); no I/O; a password never appears in a message, an error or a repr
(:attr:`ProxyURL.redacted`). The tunnels themselves are :mod:`statews.trio.proxy`'s.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import unquote, urlsplit

from .errors import OptionsError

__all__ = [
    "AUTO",
    "ProxyScheme",
    "ProxyURL",
    "environment_proxy",
    "ip_literal",
    "no_proxy_matches",
    "parse_proxy_url",
    "redact_proxy_setting",
    "select_proxy",
]

#: The ``proxy`` option's default: take the proxy from the environment.
AUTO = "auto"

ProxyScheme = Literal["http", "https", "socks5", "socks5h"]
_DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
_BAD_HOST_CHAR = re.compile(r"[\x00-\x20\x7f/?#@\[\]\\%]")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


# --- the proxy URL ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed proxy URL. ``host`` holds an IPv6 address without brackets; ``username``
    is ``None`` without credentials; ``password`` is ``""`` when only a user is given."""

    scheme: ProxyScheme
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def redacted(self) -> str:
        """The URL with the password replaced by ``***``: safe to log and show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        userinfo = "" if self.username is None else f"{self.username}:***@"
        return f"{self.scheme}://{userinfo}{host}:{self.port}"


def parse_proxy_url(text: str) -> ProxyURL:
    """Parse ``scheme://[user[:password]@]host[:port][/]``; userinfo is percent-decoded.

    The port defaults to 80 (http), 443 (https) or 1080 (socks5, socks5h).

    Raises:
        ValueError: not such a URL; the message never contains the password.
    """
    if _CONTROL.search(text):
        raise ValueError("contains a space or control character")
    scheme, separator, _ = text.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ValueError("should look like scheme://host:port")
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r} (use http, https, socks5 or socks5h)")
    parts = urlsplit(text)
    if parts.path not in ("", "/") or "?" in text or "#" in text:
        raise ValueError(
            "should have no path, query or fragment (percent-encode '/', '?' and '#' in "
            "user:password)"
        )
    userinfo, at, hostport = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret)
        if not username:
            raise ValueError("has '@' but no user name")
        if scheme.startswith("socks") and (
            len(username.encode()) > 255 or len(password.encode()) > 255
        ):
            raise ValueError("SOCKS5 user name and password are at most 255 bytes (RFC 1929)")
    host, port_text = _split_host_port(hostport)
    if host is None or (":" in host and not hostport.startswith("[")):
        raise ValueError("should put an IPv6 address in brackets and close them")
    if not host:
        raise ValueError("has no host")
    if ":" not in host and _BAD_HOST_CHAR.search(host):
        raise ValueError(f"has an invalid host {host!r}")
    port = _DEFAULT_PORTS[scheme]
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"should have a port from 1 to 65535, got {port_text!r}")
        port = int(port_text)
    return ProxyURL(cast(ProxyScheme, scheme), host, port, username, password)


def _split_host_port(text: str) -> tuple[str | None, str | None]:
    """``host[:port]`` or ``[v6][:port]`` as (host, port text); host ``None`` if malformed.

    Several colons without brackets are one IPv6 address without a port.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None, None
        try:
            ipaddress.IPv6Address(text[1:end])
        except ValueError:
            return None, None
        rest = text[end + 2 :]
        return text[1:end], rest if text[end + 1 :] else None
    if text.count(":") > 1:
        return text, None
    host, colon, port = text.partition(":")
    return host, port if colon else None


def redact_proxy_setting(setting: str | None, mask: str = "***") -> str | None:
    """The ``proxy`` option with its password (if any) replaced by ``mask``, for dumps."""
    if setting is None or setting == AUTO:
        return setting
    try:
        proxy = parse_proxy_url(setting)
    except ValueError:
        return mask
    if proxy.username is None:
        return setting
    return proxy.redacted.replace(":***@", f":{mask}@", 1)


# --- choosing the proxy ----------------------------------------------------------------


def select_proxy(
    setting: str | None,
    host: str,
    port: int,
    *,
    secure: bool,
    environ: Mapping[str, str],
) -> ProxyURL | None:
    """The proxy for a connection to ``host``:``port``, or ``None`` for a direct one.

    ``setting`` is the ``proxy`` option: a URL (used whatever the environment says),
    ``None`` (no proxy, the environment is ignored) or :data:`AUTO` (ask ``environ``
    with :func:`environment_proxy`; a value without ``scheme://`` means ``http://``).

    Raises:
        OptionsError: ``setting`` or the chosen environment variable is not a valid
            proxy URL (``option`` is ``"proxy"``; the message names the variable).
    """
    if setting is None:
        return None
    if setting != AUTO:
        try:
            return parse_proxy_url(setting)
        except ValueError as exc:
            raise OptionsError(f"proxy: {exc}", option="proxy") from None
    found = environment_proxy(host, port, secure=secure, environ=environ)
    if found is None:
        return None
    variable, value = found
    if "://" not in value:
        value = "http://" + value  # as curl: a bare host:port is an HTTP proxy
    try:
        return parse_proxy_url(value)
    except ValueError as exc:
        raise OptionsError(
            f"proxy: ${variable} is not a usable proxy URL: {exc}", option="proxy"
        ) from None


def environment_proxy(
    host: str, port: int, *, secure: bool, environ: Mapping[str, str]
) -> tuple[str, str] | None:
    """The (variable, value) naming the proxy ``environ`` sets for the target, or ``None``.

    Looked up in this order, lower case before upper case, empty values skipped:
    ``wss_proxy`` then ``https_proxy`` for wss (``ws_proxy`` then ``http_proxy`` for ws),
    then ``all_proxy``. ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (a CGI
    request can set it: "httpoxy"). ``no_proxy``/``NO_PROXY`` exempts targets
    (:func:`no_proxy_matches`). Loopback targets are not exempt by default: as curl
    and requests do, only ``no_proxy`` exempts them.
    """
    names = ("wss_proxy", "https_proxy") if secure else ("ws_proxy", "http_proxy")
    for name in (*names, "all_proxy"):
        for variable in (name, name.upper()):
            if variable == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
                continue
            value = environ.get(variable, "").strip()
            if not value:
                continue
            no_proxy = environ.get("no_proxy", "").strip() or environ.get("NO_PROXY", "")
            if no_proxy_matches(no_proxy, host, port):
                return None
            return variable, value
    return None


def no_proxy_matches(no_proxy: str, host: str, port: int) -> bool:
    """Whether the ``no_proxy`` list exempts ``host``:``port`` from the proxy.

    Entries are separated by commas or spaces, compared without case:

    * ``*`` exempts every target;
    * a name (``example.com``, ``.example.com`` or ``*.example.com``) exempts that
      domain and every name under it;
    * an IP address exempts that literal address, a CIDR block (``10.0.0.0/8``) the
      literal addresses in it: names are not resolved to be compared;
    * any entry may end in ``:port`` (an IPv6 address then in brackets), and then
      exempts only that port.
    """
    target = host.lower().rstrip(".")
    target_ip = ip_literal(target)
    for entry in re.split(r"[,\s]+", no_proxy.strip().lower()):
        if entry == "*":
            return True
        if not entry:
            continue
        entry_host, entry_port = _split_host_port(entry)
        if entry_host is None or (entry_port is not None and entry_port != str(port)):
            continue
        if "/" in entry_host:
            try:
                network = ipaddress.ip_network(entry_host, strict=False)
            except ValueError:
                continue
            if target_ip is not None and target_ip in network:
                return True
            continue
        entry_ip = ip_literal(entry_host)
        if entry_ip is not None or target_ip is not None:
            if entry_ip == target_ip:
                return True
            continue
        name = entry_host.removeprefix("*").lstrip(".").rstrip(".")
        if name and (target == name or target.endswith("." + name)):
            return True
    return False


def ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``text`` as an IP address (an IPv6 zone ignored), or ``None`` if it is not one."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
