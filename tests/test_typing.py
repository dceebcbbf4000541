"""The type hints, checked as a user checks them: ``mypy --strict`` on small user programs.

``tests/typing/ok_*.py`` are typical user programs and must type-check without an
error. ``tests/typing/bad_*.py`` hold mistakes the hints must catch: each line mypy must
report carries a ``# E: <fragment>`` comment, ``<fragment>`` a part of the message (the
error code in brackets, e.g. ``[arg-type]``, is part of it). mypy must report errors on
exactly those lines, each with its fragment. All programs go through one mypy run, with
this repository on ``MYPYPATH`` and ``tests/typing/mypy.ini`` (statews is a library
there: its own errors are ``mypy --strict statews``'s business).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "typing"
#: Seconds for the one mypy run (a cold cache analyses trio, pydantic, ... too).
MYPY_TIMEOUT = 300

_EXPECTED = re.compile(r"#\s*E:\s*(.+?)\s*$")
_REPORTED = re.compile(r"^(?P<file>[^:\n]+\.py):(?P<line>\d+): error: (?P<message>.*)$")

OK = sorted(PROGRAMS.glob("ok_*.py"))
BAD = sorted(PROGRAMS.glob("bad_*.py"))


def expected_errors(program: Path) -> dict[int, str]:
    """Line number -> fragment, from the program's ``# E:`` comments."""
    lines = program.read_text(encoding="utf-8").splitlines()
    return {n: m[1] for n, line in enumerate(lines, 1) if (m := _EXPECTED.search(line))}


def parse_report(output: str) -> dict[str, dict[int, list[str]]]:
    """mypy's output as file name -> line -> messages (errors only, notes left out)."""
    errors: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in output.splitlines():
        if match := _REPORTED.match(line):
            name = Path(match["file"]).name
            errors[name][int(match["line"])].append(match["message"])
    return errors


@pytest.fixture(scope="module")
def report() -> dict[str, dict[int, list[str]]]:
    """One ``mypy --strict`` run over every program in tests/typing."""
    env = dict(os.environ, MYPYPATH=str(ROOT))
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--config-file",
        str(PROGRAMS / "mypy.ini"),
        # Its own cache: the options differ from those `mypy --strict statews` caches with.
        "--cache-dir",
        str(ROOT / ".mypy_cache" / "user-programs"),
        "--no-error-summary",
        "--show-error-codes",
        "--no-pretty",
        *(str(p) for p in OK + BAD),
    ]
    done = subprocess.run(
        command,
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT,
    )
    # 0: no error, 1: errors reported; anything else is mypy itself failing.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    errors = parse_report(done.stdout)
    assert set(errors) <= {p.name for p in OK + BAD}, done.stdout
    return errors


def test_there_are_programs_of_both_kinds() -> None:
    assert len(OK) >= 3
    assert len(BAD) >= 3
    for program in BAD:
        assert expected_errors(program), f"{program.name} marks no expected error"
    for program in OK:
        assert not expected_errors(program), f"{program.name} must not expect errors"


def test_parse_report() -> None:
    output = (
        "tests/typing/bad_x.py:3: error: Argument 1 has incompatible type  [arg-type]\n"
        "tests/typing/bad_x.py:3: note: a note is not an error\n"
        "tests/typing/bad_x.py:7: error: Non-overlapping equality check  [comparison-overlap]\n"
    )
    assert parse_report(output) == {
        "bad_x.py": {
            3: ["Argument 1 has incompatible type  [arg-type]"],
            7: ["Non-overlapping equality check  [comparison-overlap]"],
        }
    }
    assert expected_errors(PROGRAMS / "bad_state.py")[8] == "Non-overlapping equality check"


@pytest.mark.parametrize("program", OK, ids=[p.name for p in OK])
def test_user_program_type_checks(report: dict[str, dict[int, list[str]]], program: Path) -> None:
    reported = report.get(program.name, {})
    assert not reported, "\n".join(
        f"{program.name}:{line}: {message}"
        for line, messages in sorted(reported.items())
        for message in messages
    )


@pytest.mark.parametrize("program", BAD, ids=[p.name for p in BAD])
def test_mistakes_are_reported(report: dict[str, dict[int, list[str]]], program: Path) -> None:
    expected = expected_errors(program)
    reported = report.get(program.name, {})
    assert sorted(reported) == sorted(expected), (
        f"{program.name}: errors expected on lines {sorted(expected)}, reported on"
        f" {sorted(reported)}: {dict(reported)}"
    )
    for line, fragment in expected.items():
        assert any(fragment in message for message in reported[line]), (
            f"{program.name}:{line}: expected {fragment!r} in {reported[line]}"
        )
