"""Following a redirect of the opening handshake: the options of the next hop, sans I/O.

A server may answer the upgrade request with 301, 302, 303, 307 or 308 and a
``Location``; :func:`follow_redirect` turns that answer into the :class:`Options` of the
next request, or refuses it. The connection calls it in a loop, all hops within one
``connect_timeout`` (see :meth:`statews.WebSocket.connect`).

Invariants:

* Pure: no I/O, no clock; the result is validated :class:`Options` (through
  :func:`~statews.options.model.resolve_options`), equal to the current hop's options except
  for the URL and what the rules below remove.
* Never a downgrade: a ``wss://`` request is never followed to ``ws://`` or ``http://``.
* Credentials never cross an origin: when (scheme, host, port) changes, the
  ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` headers are dropped, and so are
  a ``Host`` header and ``ssl_options.server_hostname``, which name the old host. Once
  dropped they stay dropped, also if a later hop returns to the first origin.
* Bounded: at most ``max_redirects`` hops; the refusal carries the whole chain.
* Every refusal is a :class:`~statews.core.errors.RedirectError` with the redirect as
  ``__cause__``; a non-redirect answer, or any answer when ``max_redirects`` is 0, is
  re-raised unchanged as the :class:`~statews.core.errors.HandshakeRejected` it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..core.errors import HandshakeRejected, OptionsError, RedirectError
from ..options.model import Options, resolve_options

__all__ = ["CROSS_ORIGIN_HEADERS", "REDIRECT_STATUSES", "follow_redirect"]

#: RFC 9110 15.4: the statuses whose ``Location`` names where to repeat the request.
#: 303 is included: the upgrade request is a GET, which 303 keeps.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

#: Request headers (lower case) that are not sent to another origin: credentials, and
#: ``Host``, which names the old one.
CROSS_ORIGIN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "host"})

#: The schemes a ``Location`` may use, and what each one means for a WebSocket.
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def follow_redirect(options: Options, rejected: HandshakeRejected, chain: Sequence[str]) -> Options:
    """The options for the request that ``rejected`` (a redirect) points to.

    ``options`` are those of the request that was redirected, ``chain`` the URLs
    requested so far, the first one first and ``options.url`` last. ``Location`` may be
    an absolute ``ws``, ``wss``, ``http`` (taken as ``ws``) or ``https`` (``wss``) URL,
    or a reference relative to ``options.url``; a fragment is dropped (RFC 6455 3).

    Raises:
        HandshakeRejected: ``rejected`` itself, when its status is not a redirect or
            ``options.max_redirects`` is 0.
        RedirectError: ``Location`` is missing, invalid, another scheme, or carries
            ``user:password@``; it goes from ``wss`` to ``ws``; it leaves the origin
            of a ``unix_path`` connection; or this hop would exceed ``max_redirects``.
    """
    status = rejected.status
    if status not in REDIRECT_STATUSES or options.max_redirects == 0:
        raise rejected
    url, problem = _target(options, _header(rejected, "Location"), tuple(chain))
    if problem is None:
        try:
            moved = resolve_options(options, url=url)
        except OptionsError as exc:
            problem = f"redirect to an invalid URL: {exc}"
    if problem is not None:
        hops = (*chain, url) if url is not None else tuple(chain)
        raise RedirectError(problem, chain=hops, status=status) from rejected
    if _origin(moved) == _origin(options):
        return moved
    if options.unix_path is not None:
        shown = " -> ".join((*chain, moved.url))
        raise RedirectError(
            f"redirect leaves the origin of a unix_path connection: {shown}",
            chain=(*chain, moved.url),
            status=status,
        ) from rejected
    changes: dict[str, Any] = {
        "headers": tuple(
            (name, value)
            for name, value in options.headers
            if name.lower() not in CROSS_ORIGIN_HEADERS
        )
    }
    if options.ssl_options.server_hostname is not None and moved.host != options.host:
        changes["ssl_options"] = {"server_hostname": None}
    return resolve_options(moved, **changes)


def _target(
    options: Options, location: str | None, chain: tuple[str, ...]
) -> tuple[str | None, str | None]:
    """The ws/wss URL that ``location`` points to (``None`` if there is none), and what
    forbids following it (``None`` if nothing does)."""
    if location is None:
        return None, "redirect without a Location header"
    absolute = _absolute(options, location)
    if absolute is None:
        return None, f"redirect to an invalid Location {location!r}"
    parts = urlsplit(absolute)
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None:
        return absolute, f"redirect to a non-WebSocket URL {absolute!r}"
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL the server chose are refused, and not repeated in errors.
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        return urlunsplit((scheme, *parts[1:])), "redirect to a URL with user:password@"
    url = urlunsplit((scheme, *parts[1:]))
    shown = " -> ".join((*chain, url))
    if len(chain) > options.max_redirects:
        return url, f"more than max_redirects={options.max_redirects} redirects: {shown}"
    if options.secure and scheme != "wss":
        return url, f"redirect would downgrade wss to ws: {shown}"
    return url, None


def _header(rejected: HandshakeRejected, name: str) -> str | None:
    lowered = name.lower()
    return next((v for n, v in rejected.headers if n.lower() == lowered), None)


def _absolute(options: Options, location: str) -> str | None:
    """``location`` as an absolute URL without fragment, resolved against ``options.url``;
    ``None`` when it is not a URL reference."""
    # Header values arrive decoded as ISO-8859-1; a server sending non-ASCII sends UTF-8.
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    if not location or any(c <= " " or c == "\x7f" for c in location):
        return None
    # Resolve against the http(s) twin of the URL: urljoin's rules for http(s) are the
    # RFC 3986 ones, and http maps back to ws, https to wss.
    scheme, rest = options.url.split(":", 1)
    base = ("https" if scheme == "wss" else "http") + ":" + rest
    try:
        parts = urlsplit(urljoin(base, location))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if not parts.scheme:
        return None
    return urlunsplit((*parts[:4], ""))


def _origin(options: Options) -> tuple[bool, str, int]:
    return options.secure, options.host.lower(), options.effective_port
