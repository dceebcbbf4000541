"""``statews check``, run for real (``python -m statews check``): every connection of a
file, the files it references, the resolved options with secrets masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from statews.options.config import dump_options, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "specs" / "examples"
ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
ENV.pop("STATEWS_TOKEN", None)


def check(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m statews check ARGS``; at most 10 seconds."""
    return subprocess.run(
        [sys.executable, "-m", "statews", "check", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        cwd=ROOT,
        env={**ENV, **env},
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    lines = result.stderr.splitlines()
    assert all(line.startswith("statews: ") for line in lines), result.stderr
    return [line.removeprefix("statews: ") for line in lines]


def test_every_connection_keyed_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    path = EXAMPLES / "multi.toml"
    result = check(str(path), STATEWS_TOKEN="s3cret-token")
    assert (result.returncode, result.stderr) == (0, "")
    printed = json.loads(result.stdout)
    assert list(printed) == ["echo", "feed", "bulk"]
    monkeypatch.setenv("STATEWS_TOKEN", "s3cret-token")
    for name, options in printed.items():
        assert options == dump_options(load_config(path, name), mask_secrets=True)
    assert "s3cret-token" not in result.stdout
    assert ["Authorization", "***"] in printed["feed"]["headers"]


def test_name_still_selects_one() -> None:
    result = check(str(EXAMPLES / "feed.json"), "--name", "trades")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dump_options(load_config(EXAMPLES / "feed.json", "trades"))


def test_one_connection_file_prints_its_options() -> None:
    result = check(str(EXAMPLES / "secure.yaml"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ssl_options"]["cafile"].endswith("example-ca.pem")


def test_a_connections_table_of_one_is_keyed_by_name(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text('[connections.only]\nurl = "ws://o/"\n', encoding="utf-8")
    result = check(str(path))
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)) == ["only"]  # the shape follows the file


def test_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text(
        '[connections.a]\nhost = "h"\nmax_queue = 0\n'
        '[connections.b]\nhost = "h"\n[connections.b.ssl_options]\ncafile = "ca.pem"\n'
        '[connections.c]\nhost = "h"\nunix_path = "run/ws.sock"\n'
        '[connections.c.ssl_options]\ncertfile = "client.pem"\ncapath = "cas"\n',
        encoding="utf-8",
    )
    result = check(str(path))
    assert result.returncode == 3
    assert result.stdout == ""
    assert error_lines(result) == [
        f"{path}: connections.a.max_queue: Input should be greater than or equal to 1",
        f"{path}: connections.c.ssl_options.capath: no such directory: {str(tmp_path / 'cas')!r}",
        f"{path}: connections.c.ssl_options.certfile: no such file: "
        f"{str(tmp_path / 'client.pem')!r}",
        f"{path}: connections.c.unix_path: no such directory {str(tmp_path / 'run')!r} "
        "for the socket",
    ]
    # --name checks only that connection.
    assert check(str(path), "--name", "b").returncode == 0
    result = check(str(path), "--name", "c")
    assert (result.returncode, len(error_lines(result))) == (3, 3)


def test_missing_file_of_a_one_connection_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("url: wss://h/\nssl_options:\n  cafile: certs/ca.pem\n", encoding="utf-8")
    result = check(str(path))
    assert result.returncode == 3
    assert error_lines(result) == [
        f"{path}: ssl_options.cafile: no such file: {str(tmp_path / 'certs' / 'ca.pem')!r}"
    ]


def test_a_url_is_checked_too() -> None:
    result = check("ws://user:pw@127.0.0.1:9/x?token=t")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert (printed["path"], printed["headers"]) == ("/x?token=***", [["Authorization", "***"]])
    result = check("ws://h/", "--name", "a")
    assert result.returncode == 2


def test_help_documents_the_output_shape() -> None:
    result = check("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "an object mapping each connection's name to its options" in text
    assert "unix_path's directory" in text
