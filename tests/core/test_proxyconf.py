"""The ``proxy`` option: proxy URLs, ``no_proxy``, and choosing the proxy from the
environment (pure functions; the end-to-end environment test is in test_proxy.py)."""

from __future__ import annotations

import pytest

from statews import Options
from statews.core.errors import OptionsError
from statews.core.proxyconf import (
    ProxyURL,
    no_proxy_matches,
    parse_proxy_url,
    redact_proxy_setting,
    select_proxy,
)

# --- the proxy URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://proxy:3128", ProxyURL("http", "proxy", 3128)),
        ("HTTP://proxy", ProxyURL("http", "proxy", 80)),
        ("https://proxy/", ProxyURL("https", "proxy", 443)),
        ("socks5://127.0.0.1", ProxyURL("socks5", "127.0.0.1", 1080)),
        ("socks5h://[::1]:9050", ProxyURL("socks5h", "::1", 9050)),
        ("http://u:p%40ss@p:1", ProxyURL("http", "p", 1, "u", "p@ss")),
        ("http://us%3Aer@p:1", ProxyURL("http", "p", 1, "us:er", "")),
        ("socks5://u:@p", ProxyURL("socks5", "p", 1080, "u", "")),
    ],
)
def test_parse_proxy_url(text: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("proxy:3128", "scheme://"),
        ("ftp://proxy", "unsupported scheme 'ftp'"),
        ("socks4://proxy", "unsupported scheme"),
        ("http://proxy/path", "no path"),
        ("http://proxy?q", "no path"),
        ("http://", "no host"),
        ("http://:secret@proxy", "no user name"),
        ("http://proxy:0", "port from 1 to 65535"),
        ("http://proxy:http", "port from 1 to 65535"),
        ("http://[::1", "IPv6"),
        ("http://[nope]:1", "IPv6"),
        ("http://::1:8080", "IPv6 address in brackets"),
        ("http://u:p#w@proxy", "percent-encode"),
        ("http://pro xy", "space"),
        ("socks5://u:" + "x" * 256 + "@p", "255 bytes"),
    ],
)
def test_parse_proxy_url_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_proxy_url(text)


def test_password_is_never_shown() -> None:
    proxy = parse_proxy_url("http://user:s3cret@proxy:8080")
    assert proxy.redacted == "http://user:***@proxy:8080"
    assert "s3cret" not in repr(proxy)
    assert redact_proxy_setting("http://user:s3cret@proxy:8080") == "http://user:***@proxy:8080"
    assert redact_proxy_setting("http://proxy:8080") == "http://proxy:8080"
    assert redact_proxy_setting("auto") == "auto"
    assert redact_proxy_setting(None) is None
    options = Options(host="h", proxy="http://user:s3cret@proxy:8080")
    assert "s3cret" not in repr(options)
    with pytest.raises(OptionsError) as info:
        Options(host="h", proxy="http://user:s3cret@proxy:99999")
    assert info.value.option == "proxy"
    assert "s3cret" not in str(info.value)


def test_proxy_option_values() -> None:
    assert Options(host="h").proxy == "auto"
    assert Options(host="h", proxy=None).proxy is None
    assert Options(host="h", proxy="socks5h://p:1").proxy == "socks5h://p:1"
    data = Options(host="h", proxy="http://p:1", unix_path="/run/ws.sock").model_dump(mode="json")
    assert (data["proxy"], data["unix_path"]) == ("http://p:1", "/run/ws.sock")
    assert Options.model_validate(data).proxy == "http://p:1"
    with pytest.raises(OptionsError, match="proxy: Input should be a proxy URL, 'auto' or null"):
        Options(host="h", proxy="automatic")


# --- choosing the proxy ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "exempt"),
    [
        ("", "example.com", 80, False),
        ("*", "example.com", 80, True),
        ("example.com", "example.com", 80, True),
        ("example.com", "www.example.com", 80, True),
        ("example.com", "notexample.com", 80, False),
        ("example.com", "example.com.org", 80, False),
        (".example.com", "example.com", 80, True),
        ("*.example.com", "a.b.example.com", 80, True),
        ("EXAMPLE.com", "Example.COM.", 80, True),
        ("a.com, b.com", "b.com", 80, True),
        ("a.com b.com", "b.com", 80, True),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("127.0.0.1", "127.0.0.1", 80, True),
        ("127.0.0.1", "localhost", 80, False),  # names are not resolved
        ("localhost", "127.0.0.1", 80, False),
        ("localhost", "localhost", 80, True),
        ("::1", "::1", 80, True),
        ("[::1]", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),
        ("fd00::/8", "fd12::1", 80, True),
        ("[bad, example.com", "example.com", 80, True),  # a malformed entry is skipped
    ],
)
def test_no_proxy_matches(no_proxy: str, host: str, port: int, exempt: bool) -> None:
    assert no_proxy_matches(no_proxy, host, port) is exempt


HTTP_P = "http://h:1"


@pytest.mark.parametrize(
    ("environ", "target", "expected"),
    [
        ({}, "ws://example.com", None),
        ({"http_proxy": HTTP_P}, "ws://example.com", HTTP_P),
        ({"HTTP_PROXY": HTTP_P}, "ws://example.com", HTTP_P),
        ({"http_proxy": HTTP_P}, "wss://example.com", None),
        ({"https_proxy": "http://s:1"}, "wss://example.com", "http://s:1"),
        ({"https_proxy": "http://s:1"}, "ws://example.com", None),
        ({"ws_proxy": "http://w:1", "http_proxy": HTTP_P}, "ws://example.com", "http://w:1"),
        ({"WS_PROXY": "http://w:1", "http_proxy": HTTP_P}, "ws://example.com", "http://w:1"),
        ({"wss_proxy": "socks5h://w:1", "https_proxy": HTTP_P}, "wss://e.com", "socks5h://w:1"),
        ({"ws_proxy": "http://low:1", "WS_PROXY": "http://UP:1"}, "ws://e.com", "http://low:1"),
        ({"all_proxy": "socks5://a:1"}, "ws://example.com", "socks5://a:1"),
        ({"ALL_PROXY": "socks5://a:1"}, "wss://example.com", "socks5://a:1"),
        ({"http_proxy": HTTP_P, "all_proxy": "socks5://a:1"}, "ws://e.com", HTTP_P),
        ({"http_proxy": " ", "all_proxy": "socks5://a:1"}, "ws://e.com", "socks5://a:1"),
        ({"http_proxy": "h:3128"}, "ws://example.com", "http://h:3128"),
        ({"HTTP_PROXY": HTTP_P, "REQUEST_METHOD": "GET"}, "ws://e.com", None),  # httpoxy
        ({"http_proxy": HTTP_P, "REQUEST_METHOD": "GET"}, "ws://e.com", HTTP_P),
        ({"http_proxy": HTTP_P, "no_proxy": "*"}, "ws://example.com", None),
        ({"http_proxy": HTTP_P, "no_proxy": "example.com"}, "ws://api.example.com", None),
        ({"http_proxy": HTTP_P, "NO_PROXY": "example.com"}, "ws://api.example.com", None),
        ({"http_proxy": HTTP_P, "no_proxy": "other.com"}, "ws://example.com", HTTP_P),
        ({"http_proxy": HTTP_P, "no_proxy": "e.com:8080"}, "ws://e.com:8080", None),
        ({"http_proxy": HTTP_P, "no_proxy": "e.com:8080"}, "ws://e.com", HTTP_P),
        ({"https_proxy": HTTP_P, "no_proxy": "e.com:443"}, "wss://e.com", None),
        # Loopback is not exempt by itself (as curl and requests): only no_proxy exempts it.
        ({"http_proxy": HTTP_P}, "ws://127.0.0.1:9000", HTTP_P),
        ({"http_proxy": HTTP_P}, "ws://localhost", HTTP_P),
        ({"http_proxy": HTTP_P}, "ws://[::1]", HTTP_P),
        ({"http_proxy": HTTP_P, "no_proxy": "localhost,127.0.0.1,::1"}, "ws://[::1]", None),
    ],
)
def test_environment_selection(environ: dict[str, str], target: str, expected: str | None) -> None:
    options = Options.from_url(target)
    chosen = select_proxy(
        "auto",
        options.host,
        options.effective_port,
        secure=options.secure,
        environ=environ,
    )
    assert chosen == (None if expected is None else parse_proxy_url(expected))


def test_explicit_setting_overrides_the_environment() -> None:
    environ = {"http_proxy": HTTP_P, "all_proxy": "socks5://a:1"}
    assert select_proxy(None, "e.com", 80, secure=False, environ=environ) is None
    chosen = select_proxy("socks5://x:2", "e.com", 80, secure=False, environ=environ)
    assert chosen == ProxyURL("socks5", "x", 2)
    environ["no_proxy"] = "*"
    assert select_proxy("socks5://x:2", "e.com", 80, secure=False, environ=environ) is not None


def test_invalid_environment_value_names_the_variable() -> None:
    with pytest.raises(OptionsError, match=r"\$https_proxy is not a usable proxy URL") as info:
        select_proxy("auto", "e.com", 443, secure=True, environ={"https_proxy": "ftp://x:s@p"})
    assert info.value.option == "proxy"
    assert ":s@" not in str(info.value)
