"""The client side of the RFC 6455 section 4 opening handshake, sans I/O.

This module turns options into request bytes (:func:`build_request`), bytes from the
server into a :class:`Response` (:class:`ResponseParser`), and a response into the
negotiated result or an error (:func:`check_response`). It never touches a socket or
trio; it reads the clock only to turn a ``Retry-After`` date into seconds.

Invariants:

* :func:`build_request` validates everything before producing a byte: no CR, LF or
  NUL reaches the wire from any argument, so no argument can inject a header or a
  second request. It raises :class:`~statews.core.errors.OptionsError` and nothing else.
* The request is ``GET`` over HTTP/1.1 with the handshake headers in a fixed order;
  the handshake headers come only from the named arguments, never from ``headers``.
* :class:`ResponseParser` holds at most ``max_header_bytes`` of header data (all
  interim responses included) and ``max_body_bytes`` of body, whatever the peer sends;
  it scans each byte for the end of a line or block a bounded number of times.
* Header values are encoded as UTF-8 when sent and decoded as ISO-8859-1 when
  received, so that no received byte is lost or makes decoding fail.
* Every violation by the server raises :class:`~statews.core.errors.InvalidHandshake`,
  a non-101 answer :class:`~statews.core.errors.HandshakeRejected`; messages say what was
  expected and what came.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import ipaddress
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from importlib import metadata

from .errors import HandshakeRejected, InvalidHandshake, OptionsError
from .http11 import TCHARS, Response, ResponseParser, split_list

__all__ = [
    "DEFAULT_USER_AGENT",
    "RESERVED_HEADERS",
    "Accepted",
    "ExtensionOffer",
    "Response",
    "ResponseParser",
    "accept_key",
    "build_request",
    "check_agreement",
    "check_response",
    "format_extensions",
    "generate_key",
    "parse_extensions",
    "parse_retry_after",
    "rejection",
]


def _package_version() -> str:
    try:
        return metadata.version("statews")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1.0"


_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
#: Sent as ``User-Agent`` unless the caller passes another value, ``None``, or its own header.
DEFAULT_USER_AGENT = f"statews/{_package_version()} Python/{_PYTHON}"

#: RFC 6455 section 1.3: appended to the key before hashing.
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 7230 section 3.2.6: token = 1*tchar.
_TOKEN = re.compile(TCHARS)

#: Headers whose value the handshake itself decides (RFC 6455 section 4.1).
#: Content-Length and Transfer-Encoding too: the request has no body, they would make the
#: server wait for one.
RESERVED_HEADERS = frozenset(
    {"upgrade", "connection", "content-length", "transfer-encoding"}
    | {f"sec-websocket-{n}" for n in ("key", "version", "accept", "extensions", "protocol")}
)

#: Characters that may never appear in anything we send: they end lines or strings.
_FORBIDDEN = {"\r": "CR", "\n": "LF", "\0": "NUL"}


def generate_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- request


def _check_chars(value: str, option: str, what: str) -> None:
    """Raise OptionsError if ``value`` holds CR, LF, NUL or another control character."""
    for char in value:
        if char in _FORBIDDEN:
            raise OptionsError(f"{what} contains {_FORBIDDEN[char]}: {value!r}", option=option)
        if (char < " " and char != "\t") or char == "\x7f":
            raise OptionsError(f"{what} contains a control character: {value!r}", option=option)


def _host_header(host: str, port: int, secure: bool) -> str:
    _check_chars(host, "host", "host")
    if not host or " " in host or "\t" in host:
        raise OptionsError(f"host must be a non-empty name without spaces: {host!r}", option="host")
    if not host.isascii():
        try:  # RFC 3986 reg-name is ASCII; internationalised names travel as IDNA
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise OptionsError(f"host is not a valid IDNA name: {host!r}", option="host") from exc
    if ":" in host:
        literal = host.removeprefix("[").removesuffix("]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise OptionsError(
                f"host has ':' but is not an IPv6 address (give the port separately): {host!r}",
                option="host",
            ) from None
        # RFC 6874 4: a zone identifier is local to this host and is not sent.
        host = f"[{literal.partition('%')[0]}]"  # RFC 3986 IP-literal
    if not 0 < port < 65536:
        raise OptionsError(f"port must be in 1..65535, got {port}", option="port")
    default = 443 if secure else 80
    return host if port == default else f"{host}:{port}"


def _request_target(resource: str) -> str:
    _check_chars(resource, "resource", "resource")
    if not resource.startswith("/"):
        raise OptionsError(f"resource must start with '/': {resource!r}", option="resource")
    if " " in resource or "\t" in resource:
        raise OptionsError(f"resource contains whitespace: {resource!r}", option="resource")
    if "#" in resource:  # RFC 6455 3: fragments MUST NOT be used in WebSocket URIs
        raise OptionsError(f"resource contains a fragment: {resource!r}", option="resource")
    # A request-target is ASCII (RFC 3986); percent-encode the rest as UTF-8, like browsers.
    return "".join(
        c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in resource
    )


def build_request(
    *,
    host: str,
    port: int,
    secure: bool,
    resource: str,
    key: str,
    protocols: Sequence[str] = (),
    extensions: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str | None = DEFAULT_USER_AGENT,
) -> bytes:
    """The bytes of the opening handshake request (RFC 6455 section 4.1).

    ``GET resource HTTP/1.1``, then ``Host`` (with ``:port`` unless it is 80 for ws or
    443 for wss; IPv6 literals in brackets; non-ASCII names IDNA-encoded; a ``Host`` in
    ``headers`` replaces it in place), ``Upgrade``, ``Connection``, ``Sec-WebSocket-Key``,
    ``Sec-WebSocket-Version: 13``, ``Sec-WebSocket-Protocol`` when ``protocols`` is not
    empty, ``Sec-WebSocket-Extensions`` when ``extensions`` is given, ``User-Agent``
    unless ``user_agent`` is ``None`` or ``headers`` has one, then ``headers`` in order.
    Non-ASCII characters of ``resource`` are percent-encoded as UTF-8.

    Raises:
        OptionsError: before producing anything, with ``option`` naming the argument:
            CR, LF, NUL or another control character in any string; an empty host or
            one with spaces; a port outside 1..65535; a resource not starting with
            ``/`` or holding whitespace; a key that is not base64 of 16 bytes; a
            subprotocol that is not a token, or repeated (RFC 6455 4.1 wants unique
            ones); ``protocols`` given as a bare string; ``extensions`` that do not
            follow the RFC 6455 9.1 grammar; a header name that is not a token; a
            header the handshake owns (``Upgrade``, ``Connection``, ``Sec-WebSocket-*``)
            or that would announce a body (``Content-Length``, ``Transfer-Encoding``);
            two ``Host`` headers.
    """
    target = _request_target(resource)
    host_value = _host_header(host, port, secure)

    _check_chars(key, "key", "key")
    try:
        raw_key = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError):
        raw_key = b""
    if len(raw_key) != 16:
        raise OptionsError(f"key must be base64 of 16 bytes: {key!r}", option="key")

    if isinstance(protocols, str):  # a str is a Sequence[str]: "chat" would offer c, h, a, t
        raise OptionsError("protocols must be a list of names, not a string", option="protocols")
    for protocol in protocols:
        _check_chars(protocol, "protocols", "subprotocol")
        if not _TOKEN.fullmatch(protocol):
            raise OptionsError(f"subprotocol is not a token: {protocol!r}", option="protocols")
    if len(set(protocols)) != len(protocols):
        raise OptionsError(f"subprotocols repeat: {list(protocols)!r}", option="protocols")

    if extensions is not None:
        _check_chars(extensions, "extensions", "extensions")
        try:
            parse_extensions(extensions)
        except InvalidHandshake as exc:
            raise OptionsError(str(exc), option="extensions") from exc
    if user_agent is not None:
        _check_chars(user_agent, "user_agent", "user agent")

    extra: list[tuple[str, str]] = []
    has_user_agent = False
    host_given = False
    for name, value in headers:
        _check_chars(name, "headers", "header name")
        _check_chars(value, "headers", f"value of header {name!r}")
        if not _TOKEN.fullmatch(name):
            raise OptionsError(f"header name is not a token: {name!r}", option="headers")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS:
            raise OptionsError(
                f"header {name!r} is set by the handshake itself and may not be given in "
                "headers (subprotocols and extensions have their own options)",
                option="headers",
            )
        if lowered == "host":
            if host_given:
                raise OptionsError("headers give Host twice", option="headers")
            host_given = True
            host_value = value
            continue
        has_user_agent = has_user_agent or lowered == "user-agent"
        extra.append((name, value))

    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_value}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if user_agent is not None and not has_user_agent:
        lines.append(f"User-Agent: {user_agent}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


# -------------------------------------------------------------------------- response


@dataclass(frozen=True, slots=True)
class ExtensionOffer:
    """One element of a ``Sec-WebSocket-Extensions`` header: a name and its parameters.

    A parameter without ``=value`` has the value ``None``; quoted values are unquoted.
    """

    name: str
    params: tuple[tuple[str, str | None], ...] = ()


#: RFC 6455 9.1: a parameter value is a token or a quoted-string (RFC 7230 3.2.6).
_PARAM_VALUE = re.compile(rf'{TCHARS}|"(?:[^"\\]|\\.)*"')


def parse_extensions(value: str) -> list[ExtensionOffer]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 section 9.1).

    ``extension *( "," extension )`` with ``extension = name *( ";" param [ "=" value ] )``,
    whitespace allowed around separators, empty list elements ignored (RFC 7230 7).
    Values are tokens or quoted-strings whose unescaped content is a token.

    Raises:
        InvalidHandshake: bad syntax, a quoted value that is not a token, or no extension;
            the message gives the position and what was expected there.
    """
    pos = 0

    def fail(expected: str, at: int) -> InvalidHandshake:
        got = repr(value[at]) if at < len(value) else "the end"
        return InvalidHandshake(
            f"invalid Sec-WebSocket-Extensions {value!r}: expected {expected} at "
            f"position {at}, got {got}"
        )

    def skip(chars: str) -> str:  # skip ``chars``, return the next character or ""
        nonlocal pos
        while pos < len(value) and value[pos] in chars:
            pos += 1
        return value[pos : pos + 1]

    def take(pattern: re.Pattern[str], expected: str) -> str:
        nonlocal pos
        match = pattern.match(value, pos)
        if match is None:
            raise fail(expected, pos)
        pos = match.end()
        return match[0]

    offers: list[ExtensionOffer] = []
    while skip(" \t,"):
        name = take(_TOKEN, "an extension name")
        params: list[tuple[str, str | None]] = []
        while skip(" \t") == ";":
            pos += 1
            skip(" \t")
            param = take(_TOKEN, "a parameter name")
            param_value: str | None = None
            if skip(" \t") == "=":
                pos += 1
                skip(" \t")
                start = pos
                param_value = take(_PARAM_VALUE, "a token or quoted-string value")
                if param_value.startswith('"'):
                    param_value = re.sub(r"\\(.)", r"\1", param_value[1:-1])
                    if not _TOKEN.fullmatch(param_value):
                        raise fail("a quoted value that is a token (RFC 6455 9.1)", start)
            params.append((param, param_value))
        offers.append(ExtensionOffer(name, tuple(params)))
        if skip(" \t") not in ("", ","):
            raise fail("',' or ';'", pos)
    if not offers:
        raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions {value!r}: no extension")
    return offers


def format_extensions(offers: Sequence[ExtensionOffer]) -> str:
    """The ``Sec-WebSocket-Extensions`` value for ``offers``, e.g. ``"a; x=1, b"``.

    Raises:
        OptionsError: no offer, or a name, parameter name or value that is not a token
            (RFC 6455 9.1 allows nothing else, even quoted).
    """
    if not offers:
        raise OptionsError("no extension to format", option="extensions")
    parts: list[str] = []
    for offer in offers:
        items = [offer.name]
        items.extend(name if value is None else f"{name}={value}" for name, value in offer.params)
        for text in (offer.name, *(t for p in offer.params for t in p if t is not None)):
            if not _TOKEN.fullmatch(text):
                raise OptionsError(f"extension item is not a token: {text!r}", option="extensions")
        parts.append("; ".join(items))
    return ", ".join(parts)


# ---------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the server agreed to: the subprotocol and the extensions, in its order."""

    subprotocol: str | None
    extensions: tuple[ExtensionOffer, ...]


def _parse_http_date(value: str) -> float | None:
    """An HTTP-date (RFC 7231 7.1.1.1, all three forms) as a POSIX timestamp, or ``None``."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # not a date, or no such day or time
        return None
    if moment.tzinfo is None:  # the asctime() form has no zone: HTTP dates are in GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 7231 7.1.3), or ``None``.

    ``value`` is delta-seconds or an HTTP-date; a date is counted from ``now`` (a POSIX
    timestamp) and a date in the past gives 0. Anything else gives ``None``.
    """
    value = value.strip(" \t")
    if value.isascii() and value.isdigit():
        return float(int(value))
    when = _parse_http_date(value)
    return None if when is None else max(0.0, when - now)


def _retry_after(response: Response) -> float | None:
    value = response.get("Retry-After")
    if value is None:
        return None
    # Count from the server's own Date when it sent one, so clock skew cancels out.
    date = response.get("Date")
    now = time.time()
    server_now = None if date is None else _parse_http_date(date)
    return parse_retry_after(value, now if server_now is None else server_now)


def rejection(response: Response) -> HandshakeRejected:
    """The error reporting that the server refused the upgrade with ``response``
    (``retry_after`` parsed from delta-seconds or an HTTP-date, counted from the
    response's ``Date`` if any)."""
    return HandshakeRejected(
        response.status, response.reason, response.headers, response.body, _retry_after(response)
    )


def check_response(
    response: Response, *, key: str, protocols: Sequence[str], offered_extensions: Sequence[str]
) -> Accepted:
    """Verify the server's answer to the request sent with ``key`` (RFC 6455 4.1, 4.2.2).

    ``protocols`` are the subprotocols offered, ``offered_extensions`` the names of the
    extensions offered. Extension parameters are not checked here: each extension
    validates its own.

    Raises:
        HandshakeRejected: the status is not 101 (with ``retry_after`` parsed from
            delta-seconds or an HTTP-date, counted from the response's ``Date`` if any).
        InvalidHandshake: ``Upgrade`` is not ``websocket``; ``Connection`` lacks
            ``upgrade``; ``Sec-WebSocket-Accept`` is missing, repeated or wrong;
            ``Sec-WebSocket-Protocol`` names something not offered, more than one value,
            or anything when none was offered; an extension was not offered or the
            extensions header is malformed.
    """
    if response.status != 101:
        raise rejection(response)

    upgrade = split_list(response.get_all("Upgrade"))
    if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
        got = repr(", ".join(upgrade)) if upgrade else "no Upgrade header"
        raise InvalidHandshake(f"expected 'Upgrade: websocket', got {got}")

    connection = split_list(response.get_all("Connection"))
    if not any(token.lower() == "upgrade" for token in connection):
        got = repr(", ".join(connection)) if connection else "no Connection header"
        raise InvalidHandshake(f"expected 'Connection: Upgrade', got {got}")

    accepts = response.get_all("Sec-WebSocket-Accept")
    expected = accept_key(key)
    if not accepts:
        raise InvalidHandshake(f"missing Sec-WebSocket-Accept, expected {expected!r}")
    if len(accepts) > 1:
        raise InvalidHandshake(f"Sec-WebSocket-Accept repeated: {accepts!r}")
    if accepts[0] != expected:
        raise InvalidHandshake(
            f"wrong Sec-WebSocket-Accept: expected {expected!r}, got {accepts[0]!r}"
        )

    return check_agreement(response, protocols=protocols, offered_extensions=offered_extensions)


def check_agreement(
    response: Response, *, protocols: Sequence[str], offered_extensions: Sequence[str]
) -> Accepted:
    """The subprotocol and extensions ``response`` agreed to, checked against the offers
    (the part of the check that HTTP/1.1 and HTTP/2 openings share).

    Raises:
        InvalidHandshake: ``Sec-WebSocket-Protocol`` names something not offered, more
            than one value, or anything when none was offered; an extension was not
            offered or the extensions header is malformed.
    """
    subprotocol: str | None = None
    protocol_values = response.get_all("Sec-WebSocket-Protocol")
    if protocol_values:
        chosen = split_list(protocol_values)
        got = ", ".join(protocol_values)
        if not protocols:
            raise InvalidHandshake(f"Sec-WebSocket-Protocol {got!r} but no subprotocol was offered")
        if len(chosen) != 1 or chosen[0] not in protocols:
            raise InvalidHandshake(
                f"Sec-WebSocket-Protocol: expected one of {list(protocols)!r}, got {got!r}"
            )
        subprotocol = chosen[0]

    accepted: tuple[ExtensionOffer, ...] = ()
    extension_values = response.get_all("Sec-WebSocket-Extensions")
    if extension_values:
        accepted = tuple(parse_extensions(", ".join(extension_values)))
        for offer in accepted:
            if offer.name not in offered_extensions:  # names compare exactly
                raise InvalidHandshake(
                    f"server accepted extension {offer.name!r}, which was not offered "
                    f"(offered: {list(offered_extensions)!r})"
                )
    return Accepted(subprotocol, accepted)
