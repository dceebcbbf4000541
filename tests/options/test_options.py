"""The options model: defaults, validation messages, URLs, overrides, headers, TLS contexts,
and the JSON Schema."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import trio
import trustme
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from peers import WsServer, start_ws_server
from pydantic import BaseModel, SecretStr, ValidationError

import statews
from statews.core.errors import OptionsError, WebSocketError
from statews.options.config import dump_options, load_config
from statews.options.model import (
    ConnectOptions,
    Options,
    SSLOptions,
    json_schema,
    resolve_options,
)
from statews.options.schema import RESERVED_HEADERS
from statews.trio.delivery import parse_active


def options_error(call: Any, *args: Any, **kwargs: Any) -> OptionsError:
    """The OptionsError ``call`` raises; never pydantic's own error."""
    with pytest.raises(OptionsError) as info:
        call(*args, **kwargs)
    assert not isinstance(info.value, ValidationError)
    assert not isinstance(info.value.__cause__, ValidationError)
    assert not isinstance(info.value.__context__, ValidationError) or (
        info.value.__suppress_context__
    )
    return info.value


# --- defaults ---------------------------------------------------------------------------


def test_defaults() -> None:
    options = Options(host="example.com")
    assert options.model_dump() == {
        "host": "example.com",
        "port": None,
        "transport": "tcp",
        "path": "/",
        "connect_timeout": 8.0,
        "recv_timeout": None,
        "close_timeout": 5.0,
        "max_redirects": 10,
        "active": False,
        "headers": (),
        "protocols": (),
        "control_frames": False,
        "max_frame_size": 16 * 2**20,
        "max_message_size": 64 * 2**20,
        "fragment_size": None,
        "max_queue": 16,
        "closing_buffer_size": 4 * 2**20,
        "write_limit": 64 * 1024,
        "compression": "deflate",
        "deflate": {
            "client_max_window_bits": None,
            "server_max_window_bits": None,
            "client_no_context_takeover": False,
            "server_no_context_takeover": False,
            "compress_level": 6,
            "mem_level": 8,
            "threshold": 128,
        },
        "ping_interval": 20.0,
        "ping_timeout": 20.0,
        "connect_options": {
            "nodelay": True,
            "keepalive": False,
            "local_address": None,
            "happy_eyeballs_delay": 0.25,
        },
        "ssl_options": {
            "cafile": None,
            "capath": None,
            "cadata": None,
            "certfile": None,
            "keyfile": None,
            "password": None,
            "verify": True,
            "server_hostname": None,
            "alpn_protocols": None,
        },
        "proxy": "auto",
        "unix_path": None,
        "http2": "never",
    }
    assert options.ssl_options.context is None
    assert options.secure is False
    assert options.effective_port == 80
    assert options.url == "ws://example.com/"


def test_options_error_is_a_value_error() -> None:
    error = options_error(Options, host="h", port=0)
    assert isinstance(error, ValueError)
    assert isinstance(error, WebSocketError)


def test_frozen_and_hashable() -> None:
    options = resolve_options({"host": "h", "headers": {"X-A": "1"}, "protocols": ["p"]})
    error = options_error(setattr, options, "port", 9000)
    assert error.option == "port"
    assert "resolve_options" in str(error)
    assert options.port is None
    same = Options(host="h", headers=(("X-A", "1"),), protocols=("p",))
    assert hash(options) == hash(same)
    assert options == same


# --- validation messages -----------------------------------------------------------------

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({}, "host: Field required (give host or a url)", "host"),
    ({"port": 0}, "port: Input should be greater than or equal to 1", "port"),
    ({"port": 65536}, "port: Input should be less than or equal to 65535", "port"),
    ({"port": True}, "port: Input should be a number, not a boolean", "port"),
    (
        {"port": "http"},
        "port: Input should be a valid integer, unable to parse string as an integer",
        "port",
    ),
    ({"transport": "udp"}, "transport: Input should be 'tcp' or 'ssl'", "transport"),
    ({"path": "x"}, "path: Input should start with '/', got 'x'", "path"),
    ({"path": "/a b"}, "path: Input should not contain ' '", "path"),
    ({"path": "/a#b"}, "path: Input should not contain '#'", "path"),
    ({"path": "/é"}, "path: Input should be ASCII (percent-encode other characters)", "path"),
    ({"connect_timeout": 0}, "connect_timeout: Input should be greater than 0", "connect_timeout"),
    ({"recv_timeout": -1.5}, "recv_timeout: Input should be greater than 0", "recv_timeout"),
    (
        {"close_timeout": float("inf")},
        "close_timeout: Input should be a finite number",
        "close_timeout",
    ),
    (
        {"connect_timeout": False},
        "connect_timeout: Input should be a number, not a boolean",
        "connect_timeout",
    ),
    ({"active": "maybe"}, "active: Input should be true, false or 'once', got 'maybe'", "active"),
    ({"active": 1}, "active: Input should be true, false or 'once', got 1", "active"),
    (
        {"protocols": ["chat", "a b"]},
        "protocols[1]: Input should be an HTTP token, got 'a b'",
        "protocols",
    ),
    ({"protocols": ["chat", "chat"]}, "protocols: 'chat' is listed twice", "protocols"),
    ({"protocols": "chat"}, "protocols: Input should be a valid tuple", "protocols"),
    (
        {"control_frames": "perhaps"},
        "control_frames: Input should be a valid boolean, unable to interpret input",
        "control_frames",
    ),
    (
        {"max_frame_size": 0},
        "max_frame_size: Input should be greater than or equal to 1",
        "max_frame_size",
    ),
    (
        {"max_message_size": 1.5},
        "max_message_size: Input should be a valid integer, got a number with a fractional part",
        "max_message_size",
    ),
    (
        {"fragment_size": 0},
        "fragment_size: Input should be greater than or equal to 1",
        "fragment_size",
    ),
    ({"max_queue": 0}, "max_queue: Input should be greater than or equal to 1", "max_queue"),
    ({"max_queue": None}, "max_queue: Input should be a valid integer", "max_queue"),
    ({"write_limit": 0}, "write_limit: Input should be greater than or equal to 1", "write_limit"),
    (
        {"connect_options": {"nodelay": "sometimes"}},
        "connect_options.nodelay: Input should be a valid boolean, unable to interpret input",
        "connect_options.nodelay",
    ),
    (
        {"connect_options": {"local_address": "localhost"}},
        "connect_options.local_address: Input should be an IP address, got 'localhost'",
        "connect_options.local_address",
    ),
    (
        {"connect_options": {"happy_eyeballs_delay": -1}},
        "connect_options.happy_eyeballs_delay: Input should be greater than or equal to 0",
        "connect_options.happy_eyeballs_delay",
    ),
    (
        {"connect_options": 5},
        "connect_options: Input should be a valid dictionary or instance of ConnectOptions",
        "connect_options",
    ),
    (
        {"ssl_options": {"verify": "maybe"}},
        "ssl_options.verify: Input should be a valid boolean, unable to interpret input",
        "ssl_options.verify",
    ),
    (
        {"ssl_options": {"cafile": ""}},
        "ssl_options.cafile: String should have at least 1 character",
        "ssl_options.cafile",
    ),
    (
        {"ssl_options": {"keyfile": "k.pem"}},
        "ssl_options: keyfile needs certfile",
        "ssl_options",
    ),
    (
        {"ssl_options": {"password": "pw"}},
        "ssl_options: password needs certfile",
        "ssl_options",
    ),
    (
        {"ssl_options": {"alpn_protocols": ["http/1.1", ""]}},
        "ssl_options.alpn_protocols[1]: Input should be 1 to 255 ASCII characters",
        "ssl_options.alpn_protocols",
    ),
    (
        {"ssl_options": {"server_hostname": "a/b"}},
        "ssl_options.server_hostname: Input should be a host name or an IP address without '/'",
        "ssl_options.server_hostname",
    ),
]


@pytest.mark.parametrize(
    ("changes", "message", "option"), INVALID, ids=[m.split(":")[0] for _, m, _ in INVALID]
)
def test_invalid_option(changes: dict[str, Any], message: str, option: str) -> None:
    data = {"host": "h", **changes} if changes else {}
    for build in (lambda: Options(**data), lambda: resolve_options(data)):
        error = options_error(build)
        assert str(error) == message
        assert error.option == option


def test_several_problems_are_reported_together() -> None:
    error = options_error(Options, host="h", port=0, max_queue=0)
    assert str(error) == (
        "port: Input should be greater than or equal to 1; "
        "max_queue: Input should be greater than or equal to 1"
    )
    assert error.option == "port"


@pytest.mark.parametrize(
    ("data", "message", "option"),
    [
        ({"prot": 1}, "unknown option 'prot': did you mean 'port'?", "prot"),
        ({"hedaers": {}}, "unknown option 'hedaers': did you mean 'headers'?", "hedaers"),
        ({"uri": "ws://h/"}, "unknown option 'uri': did you mean 'url'?", "uri"),
        (
            {"compresion": "deflate"},
            "unknown option 'compresion': did you mean 'compression'?",
            "compresion",
        ),
        (
            {"ssl_options": {"cafle": "ca.pem"}},
            "ssl_options: unknown option 'cafle': did you mean 'cafile'?",
            "ssl_options.cafle",
        ),
        (
            {"connect_options": {"no_delay": False}},
            "connect_options: unknown option 'no_delay': did you mean 'nodelay'?",
            "connect_options.no_delay",
        ),
        ({1: 2}, "option names should be strings, got 1", None),
    ],
)
def test_unknown_option(data: dict[Any, Any], message: str, option: str | None) -> None:
    error = options_error(resolve_options, {"host": "h", **data})
    assert str(error) == message
    assert error.option == option


def test_sub_model_alone_names_its_group() -> None:
    error = options_error(SSLOptions, verify="maybe")
    assert str(error) == (
        "ssl_options.verify: Input should be a valid boolean, unable to interpret input"
    )
    assert error.option == "ssl_options.verify"
    error = options_error(ConnectOptions, nodelai=True)
    assert str(error) == "connect_options: unknown option 'nodelai': did you mean 'nodelay'?"


def test_lax_values_from_text_are_accepted() -> None:
    # Config files interpolate environment variables into strings.
    options = resolve_options(
        {"host": "h", "port": "9000", "connect_timeout": "2.5", "active": "ONCE"}
    )
    assert (options.port, options.connect_timeout, options.active) == (9000, 2.5, "once")
    assert resolve_options({"host": "h", "active": "true"}).active is True
    assert resolve_options({"host": "h", "active": "off"}).active is False


def test_none_means_no_limit() -> None:
    options = Options(
        host="h",
        connect_timeout=None,
        close_timeout=None,
        max_frame_size=None,
        max_message_size=None,
        connect_options=ConnectOptions(happy_eyeballs_delay=None),
    )
    assert options.connect_timeout is None
    assert options.max_message_size is None
    assert options.connect_options.happy_eyeballs_delay is None


# --- host --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored", "url"),
    [
        ("example.com", "example.com", "ws://example.com/"),
        ("127.0.0.1", "127.0.0.1", "ws://127.0.0.1/"),
        ("::1", "::1", "ws://[::1]/"),
        ("[::1]", "::1", "ws://[::1]/"),
        ("[2001:db8::1]", "2001:db8::1", "ws://[2001:db8::1]/"),
        ("fe80::1%eth0", "fe80::1%eth0", "ws://[fe80::1%25eth0]/"),
        ("bücher.example", "bücher.example", "ws://bücher.example/"),
    ],
)
def test_host_forms(given: str, stored: str, url: str) -> None:
    options = Options(host=given)
    assert options.host == stored
    assert options.url == url


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("", "host: Input should be a host name or an IP address, not empty"),
        ("a b", "host: Input should not contain ' '"),
        ("a\r\nX: y", "host: Input should not contain '\\r'"),
        ("a\x00", "host: Input should not contain '\\x00'"),
        ("a/b", "host: Input should be a host name or an IP address without '/'"),
        ("user@h", "host: Input should be a host name or an IP address without '@'"),
        (
            "example.com:80",
            "host: Input should not contain a port, got 'example.com:80' (use 'port')",
        ),
        ("[example.com]", "host: Input should be a valid IPv6 address, got '[example.com]'"),
        ("[::1", "host: Input should be a valid IPv6 address, got '[::1'"),
        ("::g", "host: Input should be a valid IPv6 address, got '::g'"),
        ("[h]:80", "host: Input should not contain a port, got '[h]:80' (use 'port')"),
    ],
)
def test_bad_host(host: str, message: str) -> None:
    error = options_error(Options, host=host)
    assert str(error) == message
    assert error.option == "host"


# --- properties --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "secure", "port", "url"),
    [
        ({}, False, 80, "ws://h/"),
        ({"port": 80}, False, 80, "ws://h/"),
        ({"port": 443}, False, 443, "ws://h:443/"),
        ({"transport": "ssl"}, True, 443, "wss://h/"),
        ({"transport": "ssl", "port": 443}, True, 443, "wss://h/"),
        ({"transport": "ssl", "port": 80}, True, 80, "wss://h:80/"),
        ({"port": 9000, "path": "/a/b?c=d&e"}, False, 9000, "ws://h:9000/a/b?c=d&e"),
    ],
)
def test_secure_port_url(changes: dict[str, Any], secure: bool, port: int, url: str) -> None:
    options = Options(host="h", **changes)
    assert options.secure is secure
    assert options.effective_port == port
    assert options.url == url


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "transport", "host", "port", "path"),
    [
        ("ws://example.com", "tcp", "example.com", None, "/"),
        ("ws://example.com/", "tcp", "example.com", None, "/"),
        ("wss://example.com", "ssl", "example.com", None, "/"),
        ("WSS://Example.com/Chat", "ssl", "Example.com", None, "/Chat"),
        ("ws://127.0.0.1:8765/", "tcp", "127.0.0.1", 8765, "/"),
        ("ws://h:80/x", "tcp", "h", 80, "/x"),
        ("ws://h:/x", "tcp", "h", None, "/x"),
        ("ws://[::1]:9000/x?y=1", "tcp", "::1", 9000, "/x?y=1"),
        ("wss://[2001:db8::7]/", "ssl", "2001:db8::7", None, "/"),
        ("ws://[fe80::1%25eth0]:1/", "tcp", "fe80::1%eth0", 1, "/"),
        ("ws://h?y=1", "tcp", "h", None, "/?y=1"),
        ("ws://h/?", "tcp", "h", None, "/?"),
        ("ws://h/a%20b?q=%2F", "tcp", "h", None, "/a%20b?q=%2F"),
        ("ws://h/caf\u00e9?n=\u00e9", "tcp", "h", None, "/caf%C3%A9?n=%C3%A9"),
    ],
)
def test_from_url(url: str, transport: str, host: str, port: int | None, path: str) -> None:
    options = Options.from_url(url)
    assert (options.transport, options.host, options.port, options.path) == (
        transport,
        host,
        port,
        path,
    )
    assert options.headers == ()
    assert resolve_options(url) == options
    assert Options.from_url(options.url).url == options.url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/", "url: Input should be a ws:// or wss:// URL, got scheme 'http'"),
        ("https://h/", "url: Input should be a ws:// or wss:// URL, got scheme 'https'"),
        ("h/path", "url: Input should be a ws:// or wss:// URL, got no scheme"),
        ("ws:h/path", "url: Input should look like ws://host[:port]/path"),
        ("ws:///path", "url: Input should have a host"),
        ("ws://h/#frag", "url: Input should not have a fragment ('#...')"),
        ("ws://h/#", "url: Input should not have a fragment ('#...')"),
        ("ws://h:0/", "url: Input should have a port from 1 to 65535, got '0'"),
        ("ws://h:65536/", "url: Input should have a port from 1 to 65535, got '65536'"),
        ("ws://h:http/", "url: Input should have a port from 1 to 65535, got 'http'"),
        ("ws://::1/", "url: Input should have an IPv6 address in brackets"),
        ("ws://[::1/", "url: Input should be a valid URL (Invalid IPv6 URL)"),
        ("ws://[::1]x/", "url: Input should have ':port' after the IPv6 address"),
        ("ws://h/a b", "url: Input should not contain ' '"),
        ("ws://h/\r\nX-Injected: 1", "url: Input should not contain '\\r'"),
        ("ws://h\n/", "url: Input should not contain '\\n'"),
        ("ws://h/\x00", "url: Input should not contain '\\x00'"),
        (
            "ws://a\\b/",
            "url: bad host: Input should be a host name or an IP address without '\\\\'",
        ),
        (" ws://h/", "url: Input should not contain ' '"),
    ],
)
def test_bad_url(url: str, message: str) -> None:
    error = options_error(Options.from_url, url)
    assert str(error) == message
    assert error.option == "url"


def test_url_as_a_constructor_key() -> None:
    assert Options(url="ws://h/") == resolve_options("ws://h/")
    given = {"url": "wss://u:p@h:1/a?x=1", "port": 2, "path": "/b", "recv_timeout": 3}
    options = Options(**given)
    assert options == resolve_options(given)
    assert (options.transport, options.host, options.port, options.path) == ("ssl", "h", 2, "/b")
    assert options.headers == (("Authorization", "Basic " + base64.b64encode(b"u:p").decode()),)
    assert options.model_fields_set == resolve_options(given).model_fields_set
    error = options_error(Options, url="ftp://h/")
    assert error.option == "url"
    assert str(error) == "url: Input should be a ws:// or wss:// URL, got scheme 'ftp'"
    error = options_error(Options, url="ws://h/", bogus=1)
    assert str(error) == "unknown option 'bogus'"


def test_url_with_bad_ipv6_literal() -> None:
    error = options_error(Options.from_url, "ws://[nothost]/")
    assert str(error).startswith("url: Input should be a valid URL (")
    assert error.option == "url"


def test_url_must_be_text() -> None:
    error = options_error(resolve_options, {"url": 5})
    assert str(error) == "url: Input should be a string"
    error = options_error(resolve_options, 5)
    assert str(error) == "Input should be Options, a mapping of options or a URL string, got int"
    assert error.option is None


@pytest.mark.parametrize(
    ("url", "credentials"),
    [
        ("ws://user:pass@h/", "user:pass"),
        ("ws://user@h/", "user:"),
        ("ws://us%40er:p%3Ass@h/", "us@er:p:ss"),
        ("ws://user:pa:ss@h/", "user:pa:ss"),
        ("ws://%C3%A9:x@[::1]:9/", "\u00e9:x"),
    ],
)
def test_userinfo_becomes_basic_authorization(url: str, credentials: str) -> None:
    options = Options.from_url(url, headers={"X-A": "1"})
    expected = "Basic " + base64.b64encode(credentials.encode()).decode()
    assert options.headers == (("X-A", "1"), ("Authorization", expected))
    assert "@" not in options.url


def test_userinfo_and_authorization_header_conflict() -> None:
    error = options_error(Options.from_url, "ws://u:p@h/", headers={"authorization": "Bearer x"})
    assert str(error) == "url: has user:password but an Authorization header is given too"
    assert error.option == "url"


# --- overrides ---------------------------------------------------------------------------


def test_url_then_overrides() -> None:
    options = Options.from_url("wss://h:9443/a?b=c", port=1234, path="/other", max_queue=3)
    assert options.url == "wss://h:1234/other"
    assert options.max_queue == 3


def test_mapping_with_url_and_keys() -> None:
    options = resolve_options(
        {"url": "ws://h:1/a", "port": 2, "active": "once"}, path="/b", recv_timeout=1
    )
    assert options.url == "ws://h:2/b"
    assert (options.active, options.recv_timeout) == ("once", 1.0)


def test_url_override_replaces_address_only() -> None:
    base = Options(host="old", port=1, path="/old", max_queue=5, transport="ssl")
    options = resolve_options(base, url="ws://new/x")
    assert options.url == "ws://new/x"
    assert options.max_queue == 5


def test_options_without_overrides_are_returned_as_is() -> None:
    options = Options(host="h")
    assert resolve_options(options) is options


def test_overrides_are_validated_again() -> None:
    options = Options(host="h", port=9000)
    changed = resolve_options(options, port="9001", connect_timeout=None)
    assert (changed.port, changed.connect_timeout) == (9001, None)
    assert options.port == 9000
    error = options_error(resolve_options, options, port=70000)
    assert str(error) == "port: Input should be less than or equal to 65535"
    error = options_error(resolve_options, options, porr=1)
    assert str(error) == "unknown option 'porr': did you mean 'port'?"


def test_group_override_updates_named_keys() -> None:
    options = Options(
        host="h", ssl_options=SSLOptions(cafile="/ca.pem", server_hostname="x"), transport="ssl"
    )
    changed = resolve_options(options, ssl_options={"verify": False})
    assert changed.ssl_options == SSLOptions(cafile="/ca.pem", server_hostname="x", verify=False)
    replaced = resolve_options(options, ssl_options=SSLOptions(verify=False))
    assert replaced.ssl_options == SSLOptions(verify=False)
    from_mapping = resolve_options(
        {"host": "h", "connect_options": {"keepalive": True}},
        connect_options={"nodelay": False},
    )
    assert from_mapping.connect_options == ConnectOptions(keepalive=True, nodelay=False)


def test_defaults_stay_defaults_through_overrides() -> None:
    context = ssl.create_default_context()
    options = Options(host="h", ssl_options=SSLOptions(context=context))
    # Re-validating must not mistake the defaults for explicitly given options.
    changed = resolve_options(options, ssl_options={"server_hostname": "sni.example"})
    assert changed.ssl_options.context is context
    assert changed.ssl_options.server_hostname == "sni.example"
    error = options_error(resolve_options, options, ssl_options={"verify": False})
    assert str(error) == "ssl_options: context cannot be combined with verify"


# --- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        {"X-A": "1", "Cookie": "c=d"},
        [("X-A", "1"), ("Cookie", "c=d")],
        [["X-A", "1"], ["Cookie", "c=d"]],
        (("X-A", "1"), ("Cookie", "c=d")),
    ],
)
def test_header_forms(given: Any) -> None:
    assert Options(host="h", headers=given).headers == (("X-A", "1"), ("Cookie", "c=d"))


def test_headers_keep_order_and_repeats() -> None:
    pairs = [("X-B", "1"), ("X-A", "2"), ("X-B", "3"), ("Host", "vhost"), ("X-T", "a\tb")]
    assert resolve_options({"host": "h", "headers": pairs}).headers == tuple(pairs)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("X-A: 1", "Input should be a mapping of names to values or a list of [name, value] pairs"),
        ([("X-A", "1", "2")], "item 0 should be a [name, value] pair"),
        ([("X-A", "1"), "X-B"], "item 1 should be a [name, value] pair"),
        ({"X A": "1"}, "'X A' is not a valid header name (an HTTP token)"),
        ({"": "1"}, "'' is not a valid header name (an HTTP token)"),
        ({"X-A:": "1"}, "'X-A:' is not a valid header name (an HTTP token)"),
        ({"X-A\r\nX-B": "1"}, "'X-A\\r\\nX-B' is not a valid header name (an HTTP token)"),
        ([(1, "1")], "1 is not a valid header name (an HTTP token)"),
        ({"X-A": 1}, "the value of 'X-A' should be a string"),
        (
            {"X-A": "1\r\nX-Injected: 2"},
            "the value of 'X-A' should not contain CR, LF, NUL or other control characters",
        ),
        (
            {"X-A": "a\nb"},
            "the value of 'X-A' should not contain CR, LF, NUL or other control characters",
        ),
        (
            {"X-A": "a\x00b"},
            "the value of 'X-A' should not contain CR, LF, NUL or other control characters",
        ),
        (
            {"X-A": "a\x7fb"},
            "the value of 'X-A' should not contain CR, LF, NUL or other control characters",
        ),
        (
            {"Sec-WebSocket-Protocol": "chat"},
            "'Sec-WebSocket-Protocol' is set by the handshake and cannot be given "
            "(use 'protocols')",
        ),
        ({"upgrade": "websocket"}, "'upgrade' is set by the handshake and cannot be given"),
        ([("Host", "a"), ("host", "b")], "Host is given twice"),
    ],
)
def test_bad_headers(headers: Any, message: str) -> None:
    error = options_error(Options, host="h", headers=headers)
    assert str(error) == f"headers: {message}"
    assert error.option == "headers"


@pytest.mark.parametrize("name", sorted(RESERVED_HEADERS))
def test_every_reserved_header_is_refused(name: str) -> None:
    error = options_error(Options, host="h", headers={name.title(): "x"})
    assert "is set by the handshake" in str(error)


# --- injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\x00"])
@pytest.mark.parametrize(
    ("field", "build"),
    [
        ("host", lambda bad: {"host": f"h{bad}evil"}),
        ("path", lambda bad: {"host": "h", "path": f"/a{bad}Evil: 1"}),
        ("headers", lambda bad: {"host": "h", "headers": {"X-A": f"v{bad}Evil: 1"}}),
        ("headers", lambda bad: {"host": "h", "headers": [(f"X{bad}A", "v")]}),
        ("protocols", lambda bad: {"host": "h", "protocols": [f"p{bad}q"]}),
        ("url", lambda bad: {"url": f"ws://h/a{bad}Evil: 1"}),
        (
            "ssl_options.server_hostname",
            lambda bad: {"host": "h", "ssl_options": {"server_hostname": f"s{bad}"}},
        ),
    ],
)
def test_injection_characters_are_refused(field: str, build: Any, bad: str) -> None:
    error = options_error(resolve_options, build(bad))
    assert error.option is not None
    assert error.option.startswith(field)


# --- TLS ---------------------------------------------------------------------------------


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """Run a TLS handshake in memory; the client's verification error propagates."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=hostname)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):
        done = True
        for side in (client_side, server_side):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
        if done:
            return
    raise AssertionError("the handshake did not finish")


def test_default_context_verifies(server_context: ssl.SSLContext) -> None:
    context = SSLOptions().create_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(context, server_context, "localhost")


def test_cafile_is_trusted(cafile: str, server_context: ssl.SSLContext) -> None:
    context = SSLOptions(cafile=cafile).create_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    handshake(context, server_context, "localhost")
    # The host name is checked too.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(SSLOptions(cafile=cafile).create_context(), server_context, "other.example")


def test_cadata_and_capath(ca: trustme.CA, tmp_path: Path, server_context: ssl.SSLContext) -> None:
    pem = ca.cert_pem.bytes().decode()
    handshake(SSLOptions(cadata=pem).create_context(), server_context, "localhost")
    # An empty CA directory trusts nothing (and replaces the system store).
    context = SSLOptions(capath=str(tmp_path)).create_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(context, server_context, "localhost")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    both = SSLOptions(cafile=str(cafile), capath=str(tmp_path), cadata=pem).create_context()
    handshake(both, server_context, "localhost")


def test_verify_false_turns_checks_off(server_context: ssl.SSLContext) -> None:
    context = SSLOptions(verify=False).create_context()
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
    handshake(context, server_context, "wrong.example")


def test_given_context_is_used_as_is(cafile: str) -> None:
    context = ssl.create_default_context()
    ssl_options = SSLOptions(context=context, server_hostname="sni.example")
    assert ssl_options.create_context() is context
    options = Options(host="h", transport="ssl", ssl_options=ssl_options)
    assert options.ssl_options.create_context() is context
    assert "context" not in options.model_dump()["ssl_options"]
    error = options_error(SSLOptions, context=context, cafile=cafile, verify=False)
    assert str(error) == "ssl_options: context cannot be combined with cafile, verify"
    error = options_error(SSLOptions, context="not a context")
    assert str(error).startswith("ssl_options.context: Input should be an instance of SSLContext")


def test_a_ready_context_stands_for_the_group() -> None:
    context = ssl.create_default_context()
    options = Options(host="h", transport="ssl", ssl_options=context)
    assert options.ssl_options.context is context
    assert options.ssl_options == SSLOptions(context=context)
    # Through resolve_options' overrides, as open_websocket(url, ssl_options=ctx) passes it.
    assert resolve_options("wss://h/", ssl_options=context).ssl_options.context is context
    # A context plus server_hostname, in either order of layers.
    named = resolve_options(
        {"url": "wss://h/", "ssl_options": {"server_hostname": "sni.example"}},
        ssl_options=context,
    ).ssl_options
    assert (named.context, named.server_hostname) == (context, "sni.example")
    again = resolve_options(options, ssl_options={"server_hostname": "sni.example"})
    assert again.ssl_options == named
    # Like {"context": ctx}, it does not silently drop options that configure a context.
    error = options_error(
        resolve_options, {"host": "h", "ssl_options": {"cafile": "/ca.pem"}}, ssl_options=context
    )
    assert str(error) == "ssl_options: context cannot be combined with cafile"
    # Files cannot give a context: the schema still wants a table of the file options.
    schema = json_schema()
    assert set(schema["properties"]["ssl_options"]) == {"$ref", "description"}
    assert "context" not in schema["$defs"]["SSLOptions"]["properties"]


async def test_open_websocket_with_a_bare_context(
    nursery: trio.Nursery, server_context: ssl.SSLContext, ca: trustme.CA
) -> None:
    server = await start_ws_server(nursery, ssl=server_context)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    url = f"wss://localhost:{server.port}/echo"
    with trio.fail_after(5):
        async with statews.open_websocket(url, ssl_options=context) as ws:
            assert ws.options.ssl_options.context is context
            await ws.send(statews.Text("trusted"))
            assert await ws.recv() == statews.Text("trusted")
        # server_hostname beside a ready context picks the name checked on the certificate.
        with pytest.raises(statews.TLSError, match=r"example\.org"):
            async with statews.open_websocket(
                url, ssl_options={"context": context, "server_hostname": "example.org"}
            ):
                pass
    await server.server.aclose()


def test_alpn_protocols_are_offered() -> None:
    options = resolve_options(
        {"host": "h", "ssl_options": {"alpn_protocols": ["http/1.1"]}}
    ).ssl_options
    assert options.alpn_protocols == ("http/1.1",)
    options.create_context()  # set_alpn_protocols accepted them


@pytest.mark.parametrize(
    ("field", "content", "message"),
    [
        ("cafile", None, "No such file or directory"),
        ("cafile", b"not a certificate\n", "cannot load"),
        ("capath", None, "Not a directory"),
        ("certfile", None, "No such file or directory"),
        ("certfile", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot"),
    ],
)
def test_unloadable_file_names_the_option(
    tmp_path: Path, field: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / "file.pem"
    if content is not None:
        path.write_bytes(content)
    error = options_error(SSLOptions.model_validate({field: str(path)}).create_context)
    assert error.option == f"ssl_options.{field}"
    assert str(error).startswith(f"ssl_options.{field}: cannot load {str(path)!r}: ")
    assert message in str(error)


def test_bad_cadata_names_the_option() -> None:
    with pytest.raises(OptionsError) as info:
        SSLOptions(cadata="garbage").create_context()
    assert info.value.option == "ssl_options.cadata"
    assert str(info.value).startswith("ssl_options.cadata: cannot load: ")
    assert isinstance(info.value.__cause__, ssl.SSLError)


@pytest.fixture(scope="module")
def client_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("client@example.com")


def test_client_certificate(client_cert: trustme.LeafCert, tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(both))
    SSLOptions(certfile=str(both)).create_context()

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    client_cert.cert_chain_pems[0].write_to_path(str(cert))
    client_cert.private_key_pem.write_to_path(str(key))
    SSLOptions(certfile=str(cert), keyfile=str(key)).create_context()

    error = options_error(
        SSLOptions(certfile=str(cert), keyfile=str(tmp_path / "missing.pem")).create_context
    )
    assert error.option == "ssl_options.keyfile"
    assert "No such file" in str(error)


def test_encrypted_key_password(client_cert: trustme.LeafCert, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(client_cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    cert, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    client_cert.cert_chain_pems[0].write_to_path(str(cert))
    key_path.write_bytes(encrypted)
    good = SSLOptions(certfile=str(cert), keyfile=str(key_path), password=SecretStr("s3cret"))
    assert isinstance(good.password, SecretStr)
    assert "s3cret" not in repr(good)
    good.create_context()
    bad = SSLOptions(certfile=str(cert), keyfile=str(key_path), password=SecretStr("wrong"))
    error = options_error(bad.create_context)
    assert error.option == "ssl_options.certfile"


# --- URL round trip (property) ------------------------------------------------------------

hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses().map(str),
)
paths = st.from_regex(
    r"/[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,30}(\?[A-Za-z0-9=&%/?-]{0,20})?", fullmatch=True
)


@settings(max_examples=60, deadline=None)
@given(
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    transport=st.sampled_from(["tcp", "ssl"]),
    path=paths,
)
def test_url_round_trip(
    host: str, port: int | None, transport: Literal["tcp", "ssl"], path: str
) -> None:
    options = Options(host=host, port=port, transport=transport, path=path)
    again = Options.from_url(options.url)
    assert again.url == options.url
    assert (again.host, again.effective_port, again.transport, again.path) == (
        options.host,
        options.effective_port,
        options.transport,
        options.path,
    )


# --- JSON Schema -------------------------------------------------------------------------


def test_json_schema_is_deterministic_and_json() -> None:
    first = json.dumps(json_schema(), sort_keys=False)
    assert first == json.dumps(json_schema(), sort_keys=False)
    schema = json.loads(first)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["anyOf"] == [{"required": ["host"]}, {"required": ["url"]}]
    assert list(schema["properties"])[:3] == ["url", "host", "port"]


def test_json_schema_omits_python_only_fields() -> None:
    schema = json_schema()
    ssl_schema = schema["$defs"]["SSLOptions"]["properties"]
    assert "context" not in ssl_schema
    assert ssl_schema["cafile"]["format"] == "path"
    assert ssl_schema["password"]["anyOf"][0]["format"] == "password"
    assert "anyOf" in schema["properties"]["headers"]
    assert schema["properties"]["active"]["anyOf"][1] == {"const": "once", "type": "string"}
    assert schema["properties"]["port"]["anyOf"][0] == {
        "maximum": 65535,
        "minimum": 1,
        "type": "integer",
    }


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found += _models(field.annotation)
    return found


def test_every_field_is_documented() -> None:
    for model in _models(Options):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    schema = json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


# --- secrets in repr and str --------------------------------------------------------------

SECRETS = Options(
    url="ws://user:pa55@h/feed?symbols=a&access_token=t0k&apiKey=k3y",
    headers={"Cookie": "session=c00kie", "X-Auth-Token": "t0ken2", "X-Trace": "visible"},
    proxy="http://puser:ppa55@proxy.example:3128",
    ssl_options={"certfile": "/c.pem", "password": "kpa55"},
)
SECRET_VALUES = ["pa55", "t0k", "k3y", "c00kie", "t0ken2", "ppa55", "kpa55", "dXNlcjpwYTU1"]


@pytest.mark.parametrize("show", [repr, str])
def test_repr_and_str_mask_secrets_as_check_does(show: Any) -> None:
    text = show(SECRETS)
    for secret in SECRET_VALUES:
        assert secret not in text
    dumped = dump_options(SECRETS, mask_secrets=True)
    # The same masked values as statews check shows, field by field.
    assert f"path={dumped['path']!r}" in text
    assert f"headers={tuple(map(tuple, dumped['headers']))!r}" in text
    assert f"proxy={dumped['proxy']!r}" in text
    assert dumped["proxy"] == "http://puser:***@proxy.example:3128"
    assert "password='***'" in text
    assert "('X-Trace', 'visible')" in text
    for secret in SECRET_VALUES[-1:]:
        assert secret not in show(SECRETS.ssl_options)
    assert "password='***'" in show(SECRETS.ssl_options)
    # Masking is for display only: the options themselves are untouched.
    assert SECRETS.ssl_options.password == SecretStr("kpa55")
    assert SECRETS.path.endswith("access_token=t0k&apiKey=k3y")


# --- the active mode: one validator for every entry point ---------------------------------

ACTIVE_GOOD: list[tuple[Any, Any]] = [
    (True, True),
    (False, False),
    ("once", "once"),
    (" ONCE ", "once"),
    ("true", True),
    ("True", True),
    ("yes", True),
    ("on", True),
    ("1", True),
    ("false", False),
    ("NO", False),
    ("off", False),
    ("0", False),
]
ACTIVE_BAD: list[Any] = ["twice", "", "2", "onc", 1, 0, None, ["once"]]


@pytest.mark.parametrize(("value", "mode"), ACTIVE_GOOD)
def test_active_accepted_everywhere(value: Any, mode: Any, tmp_path: Path) -> None:
    assert parse_active(value) is mode or parse_active(value) == mode == "once"
    assert Options(host="h", active=value).active == mode
    assert resolve_options({"host": "h", "active": value}).active == mode
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"host": "h", "active": value}), encoding="utf-8")
    assert load_config(path).active == mode


@pytest.mark.parametrize("value", ACTIVE_BAD)
def test_active_refused_everywhere(value: Any, tmp_path: Path) -> None:
    message = "Input should be true, false or 'once', got"
    error = options_error(parse_active, value)
    assert (error.option, str(error).startswith(f"active: {message}")) == ("active", True)
    error = options_error(Options, host="h", active=value)
    assert (error.option, str(error)) == ("active", str(options_error(parse_active, value)))
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"connections": {"a": {"host": "h", "active": value}}}))
    error = options_error(load_config, path)
    assert str(error).startswith(f"{path}: connections.a.active: {message}")


def _connect_active(server: WsServer, value: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "statews", "connect", server.url(), "--send", "hi"]
    return subprocess.run(
        [*command, "--active", value],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


async def test_active_on_the_command_line(ws_server: WsServer) -> None:
    """``statews connect --active X`` accepts and refuses what Options does."""
    for value, _ in ACTIVE_GOOD:
        if isinstance(value, str):
            result = await trio.to_thread.run_sync(_connect_active, ws_server, value)
            assert (result.returncode, result.stdout) == (0, "hi\n"), (value, result.stderr)
    for value in ACTIVE_BAD:
        if isinstance(value, str):
            result = await trio.to_thread.run_sync(_connect_active, ws_server, value)
            assert result.returncode == 2, value
            assert result.stdout == ""
            expected = str(options_error(parse_active, value)).removeprefix("active: ")
            assert f"argument --active: {expected}" in result.stderr


async def test_active_through_setopts(ws_server: WsServer) -> None:
    """``ws.setopts(active=X)`` accepts and refuses what Options and the CLI do."""
    with trio.fail_after(10):
        async with statews.open_websocket(ws_server.url(), ping_interval=None) as ws:
            for value, mode in ACTIVE_GOOD:
                await ws.setopts(active=value)
                assert ws._deliverer.mode == mode, value
                await ws.setopts(active=False)
            for value in ACTIVE_BAD:
                with pytest.raises(OptionsError) as info:
                    await ws.setopts(active=value)
                assert info.value.option == "active"
                assert str(info.value) == str(options_error(parse_active, value))
