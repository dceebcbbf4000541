"""Tests for statews.handshake: request bytes, response parsing, verification, extensions."""

from __future__ import annotations

import base64
import calendar
import itertools
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire import upgrade_response

from statews.core.errors import HandshakeRejected, InvalidHandshake, InvalidStateError, OptionsError
from statews.core.handshake import (
    DEFAULT_USER_AGENT,
    Accepted,
    ExtensionOffer,
    Response,
    ResponseParser,
    accept_key,
    build_request,
    check_response,
    format_extensions,
    generate_key,
    parse_extensions,
    parse_retry_after,
)

# RFC 6455 section 1.3 example.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def request(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def head(target: str = "/chat", host: str = "example.com") -> list[str]:
    return [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]


# ----------------------------------------------------------------------------- keys


def test_accept_key_rfc6455_example() -> None:
    assert accept_key(KEY) == ACCEPT


def test_generate_key_is_base64_of_16_random_bytes() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


def test_default_user_agent() -> None:
    assert DEFAULT_USER_AGENT.startswith("statews/")
    assert " Python/3." in DEFAULT_USER_AGENT


# -------------------------------------------------------------------------- request

BASE: dict[str, Any] = {
    "host": "example.com",
    "port": 80,
    "secure": False,
    "resource": "/chat",
    "key": KEY,
    "user_agent": None,
}

REQUESTS: list[tuple[str, dict[str, Any], bytes]] = [
    ("ws default port", {}, request(*head())),
    ("ws other port", {"port": 8080}, request(*head(host="example.com:8080"))),
    ("ws on 443", {"port": 443}, request(*head(host="example.com:443"))),
    ("wss default port", {"secure": True, "port": 443}, request(*head())),
    ("wss on 80", {"secure": True, "port": 80}, request(*head(host="example.com:80"))),
    ("wss other port", {"secure": True, "port": 8443}, request(*head(host="example.com:8443"))),
    ("ipv6 other port", {"host": "::1", "port": 8080}, request(*head(host="[::1]:8080"))),
    ("ipv6 default port", {"host": "::1"}, request(*head(host="[::1]"))),
    (
        "ipv6 bracketed",
        {"host": "[2001:db8::1]", "port": 81},
        request(*head(host="[2001:db8::1]:81")),
    ),
    ("ipv6 zone dropped", {"host": "fe80::1%eth0"}, request(*head(host="[fe80::1]"))),
    ("ipv4", {"host": "127.0.0.1", "port": 9000}, request(*head(host="127.0.0.1:9000"))),
    ("idna host", {"host": "bücher.example"}, request(*head(host="xn--bcher-kva.example"))),
    ("query", {"resource": "/a/b?x=1&y=%20"}, request(*head(target="/a/b?x=1&y=%20"))),
    ("root", {"resource": "/"}, request(*head(target="/"))),
    ("non-ascii path", {"resource": "/café?q=é"}, request(*head(target="/caf%C3%A9?q=%C3%A9"))),
    (
        "protocols",
        {"protocols": ["chat", "superchat"]},
        request(*head(), "Sec-WebSocket-Protocol: chat, superchat"),
    ),
    (
        "extensions",
        {"extensions": "permessage-deflate; client_max_window_bits"},
        request(*head(), "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
    ),
    (
        "default user agent",
        {"user_agent": DEFAULT_USER_AGENT},
        request(*head(), f"User-Agent: {DEFAULT_USER_AGENT}"),
    ),
    ("custom user agent", {"user_agent": "bot/1"}, request(*head(), "User-Agent: bot/1")),
    (
        "extra headers in order, repeats kept",
        {"headers": [("Origin", "https://a"), ("Cookie", "a=1"), ("cookie", "b=2")]},
        request(*head(), "Origin: https://a", "Cookie: a=1", "cookie: b=2"),
    ),
    (
        "user agent given in headers wins",
        {"user_agent": "ignored/1", "headers": [("X-A", "1"), ("user-agent", "mine/2")]},
        request(*head(), "X-A: 1", "user-agent: mine/2"),
    ),
    (
        "host override replaces in place",
        {"port": 8080, "headers": [("X-A", "1"), ("HOST", "proxy.example:1")]},
        request(*head(host="proxy.example:1"), "X-A: 1"),
    ),
    (
        "everything",
        {
            "secure": True,
            "port": 443,
            "protocols": ["v2.chat"],
            "extensions": "x-a, x-b; p=1",
            "user_agent": "ua",
            "headers": [("Authorization", "Bearer t\tok")],
        },
        request(
            *head(),
            "Sec-WebSocket-Protocol: v2.chat",
            "Sec-WebSocket-Extensions: x-a, x-b; p=1",
            "User-Agent: ua",
            "Authorization: Bearer t\tok",
        ),
    ),
    ("utf-8 header value", {"headers": [("X-Name", "zoë")]}, request(*head(), "X-Name: zoë")),
]


@pytest.mark.parametrize(
    ("overrides", "expected"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS]
)
def test_build_request(overrides: dict[str, Any], expected: bytes) -> None:
    assert build_request(**{**BASE, **overrides}) == expected


def test_build_request_default_user_agent_is_sent() -> None:
    kwargs = {k: v for k, v in BASE.items() if k != "user_agent"}
    assert build_request(**kwargs).endswith(f"User-Agent: {DEFAULT_USER_AGENT}\r\n\r\n".encode())


INJECTION_FIELDS: list[tuple[str, Any, str]] = [
    # (name, function of the bad string -> overrides, option reported)
    ("host", lambda s: {"host": f"exa{s}mple.com"}, "host"),
    ("resource", lambda s: {"resource": f"/a{s}b"}, "resource"),
    ("protocol", lambda s: {"protocols": ["ok", f"c{s}hat"]}, "protocols"),
    ("header name", lambda s: {"headers": [(f"X{s}Y", "v")]}, "headers"),
    ("header value", lambda s: {"headers": [("X-Y", f"v{s}Evil: 1")]}, "headers"),
    ("host override", lambda s: {"headers": [("Host", f"a{s}b")]}, "headers"),
    ("user agent", lambda s: {"user_agent": f"ua{s}"}, "user_agent"),
    ("extensions", lambda s: {"extensions": f"x-a{s}"}, "extensions"),
    ("key", lambda s: {"key": KEY[:-2] + s + "="}, "key"),
]


@pytest.mark.parametrize("char", ["\r", "\n", "\0", "\r\n"], ids=["CR", "LF", "NUL", "CRLF"])
@pytest.mark.parametrize(
    ("make", "option"), [f[1:] for f in INJECTION_FIELDS], ids=[f[0] for f in INJECTION_FIELDS]
)
def test_build_request_rejects_injection(make: Any, option: str, char: str) -> None:
    with pytest.raises(OptionsError) as info:
        build_request(**{**BASE, **make(char)})
    assert info.value.option == option
    name = {"\r": "CR", "\n": "LF", "\0": "NUL", "\r\n": "CR"}[char]
    assert f"contains {name}" in str(info.value)


RESERVED = [
    "Upgrade",
    "connection",
    "Sec-WebSocket-Key",
    "SEC-WEBSOCKET-VERSION",
    "sec-websocket-accept",
    "Sec-WebSocket-Extensions",
    "Sec-Websocket-Protocol",
    "Content-Length",
    "Transfer-Encoding",
]


@pytest.mark.parametrize("name", RESERVED)
def test_build_request_rejects_reserved_header(name: str) -> None:
    with pytest.raises(OptionsError, match="set by the handshake itself") as info:
        build_request(**{**BASE, "headers": [("X-Ok", "1"), (name, "x")]})
    assert info.value.option == "headers"


BAD_OPTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("header name not a token", {"headers": [("X Y", "v")]}, "headers", "not a token"),
    ("header name with colon", {"headers": [("X:Y", "v")]}, "headers", "not a token"),
    ("empty header name", {"headers": [("", "v")]}, "headers", "not a token"),
    ("non-ascii header name", {"headers": [("Xé", "v")]}, "headers", "not a token"),
    ("control char in value", {"headers": [("X", "a\x01b")]}, "headers", "control character"),
    ("DEL in value", {"headers": [("X", "a\x7fb")]}, "headers", "control character"),
    ("two hosts", {"headers": [("Host", "a"), ("host", "b")]}, "headers", "Host twice"),
    ("protocol not a token", {"protocols": ["a b"]}, "protocols", "not a token"),
    ("protocol with comma", {"protocols": ["a,b"]}, "protocols", "not a token"),
    ("empty protocol", {"protocols": [""]}, "protocols", "not a token"),
    ("repeated protocols", {"protocols": ["a", "b", "a"]}, "protocols", "repeat"),
    ("protocols as a string", {"protocols": "chat"}, "protocols", "not a string"),
    ("resource without slash", {"resource": "chat"}, "resource", "start with '/'"),
    ("empty resource", {"resource": ""}, "resource", "start with '/'"),
    ("absolute-form resource", {"resource": "http://x/"}, "resource", "start with '/'"),
    ("space in resource", {"resource": "/a b"}, "resource", "whitespace"),
    ("tab in resource", {"resource": "/a\tb"}, "resource", "whitespace"),
    ("fragment in resource", {"resource": "/a#b"}, "resource", "fragment"),
    ("empty host", {"host": ""}, "host", "non-empty"),
    ("space in host", {"host": "a b"}, "host", "without spaces"),
    ("host with port", {"host": "example.com:80"}, "host", "not an IPv6 address"),
    ("bad ipv6", {"host": "1:2:3"}, "host", "not an IPv6 address"),
    ("bad idna", {"host": "exämple..com"}, "host", "IDNA"),
    ("port 0", {"port": 0}, "port", "1..65535"),
    ("port too big", {"port": 65536}, "port", "1..65535"),
    ("key too short", {"key": "dGhl"}, "key", "16 bytes"),
    ("key not base64", {"key": "!" * 24}, "key", "16 bytes"),
    ("key non-ascii", {"key": "é" * 24}, "key", "16 bytes"),
    (
        "extensions bad syntax",
        {"extensions": "a;;b"},
        "extensions",
        "expected a parameter name at position 2",
    ),
    ("extensions empty", {"extensions": ""}, "extensions", "no extension"),
]


@pytest.mark.parametrize(
    ("overrides", "option", "message"),
    [b[1:] for b in BAD_OPTIONS],
    ids=[b[0] for b in BAD_OPTIONS],
)
def test_build_request_rejects_bad_options(
    overrides: dict[str, Any], option: str, message: str
) -> None:
    with pytest.raises(OptionsError, match=message) as info:
        build_request(**{**BASE, **overrides})
    assert info.value.option == option
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------ response parsing

UPGRADE = upgrade_response(ACCEPT)
UPGRADE_HEADERS = (
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Accept", ACCEPT),
)
FRAMES = b"\x81\x05hello\x88\x02\x03\xe8"
LIMIT_BLOCK = b"HTTP/1.1 101 OK\r\nX: " + b"a" * 40 + b"\r\n\r\n"


def feed_chunks(
    parser: ResponseParser, chunks: list[bytes], eof: bool = False
) -> tuple[Response, bytes]:
    """Feed ``chunks``; return the response and the bytes not fed after it."""
    for i, chunk in enumerate(chunks):
        response = parser.feed(chunk)
        if response is not None:
            return response, b"".join(chunks[i + 1 :])
    assert eof, "the response never completed"
    return parser.feed_eof(), b""


def check_parsed(
    parser: ResponseParser, result: tuple[Response, bytes], expected: Response, trailing: bytes
) -> None:
    response, rest = result
    assert response == expected
    if response.status == 101:  # what follows the header block are frames, kept in order
        assert parser.trailing + rest == trailing
    else:
        assert parser.trailing == b""


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


# (id, wire bytes, expected response, expected trailing, needs eof, parser kwargs)
RESPONSES: list[tuple[str, bytes, Response, bytes, bool, dict[str, int]]] = [
    ("101 alone", UPGRADE, Response(101, "Switching Protocols", UPGRADE_HEADERS), b"", False, {}),
    (
        "101 then frames",
        UPGRADE + FRAMES,
        Response(101, "Switching Protocols", UPGRADE_HEADERS),
        FRAMES,
        False,
        {},
    ),
    (
        "100 Continue then 101",
        b"HTTP/1.1 100 Continue\r\n\r\n" + UPGRADE + FRAMES,
        Response(101, "Switching Protocols", UPGRADE_HEADERS),
        FRAMES,
        False,
        {},
    ),
    (
        "102 and 103 with headers then 101",
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + UPGRADE,
        Response(101, "Switching Protocols", UPGRADE_HEADERS),
        b"",
        False,
        {},
    ),
    (
        "101 without reason, OWS and case kept",
        b"HTTP/1.1 101\r\nUPGRADE:WebSocket\r\nconnection: \t upgrade \t\r\nX-Empty:\r\n\r\n",
        Response(101, "", (("UPGRADE", "WebSocket"), ("connection", "upgrade"), ("X-Empty", ""))),
        b"",
        False,
        {},
    ),
    (
        "101 with empty reason",
        b"HTTP/1.1 101 \r\n\r\n",
        Response(101, "", ()),
        b"",
        False,
        {},
    ),
    (
        "401 with Content-Length body",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nWWW-Authenticate: Basic\r\n\r\n"
        b"who are you?",
        Response(
            401,
            "Unauthorized",
            (("Content-Length", "12"), ("WWW-Authenticate", "Basic")),
            b"who are you?",
        ),
        b"",
        False,
        {},
    ),
    (
        "403 over HTTP/1.0, repeated equal Content-Length",
        b"HTTP/1.0 403 Forbidden\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\nno!",
        Response(403, "Forbidden", (("Content-Length", "3"), ("content-length", "3, 3")), b"no!"),
        b"",
        False,
        {},
    ),
    (
        "Content-Length 0",
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        Response(400, "Bad Request", (("Content-Length", "0"),)),
        b"",
        False,
        {},
    ),
    (
        "chunked with extensions and trailer",
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
        b"1;ext=1 \r\n,\r\n"
        b"A \t; x\r\n world!!!!\r\n"
        b"0\r\nX-Trailer: yes\r\n\r\n",
        Response(500, "Oops", (("Transfer-Encoding", "chunked"),), b"hello, world!!!!"),
        b"",
        False,
        {},
    ),
    (
        "chunked overrides Content-Length",
        b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        Response(
            503,
            "Busy",
            (("Content-Length", "100"), ("Transfer-Encoding", "gzip, Chunked")),
            b"abc",
        ),
        b"",
        False,
        {},
    ),
    (
        "close-delimited body",
        b"HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\nnothing here\r\n\r\n",
        Response(404, "Not Found", (("Server", "x"),), b"nothing here\r\n\r\n"),
        b"",
        True,
        {},
    ),
    (
        "non-chunked transfer coding reads until close",
        b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked, gzip\r\n\r\n\x1f\x8b",
        Response(502, "Bad Gateway", (("Transfer-Encoding", "chunked, gzip"),), b"\x1f\x8b"),
        b"",
        True,
        {},
    ),
    (
        "204 has no body",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        Response(204, "No Content", (("Content-Length", "5"),)),
        b"",
        False,
        {},
    ),
    (
        "304 has no body",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        Response(304, "Not Modified", (("Transfer-Encoding", "chunked"),)),
        b"",
        False,
        {},
    ),
    (
        "obs-text decoded as latin-1",
        b"HTTP/1.1 418 I\xe2\x80\x99m a teapot\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n",
        Response(
            418,
            "I\xe2\x80\x99m a teapot",
            (("X-Name", "caf\xe9"), ("Content-Length", "0")),
        ),
        b"",
        False,
        {},
    ),
    (
        "Content-Length body capped",
        b"HTTP/1.1 401 No\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000,
        Response(401, "No", (("Content-Length", "1000"),), b"x" * 10),
        b"",
        False,
        {"max_body_bytes": 10},
    ),
    (
        "chunked body capped",
        b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n",
        Response(401, "No", (("Transfer-Encoding", "chunked"),), b"abcdef"),
        b"",
        False,
        {"max_body_bytes": 6},
    ),
    (
        "close-delimited body capped",
        b"HTTP/1.1 401 No\r\n\r\n" + b"y" * 100,
        Response(401, "No", (), b"y" * 7),
        b"",
        False,
        {"max_body_bytes": 7},
    ),
    (
        "zero body cap",
        b"HTTP/1.1 401 No\r\nContent-Length: 5\r\n\r\nabcde",
        Response(401, "No", (("Content-Length", "5"),), b""),
        b"",
        False,
        {"max_body_bytes": 0},
    ),
    (
        "body exactly at the cap",
        b"HTTP/1.1 401 No\r\nContent-Length: 5\r\n\r\nabcde",
        Response(401, "No", (("Content-Length", "5"),), b"abcde"),
        b"",
        False,
        {"max_body_bytes": 5},
    ),
    (
        "header block exactly at the limit",
        LIMIT_BLOCK + FRAMES,
        Response(101, "OK", (("X", "a" * 40),)),
        FRAMES,
        False,
        {"max_header_bytes": len(LIMIT_BLOCK)},
    ),
]
RESPONSE_IDS = [r[0] for r in RESPONSES]
RESPONSE_CASES = [r[1:] for r in RESPONSES]
CASE_ARGS = ("wire", "expected", "trailing", "eof", "kwargs")


@pytest.mark.parametrize(CASE_ARGS, RESPONSE_CASES, ids=RESPONSE_IDS)
def test_parse_all_at_once(
    wire: bytes, expected: Response, trailing: bytes, eof: bool, kwargs: dict[str, int]
) -> None:
    parser = ResponseParser(**kwargs)
    check_parsed(parser, feed_chunks(parser, [wire], eof), expected, trailing)


@pytest.mark.parametrize(CASE_ARGS, RESPONSE_CASES, ids=RESPONSE_IDS)
def test_parse_byte_by_byte(
    wire: bytes, expected: Response, trailing: bytes, eof: bool, kwargs: dict[str, int]
) -> None:
    parser = ResponseParser(**kwargs)
    pieces = [wire[i : i + 1] for i in range(len(wire))]
    check_parsed(parser, feed_chunks(parser, pieces, eof), expected, trailing)


@given(case=st.sampled_from(RESPONSE_CASES), data=st.data())
def test_parse_any_split(case: tuple[Any, ...], data: st.DataObject) -> None:
    wire, expected, trailing, eof, kwargs = case
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12))
    parser = ResponseParser(**kwargs)
    check_parsed(parser, feed_chunks(parser, split(wire, cuts), eof), expected, trailing)


def test_cap_reported_without_waiting_for_the_rest() -> None:
    parser = ResponseParser(max_body_bytes=4)
    assert parser.feed(b"HTTP/1.1 401 No\r\nContent-Length: 1000\r\n\r\nabc") is None
    response = parser.feed(b"d")
    assert response is not None
    assert response.body == b"abcd"


def test_close_delimited_body_waits_for_eof() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 403 No\r\n\r\npartial") is None
    assert parser.feed(b" body") is None
    assert parser.feed(b"") is None
    assert parser.feed_eof() == Response(403, "No", (), b"partial body")


def test_feed_empty_is_not_eof() -> None:
    parser = ResponseParser()
    assert parser.feed(b"") is None
    assert parser.feed(UPGRADE) is not None


def test_trailing_empty_before_and_for_non_101() -> None:
    parser = ResponseParser()
    assert parser.trailing == b""
    parser.feed(b"HTTP/1.1 400 Bad\r\nContent-Length: 1\r\n\r\nxEXTRA")
    assert parser.trailing == b""


def test_response_get_and_get_all() -> None:
    response = Response(200, "OK", (("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")), b"")
    assert response.get("SET-COOKIE") == "a=1"
    assert response.get_all("set-Cookie") == ["a=1", "b=2"]
    assert response.get("missing") is None
    assert response.get_all("missing") == []


# --------------------------------------------------------------- response: failures


def test_header_limit_without_line_endings() -> None:
    parser = ResponseParser(max_header_bytes=100)
    assert parser.feed(b"H" * 99) is None  # 99 bytes + a terminator is over, but not yet known
    with pytest.raises(InvalidHandshake, match="max_header_bytes=100"):
        parser.feed(b"H")


def test_header_limit_checked_before_a_line_ends_in_one_big_chunk() -> None:
    parser = ResponseParser(max_header_bytes=1000)
    with pytest.raises(InvalidHandshake, match="exceeds max_header_bytes=1000"):
        parser.feed(b"HTTP/1.1 101 OK\r\nX: " + b"a" * 10_000_000)


def test_header_limit_with_line_endings() -> None:
    assert ResponseParser(max_header_bytes=len(LIMIT_BLOCK)).feed(LIMIT_BLOCK) is not None
    parser = ResponseParser(max_header_bytes=len(LIMIT_BLOCK) - 1)
    with pytest.raises(InvalidHandshake, match="exceeds"):
        parser.feed(LIMIT_BLOCK)


def test_header_limit_one_byte_at_a_time() -> None:
    parser = ResponseParser(max_header_bytes=50)
    wire = b"HTTP/1.1 101 OK\r\n" + b"X-A: b\r\n" * 10 + b"\r\n"
    for i in range(49):
        assert parser.feed(wire[i : i + 1]) is None
    with pytest.raises(InvalidHandshake, match="exceeds"):  # the byte that reaches the limit
        parser.feed(wire[49:50])


def test_header_limit_counts_interim_responses() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    limit = len(interim) + len(UPGRADE) - 1
    parser = ResponseParser(max_header_bytes=limit)
    with pytest.raises(InvalidHandshake, match=f"{len(interim)} used by interim responses"):
        parser.feed(interim + UPGRADE)
    assert ResponseParser(max_header_bytes=limit + 1).feed(interim + UPGRADE) is not None


def test_endless_interim_responses_hit_the_limit() -> None:
    parser = ResponseParser(max_header_bytes=1000)
    with pytest.raises(InvalidHandshake, match="exceeds"):
        parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)


BAD_STATUS_LINES = [
    b"HTTP/1.0 101 Switching Protocols",
    b"HTTP/2 101 Switching Protocols",
    b"HTTP/2.0 101 Switching Protocols",
    b"HTTP/1.2 101 Switching Protocols",
    b"HTTP/1.1 1010 Switching Protocols",
    b"HTTP/1.1 10 Switching",
    b"HTTP/1.1 abc Switching",
    b"HTTP/1.1 600 Nope",
    b"HTTP/1.1 099 Nope",
    b"http/1.1 101 Switching Protocols",
    b"HTTP/1.1  101 Switching Protocols",
    b"HTTP/1.1\t101 Switching Protocols",
    b"ICY 200 OK",
    b"",
    b"HTTP/1.1 101 Swi\x00tching",
    b"HTTP/1.1 101 Swi\rtching",
    b"HTTP/1.1 101 Switching\nUpgrade: websocket",
    b" HTTP/1.1 101 Switching Protocols",
]


@pytest.mark.parametrize("line", BAD_STATUS_LINES)
def test_bad_status_line(line: bytes) -> None:
    with pytest.raises(InvalidHandshake, match=r"status line|HTTP/1\.1|status code"):
        ResponseParser().feed(line + b"\r\nUpgrade: websocket\r\n\r\n")


BAD_HEADER_LINES = [
    (b"NoColon", "malformed header line"),
    (b"Name : value", "malformed header line"),
    (b": value", "malformed header line"),
    (b"Na me: value", "malformed header line"),
    (b"N\xe9: value", "malformed header line"),
    (b"X: a\x00b", "CR, LF or NUL"),
    (b"X: a\rb", "CR, LF or NUL"),
    (b"X: a\nb", "CR, LF or NUL"),
    (b" folded", "obsolete header line folding"),
    (b"\tfolded", "obsolete header line folding"),
]


@pytest.mark.parametrize(("line", "message"), BAD_HEADER_LINES)
def test_bad_header_line(line: bytes, message: str) -> None:
    wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + line + b"\r\n\r\n"
    with pytest.raises(InvalidHandshake, match=message):
        ResponseParser().feed(wire)


@pytest.mark.parametrize(
    "value", [b"abc", b"-1", b"+5", b"5, 6", b"0x10", b"\xb2", b"1 2", b""], ids=repr
)
def test_bad_content_length(value: bytes) -> None:
    wire = b"HTTP/1.1 401 No\r\nContent-Length: " + value + b"\r\n\r\n"
    with pytest.raises(InvalidHandshake, match="invalid Content-Length"):
        ResponseParser().feed(wire)


def test_conflicting_content_length_headers() -> None:
    wire = b"HTTP/1.1 401 No\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
    with pytest.raises(InvalidHandshake, match="invalid Content-Length: '5, 6'"):
        ResponseParser().feed(wire)


BAD_CHUNKED = [
    (b"g\r\n", "bad chunk-size line"),
    (b"\r\n", "bad chunk-size line"),
    (b"-1\r\n", "bad chunk-size line"),
    (b" 5\r\nhello\r\n", "bad chunk-size line"),
    (b"11111111111111111\r\n", "bad chunk-size line"),
    (b"5\r\nhelloXX0\r\n\r\n", "expected CRLF, got b'XX'"),
    (b"5\r\nhello\n0\r\n\r\n", "expected CRLF"),
    (b"1" * 5000, "chunk-size line over 4096 bytes"),
    (b"0\r\n folded\r\n\r\n", "obsolete header line folding"),
    (b"0\r\nno colon\r\n\r\n", "malformed header line"),
]


@pytest.mark.parametrize(("body", "message"), BAD_CHUNKED)
def test_bad_chunked_encoding(body: bytes, message: str) -> None:
    wire = b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with pytest.raises(InvalidHandshake, match=message):
        ResponseParser().feed(wire)


def test_chunked_trailer_bounded() -> None:
    parser = ResponseParser(max_header_bytes=100)
    parser.feed(b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
    assert parser.feed(b"X-T: 123456\r\n" * 7) is None  # 91 bytes
    with pytest.raises(InvalidHandshake, match="trailer section exceeds"):
        parser.feed(b"X-T: 123456\r\n")


def test_trailer_budget_is_separate_from_interim_responses() -> None:
    parser = ResponseParser(max_header_bytes=80)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"  # 25 bytes
    head = b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n"  # 47 bytes
    trailer = b"X-T: " + b"t" * 60 + b"\r\n\r\n"  # 69 bytes: over 80 - 25, under 80
    response = parser.feed(interim + head + b"2\r\nok\r\n0\r\n" + trailer)
    assert response is not None
    assert response.body == b"ok"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_any_bytes_like(kind: Any) -> None:
    parser = ResponseParser()
    assert parser.feed(kind(UPGRADE[:10])) is None
    assert parser.feed(kind(UPGRADE[10:] + FRAMES)) is not None
    assert parser.trailing == FRAMES
    assert type(parser.trailing) is bytes


@given(st.lists(st.binary(max_size=40) | st.sampled_from([b"\r\n", b"\r\n\r\n", b": "])))
def test_parser_only_raises_invalid_handshake(pieces: list[bytes]) -> None:
    parser = ResponseParser(max_header_bytes=200, max_body_bytes=50)
    try:
        for piece in [b"HTTP/1.1 ", *pieces]:
            if parser.feed(piece) is not None:
                return
        parser.feed_eof()
    except InvalidHandshake:
        pass


EOF_CASES = [
    (b"", "no response received"),
    (b"HTTP/1.1 101 Switching", "incomplete response header block (22 bytes)"),
    (b"HTTP/1.1 100 Continue\r\n\r\n", "incomplete response header block (0 bytes)"),
    (
        b"HTTP/1.1 401 No\r\nContent-Length: 10\r\n\r\nabc",
        "7 bytes of the Content-Length body missing",
    ),
    (
        b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        "the chunked body is incomplete",
    ),
    (
        b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        "the chunked body is incomplete",
    ),
]


@pytest.mark.parametrize(("wire", "detail"), EOF_CASES)
def test_eof_during_handshake(wire: bytes, detail: str) -> None:
    parser = ResponseParser()
    assert parser.feed(wire) is None
    with pytest.raises(InvalidHandshake) as info:
        parser.feed_eof()
    assert str(info.value) == f"connection closed during the opening handshake: {detail}"


def test_parser_is_single_use() -> None:
    parser = ResponseParser()
    assert parser.feed(UPGRADE + FRAMES) is not None
    with pytest.raises(InvalidStateError, match="already returned"):
        parser.feed(b"more")
    with pytest.raises(InvalidStateError, match="already returned"):
        parser.feed_eof()
    assert parser.trailing == FRAMES


def test_parser_unusable_after_an_error() -> None:
    parser = ResponseParser()
    with pytest.raises(InvalidHandshake):
        parser.feed(b"garbage\r\n\r\n")
    with pytest.raises(InvalidStateError, match="invalid"):
        parser.feed(UPGRADE)
    eof_parser = ResponseParser()
    with pytest.raises(InvalidHandshake):
        eof_parser.feed_eof()
    with pytest.raises(InvalidStateError):
        eof_parser.feed_eof()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"max_header_bytes": 0}, "max_header_bytes"), ({"max_body_bytes": -1}, "max_body_bytes")],
)
def test_parser_limits_validated(kwargs: dict[str, int], option: str) -> None:
    with pytest.raises(OptionsError) as info:
        ResponseParser(**kwargs)
    assert info.value.option == option


def test_large_body_in_small_pieces_is_fast() -> None:
    # Guards against rescanning or copying the whole buffer on every feed.
    body = b"z" * 300_000
    wire = b"HTTP/1.1 401 No\r\nContent-Length: 300000\r\n\r\n" + body
    parser = ResponseParser()
    start = time.perf_counter()
    response, _ = feed_chunks(parser, [wire[i : i + 7] for i in range(0, len(wire), 7)])
    assert response.body == body
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------------ extensions

PARSE_EXTENSIONS: list[tuple[str, list[ExtensionOffer]]] = [
    ("permessage-deflate", [ExtensionOffer("permessage-deflate")]),
    (
        "permessage-deflate; client_max_window_bits",
        [ExtensionOffer("permessage-deflate", (("client_max_window_bits", None),))],
    ),
    ("a;b=1;c", [ExtensionOffer("a", (("b", "1"), ("c", None)))]),
    (" a ; b = 1 ;\tc ", [ExtensionOffer("a", (("b", "1"), ("c", None)))]),
    ('a; b="10"', [ExtensionOffer("a", (("b", "10"),))]),
    ('a; b="1\\0"', [ExtensionOffer("a", (("b", "10"),))]),
    ('a; b = "x-y"; c', [ExtensionOffer("a", (("b", "x-y"), ("c", None)))]),
    (
        "permessage-deflate; server_no_context_takeover, permessage-deflate, x-webkit",
        [
            ExtensionOffer("permessage-deflate", (("server_no_context_takeover", None),)),
            ExtensionOffer("permessage-deflate"),
            ExtensionOffer("x-webkit"),
        ],
    ),
    (", a ,, b; p ,", [ExtensionOffer("a"), ExtensionOffer("b", (("p", None),))]),
    ("a;b=1,c;d=2", [ExtensionOffer("a", (("b", "1"),)), ExtensionOffer("c", (("d", "2"),))]),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_EXTENSIONS)
def test_parse_extensions(value: str, expected: list[ExtensionOffer]) -> None:
    assert parse_extensions(value) == expected


BAD_EXTENSIONS = [
    ("", "no extension"),
    (" , ,", "no extension"),
    ("a;", "expected a parameter name at position 2, got the end"),
    ("a b", "expected ',' or ';' at position 2, got 'b'"),
    ("a; b c", "expected ',' or ';' at position 5, got 'c'"),
    ("a; =1", "expected a parameter name at position 3, got '='"),
    ("a; b=", "expected a token or quoted-string value at position 5, got the end"),
    ("a; b=1=2", "expected ',' or ';' at position 6, got '='"),
    ('a; b="1', "expected a token or quoted-string value at position 5, got '\"'"),
    ('a; b="x"y', "expected ',' or ';' at position 8, got 'y'"),
    ('a; b="1 2"', "a quoted value that is a token (RFC 6455 9.1) at position 5"),
    ('a; b=""', "a quoted value that is a token"),
    ('a; b="a,b"', "a quoted value that is a token"),
    ("=a", "expected an extension name at position 0, got '='"),
    ('"a"', "expected an extension name at position 0"),
    ("a; b=1; c=(x)", "expected a token or quoted-string value at position 10, got '('"),
    ("a, ;b", "expected an extension name at position 3, got ';'"),
    ("é", "expected an extension name at position 0"),
    ("a;\tb=1\t;", "expected a parameter name at position 8, got the end"),
]


@pytest.mark.parametrize(("value", "message"), BAD_EXTENSIONS)
def test_parse_extensions_rejects(value: str, message: str) -> None:
    with pytest.raises(InvalidHandshake, match="invalid Sec-WebSocket-Extensions") as info:
        parse_extensions(value)
    assert message in str(info.value)


@given(st.text(alphabet=' \t,;="\\ab-1é', max_size=30))
def test_parse_extensions_only_raises_invalid_handshake(value: str) -> None:
    try:
        offers = parse_extensions(value)
    except InvalidHandshake:
        return
    assert offers
    assert parse_extensions(format_extensions(offers)) == offers


def test_format_extensions() -> None:
    offers = [
        ExtensionOffer("permessage-deflate", (("client_max_window_bits", None), ("x", "15"))),
        ExtensionOffer("x-b"),
    ]
    assert format_extensions(offers) == "permessage-deflate; client_max_window_bits; x=15, x-b"


@pytest.mark.parametrize(
    "offers",
    [
        [],
        [ExtensionOffer("a b")],
        [ExtensionOffer("a", (("b c", None),))],
        [ExtensionOffer("a", (("b", "1 2"),))],
        [ExtensionOffer("a", (("b", ""),))],
    ],
)
def test_format_extensions_rejects(offers: list[ExtensionOffer]) -> None:
    with pytest.raises(OptionsError) as info:
        format_extensions(offers)
    assert info.value.option == "extensions"


TOKENS = st.text(alphabet="!#$%&'*+-.^_`|~abcXYZ019", min_size=1, max_size=8)
OFFERS = st.lists(
    st.builds(
        ExtensionOffer,
        TOKENS,
        st.lists(st.tuples(TOKENS, st.none() | TOKENS), max_size=4).map(tuple),
    ),
    min_size=1,
    max_size=4,
)


@given(OFFERS)
def test_format_then_parse_round_trips(offers: list[ExtensionOffer]) -> None:
    assert parse_extensions(format_extensions(offers)) == offers


# ------------------------------------------------------------------------ verification


def upgrade(
    *extra: tuple[str, str], base: tuple[tuple[str, str], ...] = UPGRADE_HEADERS
) -> Response:
    return Response(101, "Switching Protocols", base + extra)


def without(name: str) -> tuple[tuple[str, str], ...]:
    return tuple(h for h in UPGRADE_HEADERS if h[0] != name)


ACCEPTED: list[tuple[str, Response, list[str], list[str], Accepted]] = [
    ("minimal", upgrade(), [], [], Accepted(None, ())),
    (
        "case-insensitive values",
        Response(
            101,
            "",
            (
                ("upgrade", "WebSocket"),
                ("CONNECTION", "keep-alive, UPGRADE"),
                ("sec-websocket-accept", ACCEPT),
            ),
        ),
        [],
        [],
        Accepted(None, ()),
    ),
    (
        "Connection over several headers",
        upgrade(
            ("Connection", "close"), base=(*without("Connection"), ("Connection", "x, upgrade"))
        ),
        [],
        [],
        Accepted(None, ()),
    ),
    (
        "subprotocol chosen",
        upgrade(("Sec-WebSocket-Protocol", "superchat")),
        ["chat", "superchat"],
        [],
        Accepted("superchat", ()),
    ),
    (
        "subprotocol declined",
        upgrade(),
        ["chat"],
        [],
        Accepted(None, ()),
    ),
    (
        "extensions in the server's order, headers combined",
        upgrade(
            ("Sec-WebSocket-Extensions", "x-b"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10"),
        ),
        [],
        ["permessage-deflate", "x-b"],
        Accepted(
            None,
            (
                ExtensionOffer("x-b"),
                ExtensionOffer("permessage-deflate", (("server_max_window_bits", "10"),)),
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    ("response", "protocols", "extensions", "expected"),
    [a[1:] for a in ACCEPTED],
    ids=[a[0] for a in ACCEPTED],
)
def test_check_response_accepts(
    response: Response, protocols: list[str], extensions: list[str], expected: Accepted
) -> None:
    assert (
        check_response(response, key=KEY, protocols=protocols, offered_extensions=extensions)
        == expected
    )


REJECTED: list[tuple[str, Response, list[str], list[str], str]] = [
    (
        "no Upgrade",
        upgrade(base=without("Upgrade")),
        [],
        [],
        "expected 'Upgrade: websocket', got no Upgrade header",
    ),
    (
        "Upgrade h2c",
        upgrade(base=(*without("Upgrade"), ("Upgrade", "h2c"))),
        [],
        [],
        "expected 'Upgrade: websocket', got 'h2c'",
    ),
    (
        "Upgrade list",
        upgrade(base=(*without("Upgrade"), ("Upgrade", "websocket, h2c"))),
        [],
        [],
        "got 'websocket, h2c'",
    ),
    (
        "Upgrade repeated header",
        upgrade(("Upgrade", "websocket")),
        [],
        [],
        "got 'websocket, websocket'",
    ),
    (
        "Upgrade with version",
        upgrade(base=(*without("Upgrade"), ("Upgrade", "websocket/13"))),
        [],
        [],
        "got 'websocket/13'",
    ),
    (
        "no Connection",
        upgrade(base=without("Connection")),
        [],
        [],
        "expected 'Connection: Upgrade', got no Connection header",
    ),
    (
        "Connection without upgrade",
        upgrade(base=(*without("Connection"), ("Connection", "keep-alive, upgrades"))),
        [],
        [],
        "expected 'Connection: Upgrade', got 'keep-alive, upgrades'",
    ),
    (
        "no accept",
        upgrade(base=without("Sec-WebSocket-Accept")),
        [],
        [],
        f"missing Sec-WebSocket-Accept, expected {ACCEPT!r}",
    ),
    (
        "accept repeated",
        upgrade(("Sec-WebSocket-Accept", ACCEPT)),
        [],
        [],
        "Sec-WebSocket-Accept repeated",
    ),
    (
        "wrong accept",
        upgrade(base=(*without("Sec-WebSocket-Accept"), ("Sec-WebSocket-Accept", "x" + ACCEPT))),
        [],
        [],
        f"wrong Sec-WebSocket-Accept: expected {ACCEPT!r}, got 'x{ACCEPT}'",
    ),
    (
        "protocol not offered",
        upgrade(("Sec-WebSocket-Protocol", "other")),
        ["chat"],
        [],
        "Sec-WebSocket-Protocol: expected one of ['chat'], got 'other'",
    ),
    (
        "protocol case differs",
        upgrade(("Sec-WebSocket-Protocol", "Chat")),
        ["chat"],
        [],
        "got 'Chat'",
    ),
    (
        "protocol when none offered",
        upgrade(("Sec-WebSocket-Protocol", "chat")),
        [],
        [],
        "Sec-WebSocket-Protocol 'chat' but no subprotocol was offered",
    ),
    (
        "two protocols in one header",
        upgrade(("Sec-WebSocket-Protocol", "chat, superchat")),
        ["chat", "superchat"],
        [],
        "got 'chat, superchat'",
    ),
    (
        "protocol header repeated",
        upgrade(("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "chat")),
        ["chat"],
        [],
        "got 'chat, chat'",
    ),
    (
        "empty protocol",
        upgrade(("Sec-WebSocket-Protocol", "")),
        ["chat"],
        [],
        "expected one of ['chat'], got ''",
    ),
    (
        "extension not offered",
        upgrade(("Sec-WebSocket-Extensions", "x-evil")),
        [],
        ["permessage-deflate"],
        "server accepted extension 'x-evil', which was not offered (offered: "
        "['permessage-deflate'])",
    ),
    (
        "second extension not offered",
        upgrade(("Sec-WebSocket-Extensions", "permessage-deflate, x-evil; a=1")),
        [],
        ["permessage-deflate"],
        "'x-evil'",
    ),
    (
        "extension when none offered",
        upgrade(("Sec-WebSocket-Extensions", "permessage-deflate")),
        [],
        [],
        "offered: []",
    ),
    (
        "extension header malformed",
        upgrade(("Sec-WebSocket-Extensions", "permessage-deflate;")),
        [],
        ["permessage-deflate"],
        "invalid Sec-WebSocket-Extensions",
    ),
]


@pytest.mark.parametrize(
    ("response", "protocols", "extensions", "message"),
    [r[1:] for r in REJECTED],
    ids=[r[0] for r in REJECTED],
)
def test_check_response_rejects(
    response: Response, protocols: list[str], extensions: list[str], message: str
) -> None:
    with pytest.raises(InvalidHandshake) as info:
        check_response(response, key=KEY, protocols=protocols, offered_extensions=extensions)
    assert message in str(info.value)


def test_check_response_end_to_end() -> None:
    key = generate_key()
    wire = upgrade_response(accept_key(key), extra=b"Sec-WebSocket-Protocol: chat\r\n")
    parser = ResponseParser()
    response = parser.feed(wire + FRAMES)
    assert response is not None
    assert check_response(response, key=key, protocols=["chat"], offered_extensions=[]) == Accepted(
        "chat", ()
    )
    assert parser.trailing == FRAMES


def rejected(*headers: tuple[str, str], status: int = 503) -> HandshakeRejected:
    response = Response(status, "Service Unavailable", headers, b"busy")
    with pytest.raises(HandshakeRejected) as info:
        check_response(response, key=KEY, protocols=[], offered_extensions=[])
    return info.value


def test_non_101_is_rejected_with_everything() -> None:
    error = rejected(("Content-Length", "4"), ("X-A", "1"), status=401)
    assert (error.status, error.reason, error.body) == (401, "Service Unavailable", b"busy")
    assert error.headers == [("Content-Length", "4"), ("X-A", "1")]
    assert error.retry_after is None
    assert "HTTP 401 Service Unavailable" in str(error)


@pytest.mark.parametrize("status", [100, 200, 301, 426, 500])
def test_any_status_but_101_is_rejected(status: int) -> None:
    assert rejected(status=status).status == status


RETRY_AFTER_WITH_DATE = [
    ("120", 120.0),
    (" 0 ", 0.0),
    ("Sun, 06 Nov 1994 08:51:37 GMT", 120.0),
    ("Sunday, 06-Nov-94 08:50:37 GMT", 60.0),
    ("Sun Nov  6 08:49:47 1994", 10.0),
    ("Sun, 06 Nov 1994 08:00:00 GMT", 0.0),  # in the past
    ("soon", None),
    ("-5", None),
    ("1.5", None),
    ("", None),
]


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER_WITH_DATE)
def test_retry_after_counts_from_the_server_date(value: str, expected: float | None) -> None:
    error = rejected(("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Retry-After", value))
    assert error.retry_after == expected


def test_retry_after_date_without_server_date_counts_from_now() -> None:
    when = time.gmtime(time.time() + 3600)
    value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", when)  # C locale names in tests
    error = rejected(("Retry-After", value), ("Date", "not a date"))
    assert error.retry_after is not None
    assert 3590 <= error.retry_after <= 3600


NOW = float(calendar.timegm((2026, 1, 15, 12, 0, 0, 0, 0, 0)))
RETRY_AFTER = [
    ("30", 30.0),
    ("007", 7.0),
    ("\t30 ", 30.0),
    ("Thu, 15 Jan 2026 12:01:00 GMT", 60.0),
    ("Thursday, 15-Jan-26 12:00:30 GMT", 30.0),
    ("Thu Jan 15 12:00:05 2026", 5.0),
    ("Thu Jan 15 12:00:05 2025", 0.0),
    ("Thu, 15 Jan 2026 11:59:59 GMT", 0.0),
    ("Friday, 15-Jan-27 12:00:00 GMT", 365 * 86400.0),
    ("Thu, 31 Feb 2026 12:01:00 GMT", None),
    ("Thu, 15 Foo 2026 12:01:00 GMT", None),
    ("Thu, 15 Jan 2026 25:00:00 GMT", None),
    ("tomorrow", None),
    ("1.5", None),
    ("-5", None),
    ("", None),
    ("٣٠", None),
]


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_asctime_date_is_gmt_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Thu Jan 15 12:00:05 2026", NOW) == 5.0
    finally:
        monkeypatch.undo()
        time.tzset()
