"""Loading options from TOML, JSON and YAML files; dumping them back with secrets masked."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from statews.core.errors import OptionsError
from statews.options.config import (
    MASK,
    ConfigError,
    check_config,
    dump_options,
    load_config,
    load_configs,
)
from statews.options.model import Options, SSLOptions, resolve_options

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "examples"


def config_error(path: Path | str, name: str | None = None) -> ConfigError:
    """The ConfigError ``load_config`` raises, checked to carry no parser traceback."""
    with pytest.raises(ConfigError) as info:
        load_config(path, name)
    error = info.value
    assert isinstance(error, OptionsError)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert error.file == str(path)
    return error


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the examples ------------------------------------------------------------------------


def test_example_echo() -> None:
    options = load_config(EXAMPLES / "echo.toml")
    assert options.url == "ws://127.0.0.1:8765/"
    assert (options.connect_timeout, options.close_timeout) == (5.0, 2.0)


def test_example_multi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWS_TOKEN", "t0k3n")
    feed = load_config(EXAMPLES / "multi.toml", "feed")
    assert feed.url == "ws://127.0.0.1:8766/feed?symbols=BTC,ETH"
    assert feed.active is True
    assert feed.protocols == ("feed.v2", "feed.v1")
    assert feed.headers == (
        ("Authorization", "Bearer t0k3n"),
        ("User-Agent", "statews-example/1.0"),
    )
    assert load_config(EXAMPLES / "multi.toml", "echo").url == "ws://127.0.0.1:8765/"
    bulk = load_config(EXAMPLES / "multi.toml", "bulk")
    assert (bulk.port, bulk.fragment_size, bulk.connect_options.keepalive) == (8767, 65536, True)


def test_example_multi_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATEWS_TOKEN", raising=False)
    # Only the selected connection is interpolated.
    assert load_config(EXAMPLES / "multi.toml", "echo").port == 8765
    error = config_error(EXAMPLES / "multi.toml", "feed")
    assert str(error) == (
        f"{EXAMPLES / 'multi.toml'}: connections.feed.headers.Authorization: environment "
        "variable 'STATEWS_TOKEN' is not set (write ${STATEWS_TOKEN:-default} to give a default)"
    )
    assert error.option == "headers"


def test_example_secure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATEWS_CLIENT", raising=False)
    options = load_config(EXAMPLES / "secure.yaml")
    assert options.url == "wss://localhost:9443/chat"
    assert options.secure
    assert options.protocols == ("chat.v2", "chat.v1")
    assert options.headers == (("Origin", "https://localhost"), ("X-Client", "statews-example"))
    assert options.ssl_options.cafile == str(EXAMPLES / ".." / "certs" / "example-ca.pem")
    options.ssl_options.create_context()  # the example's CA file exists and loads
    assert options.ssl_options.alpn_protocols == ("http/1.1",)
    monkeypatch.setenv("STATEWS_CLIENT", "ci")
    assert load_config(EXAMPLES / "secure.yaml").headers[1] == ("X-Client", "ci")


def test_example_feed() -> None:
    error = config_error(EXAMPLES / "feed.json")
    assert "several connections (prices, trades)" in str(error)
    prices = load_config(EXAMPLES / "feed.json", "prices")
    assert prices.active == "once"
    assert prices.headers == (("X-Client", "statews-example"), ("Accept-Language", "en"))
    trades = load_config(EXAMPLES / "feed.json", "trades")
    assert trades.url == "ws://[::1]:8765/trades"
    assert trades.control_frames is True


# --- formats -----------------------------------------------------------------------------

OPTIONS: dict[str, Any] = {
    "host": "::1",
    "port": 9000,
    "path": "/x?y=1",
    "active": "once",
    "headers": {"X-A": "1"},
    "protocols": ["chat"],
    "recv_timeout": 2.5,
    "ssl_options": {"verify": False},
}
TOML = """\
host = "::1"
port = 9000
path = "/x?y=1"
active = "once"
protocols = ["chat"]
recv_timeout = 2.5
headers = { X-A = "1" }
[ssl_options]
verify = false
"""

FORMATS: list[tuple[str, Callable[[Any], str]]] = [
    (".toml", lambda _: TOML),
    (".json", json.dumps),
    (".yaml", yaml.safe_dump),
    (".yml", yaml.safe_dump),
    (".YAML", yaml.safe_dump),
]


@pytest.mark.parametrize(("extension", "render"), FORMATS)
def test_each_format(tmp_path: Path, extension: str, render: Callable[[Any], str]) -> None:
    options = load_config(write(tmp_path, f"c{extension}", render(OPTIONS)))
    assert options == resolve_options(OPTIONS)


@pytest.mark.parametrize(("extension", "render"), FORMATS[1:3])
def test_each_format_with_connections(
    tmp_path: Path, extension: str, render: Callable[[Any], str]
) -> None:
    data = {"connections": {"a": OPTIONS, "b": {"url": "wss://b.example/"}}}
    path = write(tmp_path, f"c{extension}", render(data))
    assert load_config(path, "a") == resolve_options(OPTIONS)
    assert load_config(path, "b").url == "wss://b.example/"


def test_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"host": "h"}).encode())
    assert load_config(path).host == "h"


def test_path_like_and_str(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", 'host = "h"\n')
    assert load_config(str(path)) == load_config(path) == Options(host="h")


# --- selection ---------------------------------------------------------------------------

MULTI = """\
[connections.alpha]
url = "ws://a/"
[connections.beta]
url = "ws://b/"
"""


def test_select_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", MULTI)
    assert load_config(path, "beta").host == "b"
    assert load_config(path, name="alpha").host == "a"


def test_single_connection_needs_no_name(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", '[connections.only]\nurl = "ws://o/"\n')
    assert load_config(path).host == "o"
    assert load_config(path, "only").host == "o"


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (MULTI, None, "connections: several connections (alpha, beta); choose one by name"),
        (MULTI, "gamma", "connections: no connection named 'gamma' (available: alpha, beta)"),
        ('host = "h"\n', "alpha", "no 'connections' table, so no connection named 'alpha'"),
        (
            "connections = 5\n",
            None,
            "connections: expected a mapping of named connections, got a int",
        ),
        ("connections = {}\n", None, "connections: no connection defined"),
        (
            'port = 1\n[connections.a]\nhost = "h"\n',
            "a",
            "port: not allowed beside 'connections' (options go under connections.<name>)",
        ),
        (
            "[connections]\na = [1]\n",
            "a",
            "connections.a: expected a mapping of options, got a list",
        ),
    ],
)
def test_bad_selection(tmp_path: Path, text: str, name: str | None, message: str) -> None:
    path = write(tmp_path, "c.toml", text)
    error = config_error(path, name)
    assert str(error) == f"{path}: {message}"


# --- every connection of a file ----------------------------------------------------------


def test_load_configs_gives_every_connection(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", MULTI)
    configs = load_configs(path)
    assert list(configs) == ["alpha", "beta"]
    for name, options in configs.items():
        assert options == load_config(path, name)
    one = write(tmp_path, "one.toml", 'url = "ws://o/"\n')
    assert load_configs(one) == {None: load_config(one)}


def test_load_configs_reports_every_invalid_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATEWS_T_UNSET", raising=False)
    text = (
        '[connections.a]\nhost = "h"\nport = 0\n'
        '[connections.b]\nurl = "ws://b/"\n'
        '[connections.c]\nhost = "${STATEWS_T_UNSET}"\n'
    )
    path = write(tmp_path, "c.toml", text)
    with pytest.raises(ConfigError) as info:
        load_configs(path)
    problems = [str(problem) for problem in info.value.problems]
    assert problems == [
        f"{path}: connections.a.port: Input should be greater than or equal to 1",
        f"{path}: connections.c.host: environment variable 'STATEWS_T_UNSET' is not set "
        "(write ${STATEWS_T_UNSET:-default} to give a default)",
    ]
    assert str(info.value) == "; ".join(problems)
    assert (info.value.file, info.value.option) == (str(path), "port")
    # One problem is raised as it is.
    write(
        tmp_path, "c.toml", '[connections.a]\nhost = "h"\nport = 0\n[connections.b]\nhost = "b"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_configs(path)
    assert info.value.problems == (info.value,)
    assert (
        str(info.value) == f"{path}: connections.a.port: Input should be greater than or equal to 1"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connections = {}\n", "connections: no connection defined"),
        ("[connections]\na = 1\n", "connections.a: expected a mapping of options, got a int"),
    ],
)
def test_load_configs_bad_structure(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "c.toml", text)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: {message}") + "$"):
        load_configs(path)


def test_connection_names_must_be_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "connections:\n  1: {host: h}\n")
    message = f"{path}: connections: connection names should be strings, got 1"
    for load in (load_configs, load_config):
        with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
            load(path)


def test_check_config_finds_missing_files(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    (tmp_path / "certs").mkdir()
    text = (
        '[connections.ok]\nhost = "h"\nunix_path = "sock"\n'
        '[connections.ok.ssl_options]\ncafile = "ca.pem"\ncapath = "certs"\n'
        '[connections.bad]\nhost = "h"\nunix_path = "nodir/sock"\n'
        '[connections.bad.ssl_options]\ncafile = "nope.pem"\ncapath = "ca.pem"\n'
        'certfile = "certs"\nkeyfile = "key.pem"\n'
    )
    path = write(tmp_path, "c.toml", text)
    assert set(load_configs(path)) == {"ok", "bad"}  # loading does not look at files
    with pytest.raises(ConfigError) as info:
        check_config(path)
    assert [(str(p), p.option) for p in info.value.problems] == [
        (
            f"{path}: connections.bad.ssl_options.cafile: no such file: "
            f"{str(tmp_path / 'nope.pem')!r}",
            "ssl_options.cafile",
        ),
        (
            f"{path}: connections.bad.ssl_options.capath: not a directory: "
            f"{str(tmp_path / 'ca.pem')!r}",
            "ssl_options.capath",
        ),
        (
            f"{path}: connections.bad.ssl_options.certfile: not a file: "
            f"{str(tmp_path / 'certs')!r}",
            "ssl_options.certfile",
        ),
        (
            f"{path}: connections.bad.ssl_options.keyfile: no such file: "
            f"{str(tmp_path / 'key.pem')!r}",
            "ssl_options.keyfile",
        ),
        (
            f"{path}: connections.bad.unix_path: no such directory "
            f"{str(tmp_path / 'nodir')!r} for the socket",
            "unix_path",
        ),
    ]
    assert check_config(path, "ok") == {"ok": load_config(path, "ok")}
    with pytest.raises(ConfigError) as info:
        check_config(path, "bad")
    assert len(info.value.problems) == 5
    top = write(tmp_path, "top.toml", 'host = "h"\n[ssl_options]\ncafile = "gone.pem"\n')
    with pytest.raises(ConfigError, match=r"top\.toml: ssl_options\.cafile: no such file"):
        check_config(top)


# --- interpolation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${STATEWS_T_SET}", "value"),
        ("a-${STATEWS_T_SET}-b", "a-value-b"),
        ("${STATEWS_T_SET}${STATEWS_T_SET}", "valuevalue"),
        ("${STATEWS_T_UNSET:-fallback}", "fallback"),
        ("${STATEWS_T_EMPTY:-fallback}", "fallback"),
        ("${STATEWS_T_SET:-fallback}", "value"),
        ("${STATEWS_T_UNSET:-}", ""),
        ("${STATEWS_T_UNSET:-a:b $x}", "a:b $x"),
        ("${STATEWS_T_EMPTY}", ""),
        ("$$", "$"),
        ("$${STATEWS_T_SET}", "${STATEWS_T_SET}"),
        ("cost: $$5", "cost: $5"),
        ("$$$${STATEWS_T_SET}", "$${STATEWS_T_SET}"),
        ("$$${STATEWS_T_SET}", "$value"),
        ("no references", "no references"),
    ],
)
def test_interpolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("STATEWS_T_SET", "value")
    monkeypatch.setenv("STATEWS_T_EMPTY", "")
    monkeypatch.delenv("STATEWS_T_UNSET", raising=False)
    path = write(tmp_path, "c.json", json.dumps({"host": "h", "headers": [["X-A", value]]}))
    assert load_config(path).headers == (("X-A", expected),)


def test_interpolation_everywhere_but_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWS_T_PORT", "9001")
    monkeypatch.setenv("STATEWS_T_PROTO", "chat")
    monkeypatch.setenv("STATEWS_T_HOST", "example.com")
    text = """\
url = "wss://${STATEWS_T_HOST}:${STATEWS_T_PORT}/"
protocols = ["${STATEWS_T_PROTO}.v1"]
active = "${STATEWS_T_ACTIVE:-once}"
[headers]
"X-${STATEWS_T_PROTO}" = "kept"
"""
    error = config_error(write(tmp_path, "c.toml", text))
    # The key is not interpolated, so "$" makes it an invalid header name.
    assert "'X-${STATEWS_T_PROTO}' is not a valid header name" in str(error)
    options = load_config(write(tmp_path, "d.toml", text.replace("X-${STATEWS_T_PROTO}", "X-P")))
    assert options.url == "wss://example.com:9001/"
    assert options.protocols == ("chat.v1",)
    assert options.active == "once"


def test_interpolated_text_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWS_T_PORT", "99999")
    path = write(tmp_path, "c.toml", 'host = "h"\nport = "${STATEWS_T_PORT}"\n')
    assert str(config_error(path)) == f"{path}: port: Input should be less than or equal to 65535"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "${STATEWS_T_UNSET}",
            "environment variable 'STATEWS_T_UNSET' is not set "
            "(write ${STATEWS_T_UNSET:-default} to give a default)",
        ),
        ("a$b", "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')"),
        ("$", "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')"),
        (
            "${STATEWS_T_SET",
            "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')",
        ),
        ("${1BAD}", "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')"),
        (
            "${STATEWS_T_SET:default}",
            "a '$' should start ${NAME} or ${NAME:-default} (write $$ for a literal '$')",
        ),
    ],
)
def test_bad_interpolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("STATEWS_T_SET", "value")
    monkeypatch.delenv("STATEWS_T_UNSET", raising=False)
    data = {"connections": {"c": {"host": "h", "protocols": ["p", value]}}}
    path = write(tmp_path, "c.json", json.dumps(data))
    error = config_error(path)
    assert str(error) == f"{path}: connections.c.protocols[1]: {problem}"
    assert error.option == "protocols"


# --- bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.toml", 'host = "h"\nport = \n', "line 2, column 8: invalid TOML: Invalid value"),
        ("c.toml", 'host = "h', "line 1, column 10: invalid TOML: Unterminated string"),
        (
            "c.toml",
            'host = "h"\nhost = "i"\n',
            "line 2, column 11: invalid TOML: Cannot overwrite a value",
        ),
        (
            "c.json",
            '{"host": "h",\n}',
            "line 2, column 1: invalid JSON: Expecting property name enclosed in double quotes",
        ),
        ("c.json", "", "line 1, column 1: invalid JSON: Expecting value"),
        (
            "c.yaml",
            "host: h\n  port: 1\n",
            "line 2, column 7: invalid YAML: mapping values are not allowed here",
        ),
        (
            "c.yaml",
            "host: [h\n",
            "line 2, column 1: invalid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence)",
        ),
        (
            "c.yaml",
            "host: !!python/name:os.system h\n",
            "line 1, column 7: invalid YAML: could not "
            "determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'",
        ),
    ],
)
def test_syntax_error_names_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    assert str(config_error(path)) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "", "expected a mapping of options, got nothing"),
        ("c.yaml", "- a\n- b\n", "expected a mapping of options, got a list"),
        ("c.json", '"ws://h/"', "expected a mapping of options, got a str"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    assert str(config_error(path)) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "message", "option"),
    [
        (
            "[connections.feed]\nhost = 'h'\nport = 70000\n",
            "connections.feed.port: Input should be less than or equal to 65535",
            "port",
        ),
        (
            "[connections.feed]\nhost = 'h'\nport = 'abc'\n",
            "connections.feed.port: Input should be a valid integer, unable to parse string as "
            "an integer",
            "port",
        ),
        (
            "[connections.feed]\nhost = 'h'\nprot = 1\n",
            "connections.feed: unknown option 'prot': did you mean 'port'?",
            "prot",
        ),
        (
            "[connections.feed]\nhost = 'h'\n[connections.feed.ssl_options]\nverfy = false\n",
            "connections.feed.ssl_options: unknown option 'verfy': did you mean 'verify'?",
            "ssl_options.verfy",
        ),
        (
            "[connections.feed]\nurl = 'http://h/'\n",
            "connections.feed.url: Input should be a ws:// or wss:// URL, got scheme 'http'",
            "url",
        ),
        (
            "[connections.feed]\nport = 1\n",
            "connections.feed.host: Field required (give host or a url)",
            "host",
        ),
        (
            "[connections.feed]\nhost = 'h'\nprotocols = ['a', 'b c']\n",
            "connections.feed.protocols[1]: Input should be an HTTP token, got 'b c'",
            "protocols",
        ),
        (
            "[connections.feed]\nhost = 'h'\nheaders = { X-A = \"a\\r\\nb\" }\n",
            "connections.feed.headers: the value of 'X-A' should not contain CR, LF, NUL or "
            "other control characters",
            "headers",
        ),
        (
            "host = 'h'\nconnect_timeout = -1\n",
            "connect_timeout: Input should be greater than 0",
            "connect_timeout",
        ),
    ],
)
def test_invalid_options_name_the_key_path(
    tmp_path: Path, text: str, message: str, option: str
) -> None:
    path = write(tmp_path, "conn.toml", text)
    error = config_error(path)
    assert str(error) == f"{path}: {message}"
    assert error.option == option


def test_message_uses_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "conn.toml", "[connections.feed]\nhost = 'h'\nport = 70000\n")
    monkeypatch.chdir(tmp_path)
    assert str(config_error("conn.toml")) == (
        "conn.toml: connections.feed.port: Input should be less than or equal to 65535"
    )


def test_yaml_non_string_key(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "host: h\n1: 2\n")
    assert str(config_error(path)) == f"{path}: option names should be strings, got 1"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert str(config_error(path)) == f"{path}: cannot read: No such file or directory"


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.json"
    path.mkdir()
    assert str(config_error(path)).startswith(f"{path}: cannot read: ")


@pytest.mark.parametrize(
    ("name", "got"), [("c.ini", "'.ini'"), ("c", "no extension"), ("c.toml.bak", "'.bak'")]
)
def test_unsupported_extension(tmp_path: Path, name: str, got: str) -> None:
    path = write(tmp_path, name, 'host = "h"\n')
    assert str(config_error(path)) == (
        f"{path}: unsupported file type ({got}): expected .toml, .json, .yaml or .yml"
    )


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'host = "\xff"\n')
    assert str(config_error(path)) == f"{path}: not UTF-8 text (byte 8)"


# --- relative paths ----------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    text = """\
url = "wss://h/"
[ssl_options]
cafile = "certs/ca.pem"
capath = "/etc/ssl/certs"
certfile = "~/client.pem"
"""
    path = write(tmp_path / "conf", "c.toml", text)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    ssl_options = load_config(Path("conf/c.toml")).ssl_options
    assert ssl_options.cafile == str(path.parent / "certs" / "ca.pem")
    assert ssl_options.capath == "/etc/ssl/certs"
    assert ssl_options.certfile == str(tmp_path / "home" / "client.pem")


# --- dumping -----------------------------------------------------------------------------

SECRET = Options(
    host="h",
    path="/feed?symbols=a&access_token=abc&sig=1&apiKey=k",
    headers=(
        ("Authorization", "Bearer abc"),
        ("Proxy-Authorization", "Basic abc"),
        ("Cookie", "session=abc"),
        ("X-Api-Key", "abc"),
        ("X-Auth-Token", "abc"),
        ("X-Client-Secret", "abc"),
        ("X-Trace", "visible"),
    ),
    ssl_options=SSLOptions(certfile="/c.pem", password=SecretStr("pw")),
)


def test_dump_masks_secrets() -> None:
    data = dump_options(SECRET)
    json.dumps(data)  # plain data
    assert data["headers"] == [
        ["Authorization", MASK],
        ["Proxy-Authorization", MASK],
        ["Cookie", MASK],
        ["X-Api-Key", MASK],
        ["X-Auth-Token", MASK],
        ["X-Client-Secret", MASK],
        ["X-Trace", "visible"],
    ]
    assert data["path"] == f"/feed?symbols=a&access_token={MASK}&sig=1&apiKey={MASK}"
    assert data["ssl_options"]["password"] == MASK
    assert "abc" not in json.dumps(data)
    assert "pw" not in json.dumps(data["ssl_options"])


def test_dump_unmasked_round_trips() -> None:
    data = dump_options(SECRET, mask_secrets=False)
    assert data["ssl_options"]["password"] == "pw"
    assert data["headers"][0] == ["Authorization", "Bearer abc"]
    assert resolve_options(json.loads(json.dumps(data))) == SECRET


def test_dump_has_every_field_and_no_context() -> None:
    options = Options(host="h", ssl_options=SSLOptions(context=ssl.create_default_context()))
    data = dump_options(options)
    assert "context" not in data["ssl_options"]
    assert data["ssl_options"]["password"] is None
    assert set(data) == set(Options.model_fields)
    assert data["headers"] == []
    assert data["path"] == "/"


@pytest.mark.parametrize(
    ("text", "key", "option"),
    [
        ('url = "ws://${STATEWS_T_UNSET}/"\n', "url", "url"),
        (
            'host = "h"\n[ssl_options]\ncafile = "${STATEWS_T_UNSET}"\n',
            "ssl_options.cafile",
            "ssl_options.cafile",
        ),
        ('host = "h"\nheaders = [["X-A", "${STATEWS_T_UNSET}"]]\n', "headers[0][1]", "headers"),
        ('host = "h"\nunknown = "${STATEWS_T_UNSET}"\n', "unknown", None),
    ],
)
def test_missing_variable_names_key_and_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, option: str | None
) -> None:
    monkeypatch.delenv("STATEWS_T_UNSET", raising=False)
    path = write(tmp_path, "c.toml", text)
    error = config_error(path)
    assert str(error).startswith(f"{path}: {key}: environment variable 'STATEWS_T_UNSET'")
    assert error.option == option
