"""The transcript of a session: what ``statews connect --record FILE`` writes and
``statews serve --replay FILE`` (and :func:`statews.testing.replay_server`) plays back.

A transcript is a UTF-8 JSON Lines file: one JSON object per line, each with a
``"kind"``. The records, in the order they must come:

============= =================================================================
kind          fields
============= =================================================================
``header``    ``format``: ``"statews-transcript"``; ``version``: :data:`VERSION`
              (an integer; a reader refuses a version it does not know);
              ``statews``: the recording statews' version; ``recorded``: when
              (ISO 8601, UTC). Always the first line.
``handshake`` ``t``: 0; ``url``: the URL, secret query parameters masked;
              ``subprotocol`` (or null) and ``extensions`` (names) negotiated;
              ``request_headers`` (the extra headers we sent) and
              ``response_headers``: ``[name, value]`` pairs, secret ones masked;
              ``options``: :func:`statews.dump_options` (secrets masked).
              Always the second line.
``message``   ``t``: seconds since the handshake; ``direction``: ``"out"``
              (client to server) or ``"in"``; ``type``: ``"text"`` or
              ``"binary"``; ``data``: the text, or the base64 (RFC 4648,
              padded) of the binary payload. Any number, in order.
``close``     ``t``; ``direction``: who closed first (``"out"``: the client);
              ``code`` and ``reason`` of that side's Close (code 1006 and ""
              when the server went away without one). At most one, last.
============= =================================================================

Control frames (pings, pongs) are not recorded: keepalives are not the session. Secrets
are masked with :mod:`statews.options.redact` (:data:`~statews.options.redact.MASK`),
so a transcript can be committed next to the tests that replay it.

Invariants: :func:`read_transcript` accepts exactly what :class:`Recorder` writes (and
hand-written files of the same form); anything else raises :class:`TranscriptError`
naming the file, the line and the problem. This module does no I/O of its own beyond
reading a file given by name, and does not use trio.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from .. import __version__
from ..options.config import dump_options
from ..options.model import Options
from ..options.redact import mask_headers, mask_query

__all__ = [
    "FORMAT",
    "VERSION",
    "CloseRecord",
    "Direction",
    "Handshake",
    "MessageRecord",
    "Record",
    "Recorder",
    "Transcript",
    "TranscriptError",
    "masked_url",
    "read_transcript",
    "recording",
]

#: The ``format`` of a transcript's header.
FORMAT: Final = "statews-transcript"
#: The version of the format this module writes and reads.
VERSION: Final = 1

Direction = Literal["in", "out"]
_DIRECTIONS: Final = ("in", "out")
_TYPES: Final = ("text", "binary")


class TranscriptError(ValueError):
    """A transcript cannot be read: the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """The ``handshake`` record: how the session was opened (secrets masked)."""

    url: str
    subprotocol: str | None = None
    extensions: tuple[str, ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A ``message`` record: ``data`` is ``str`` for a text, ``bytes`` for a binary."""

    t: float
    direction: Direction
    data: str | bytes

    @property
    def type(self) -> Literal["text", "binary"]:
        return "text" if isinstance(self.data, str) else "binary"

    def describe(self) -> str:
        """``text 'hello'`` or ``binary 5 bytes 68656c6c6f``, shortened: for reports."""
        if isinstance(self.data, str):
            shown = self.data if len(self.data) <= 40 else self.data[:40] + "..."
            return f"text {shown!r}"
        more = "..." if len(self.data) > 16 else ""
        return f"binary {len(self.data)} bytes {self.data[:16].hex()}{more}".rstrip()


@dataclass(frozen=True, slots=True)
class CloseRecord:
    """The ``close`` record: who closed first, with which code and reason."""

    t: float
    direction: Direction
    code: int
    reason: str = ""

    def describe(self) -> str:
        """``close 1000 'bye'``: for reports."""
        return f"close {self.code}" + (f" {self.reason!r}" if self.reason else "")


Record = MessageRecord | CloseRecord


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript read back: its version, handshake and records (messages, then at
    most one close); ``lines[i]`` is the line ``records[i]`` came from."""

    handshake: Handshake
    records: tuple[Record, ...]
    lines: tuple[int, ...] = ()
    version: int = VERSION
    statews: str = ""

    @property
    def close(self) -> CloseRecord | None:
        """The close record, if the session's end was recorded."""
        last = self.records[-1] if self.records else None
        return last if isinstance(last, CloseRecord) else None


def masked_url(options: Options) -> str:
    """``options.url`` with the values of secret-named query parameters masked."""
    return mask_query(options.url)


def _header() -> dict[str, Any]:
    recorded = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        "kind": "header",
        "format": FORMAT,
        "version": VERSION,
        "statews": __version__,
        "recorded": recorded,
    }


class Recorder:
    """Writes a transcript, one line per call to ``write`` (which should flush, so that
    an interrupted session leaves every record made so far).

    ``clock`` gives seconds (monotonic); ``t`` is measured from :meth:`handshake`. The
    header is written at once; :meth:`handshake` must come before the other records.
    """

    def __init__(
        self, write: Callable[[str], object], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._write = write
        self._clock = clock
        self._start: float | None = None
        self._emit(_header())

    def _emit(self, record: dict[str, Any]) -> None:
        self._write(json.dumps(record, ensure_ascii=False) + "\n")

    def _t(self) -> float:
        if self._start is None:
            raise RuntimeError("Recorder: handshake() first")
        return round(self._clock() - self._start, 6)

    def handshake(
        self,
        options: Options,
        *,
        subprotocol: str | None,
        extensions: Sequence[str],
        response_headers: Iterable[tuple[str, str]],
    ) -> None:
        """The ``handshake`` record; starts the clock."""
        self._start = self._clock()
        self._emit(
            {
                "kind": "handshake",
                "t": 0,
                "url": masked_url(options),
                "subprotocol": subprotocol,
                "extensions": list(extensions),
                "request_headers": [list(h) for h in mask_headers(options.headers)],
                "response_headers": [list(h) for h in mask_headers(response_headers)],
                "options": dump_options(options),
            }
        )

    def message(self, direction: Direction, data: str | bytes) -> None:
        """A ``message`` record: a text (``str``) or binary (``bytes``) message."""
        record: dict[str, Any] = {"kind": "message", "t": self._t(), "direction": direction}
        if isinstance(data, str):
            record.update(type="text", data=data)
        else:
            record.update(type="binary", data=base64.b64encode(data).decode("ascii"))
        self._emit(record)

    def close(self, direction: Direction, code: int, reason: str) -> None:
        """The ``close`` record: who closed first and that side's code and reason."""
        self._emit(
            {
                "kind": "close",
                "t": self._t(),
                "direction": direction,
                "code": code,
                "reason": reason,
            }
        )


@contextlib.contextmanager
def recording(path: Path | None) -> Iterator[Recorder | None]:
    """A :class:`Recorder` writing to the file ``path`` (flushed after each record), or
    ``None`` without a path.

    Raises:
        OSError: the file cannot be created.
    """
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8") as file:

        def write(line: str) -> None:
            file.write(line)
            file.flush()

        yield Recorder(write)


# --- reading ---------------------------------------------------------------------------


class _Line:
    """One parsed line, with typed field access that raises TranscriptError."""

    def __init__(self, source: str, number: int, data: dict[str, Any]) -> None:
        self.source, self.number, self.data = source, number, data

    def error(self, problem: str) -> TranscriptError:
        return TranscriptError(f"{self.source}:{self.number}: {problem}")

    def get(self, name: str, kinds: type | tuple[type, ...], default: Any = ...) -> Any:
        if name not in self.data:
            if default is not ...:
                return default
            raise self.error(f"{self.data['kind']} record without {name!r}")
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise self.error(f"{name!r} is {json.dumps(value)}, of the wrong type")
        return value

    def t(self) -> float:
        t = float(self.get("t", (int, float)))
        if not t >= 0:
            raise self.error(f"'t' is {t}: expected seconds >= 0")
        return t

    def direction(self) -> Direction:
        direction = self.get("direction", str)
        if direction not in _DIRECTIONS:
            raise self.error(f"'direction' is {direction!r}: expected 'in' or 'out'")
        return "in" if direction == "in" else "out"

    def pairs(self, name: str) -> tuple[tuple[str, str], ...]:
        pairs = self.get(name, list, [])
        if not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in pairs
        ):
            raise self.error(f"{name!r}: expected a list of [name, value] strings")
        return tuple((p[0], p[1]) for p in pairs)


def _parse(source: str, number: int, text: str) -> _Line:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"{source}:{number}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise TranscriptError(f"{source}:{number}: expected a JSON object with a 'kind'")
    return _Line(source, number, data)


def _header_of(line: _Line) -> tuple[int, str]:
    if line.data["kind"] != "header" or line.data.get("format") != FORMAT:
        raise line.error(f"not a transcript: the first record must be a {FORMAT!r} header")
    version = line.get("version", int)
    if version != VERSION:
        raise line.error(f"format version {version} is not supported (this reads {VERSION})")
    return version, str(line.get("statews", str, ""))


def _handshake_of(line: _Line) -> Handshake:
    if line.data["kind"] != "handshake":
        raise line.error(f"expected the handshake record, found {line.data['kind']!r}")
    extensions = line.get("extensions", list, [])
    if not all(isinstance(e, str) for e in extensions):
        raise line.error("'extensions': expected a list of strings")
    return Handshake(
        url=line.get("url", str),
        subprotocol=line.get("subprotocol", (str, type(None)), None),
        extensions=tuple(extensions),
        request_headers=line.pairs("request_headers"),
        response_headers=line.pairs("response_headers"),
        options=line.get("options", dict, {}),
    )


def _record_of(line: _Line) -> Record:
    kind = line.data["kind"]
    if kind == "message":
        kind_of = line.get("type", str)
        data: str | bytes = line.get("data", str)
        if kind_of not in _TYPES:
            raise line.error(f"'type' is {kind_of!r}: expected 'text' or 'binary'")
        if kind_of == "binary":
            try:
                data = base64.b64decode(data, validate=True)
            except binascii.Error:
                raise line.error("binary 'data' is not valid base64") from None
        return MessageRecord(line.t(), line.direction(), data)
    if kind == "close":
        code = line.get("code", int)
        if not 1000 <= code <= 4999:
            raise line.error(f"'code' is {code}: expected a close code 1000-4999")
        return CloseRecord(line.t(), line.direction(), code, line.get("reason", str, ""))
    raise line.error(f"unknown record kind {kind!r} (expected message or close)")


def read_transcript(source: str | Path | Iterable[str], *, name: str | None = None) -> Transcript:
    """Read a transcript from a file (``str`` or :class:`~pathlib.Path`) or from lines.

    ``name`` is what errors call the source (default: the path, or ``<transcript>``).
    Blank lines are ignored.

    Raises:
        TranscriptError: the file cannot be read, is not a transcript, has a version
            this module does not read, or has a malformed or misplaced record.
    """
    if isinstance(source, str | Path):
        name = name or str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"{name}: cannot read: {exc}") from None
        source = text.splitlines()
    name = name or "<transcript>"
    parsed = [_parse(name, n, t) for n, t in enumerate(source, start=1) if t.strip()]
    if not parsed:
        raise TranscriptError(f"{name}: empty: not a transcript")
    version, statews = _header_of(parsed[0])
    if len(parsed) < 2:
        raise TranscriptError(f"{name}: no handshake record after the header")
    handshake = _handshake_of(parsed[1])
    records: list[Record] = []
    for line in parsed[2:]:
        if records and isinstance(records[-1], CloseRecord):
            raise line.error("a record after the close record")
        records.append(_record_of(line))
    numbers = tuple(line.number for line in parsed[2:])
    return Transcript(handshake, tuple(records), numbers, version, statews)
