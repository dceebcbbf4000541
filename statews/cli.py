"""The ``statews`` command line: connect, serve, demo, diagram, schema and check.

Built on the public API only (:func:`statews.open_websocket`, :func:`statews.start_link`,
:mod:`statews.config`, :mod:`statews.diagrams`, :mod:`statews.server`).

``statews connect URL|CONFIG`` is an interactive client in the manner of wscat: each
line read on stdin is sent as a text message, each message received is printed on
stdout as ``< text`` (binary as ``< [binary N bytes] <hex of the first 32>``). With
``--json`` stdout has one JSON object per line: ``{"event": "connected", "url": ...,
"subprotocol": ...}``, then ``{"direction": "in", "type": "text", "data": ...}`` per
message (``"binary"``, ``"ping"``, ``"pong"`` data in base64), then ``{"event":
"closed", "code": ..., "reason": ...}`` (plus ``"sent"``, our Close code, when no Close
came back and the code is 1006). Sent messages are not printed, so stdout holds
only what the server said; with ``-v`` they are echoed on stderr as ``> text``.
``--send TEXT`` (repeatable) sends instead of reading stdin and closes after
``--count`` messages (default: as many as were sent). Without ``--send``, end of input
closes with 1000, unless ``--count`` messages are still awaited.

Invariants:

* Every failure that an exit code names ends the command with one line
  ``statews: <reason>`` on stderr, never a traceback. The codes (:class:`Exit`): 0 the
  connection closed normally (1000/1001, or we closed it as asked), 1 any other error,
  2 usage error, 3 invalid options or configuration file, 4 opening handshake failed
  (refused, rejected, invalid, TLS, proxy), 5 protocol error or abnormal close,
  6 timeout (``--timeout``, ``connect_timeout``, ``recv_timeout``), 130 interrupted.
* stdout carries results only (messages, JSON records, schema, diagram, options);
  everything else goes to stderr. ``-v`` turns on DEBUG logs of the ``statews.*``
  loggers only (lifecycle transitions come from ``statews.lifecycle``).
* stdin is read without blocking the event loop: through a non-blocking
  :class:`trio.lowlevel.FdStream` for pipes, sockets and terminals (its blocking flag is
  restored afterwards), through a worker thread otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import Any, Final, TextIO

import trio

from . import __version__
from .client import open_websocket, start_link
from .config import ConfigError, check_config, dump_options, load_config
from .connection import WebSocket
from .delivery import Active, Message, parse_active
from .errors import (
    CloseCode,
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
    InvalidStateError,
    OptionsError,
    ProtocolError,
    RecvTimeout,
)
from .events import Binary, Frame, Ping, Pong, Text
from .options import Options, resolve_options
from .stdin import read_lines, stdin_chunks

__all__ = ["Exit", "exit_code_for", "main"]

#: File name endings that make a ``connect``/``check`` target a configuration file.
CONFIG_SUFFIXES: Final = (".toml", ".json", ".yaml", ".yml")
#: Bytes of a binary message shown in hex.
PREVIEW_BYTES: Final = 32
#: How long ``statews demo`` may take in all.
DEMO_TIMEOUT: Final = 10.0


class Exit(IntEnum):
    """The command's exit status."""

    OK = 0
    ERROR = 1
    USAGE = 2
    OPTIONS = 3
    HANDSHAKE = 4
    PROTOCOL = 5
    TIMEOUT = 6
    INTERRUPTED = 130


class UsageError(Exception):
    """The command line is inconsistent in a way argparse cannot see."""


class CommandTimeout(Exception):
    """``--timeout`` (or the demo's bound) expired."""


def exit_code_for(error: BaseException) -> Exit:
    """The exit status that reports ``error``."""
    if isinstance(error, UsageError):
        return Exit.USAGE
    if isinstance(error, OptionsError):
        return Exit.OPTIONS
    if isinstance(error, ConnectTimeout | RecvTimeout | CommandTimeout):
        return Exit.TIMEOUT
    if isinstance(error, HandshakeError):
        return Exit.HANDSHAKE
    if isinstance(error, ConnectionClosedOK):
        return Exit.OK
    if isinstance(error, ProtocolError | ConnectionClosed):
        return Exit.PROTOCOL
    return Exit.ERROR


# --- the command line ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``statews`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    command: Callable[[argparse.Namespace], Exit] = args.run
    try:
        return int(command(args))
    except BaseException as exc:
        error = _unwrap(exc)
        if isinstance(error, KeyboardInterrupt):  # Ctrl-C is how a server is stopped
            return int(Exit.OK if args.command == "serve" else Exit.INTERRUPTED)
        code = exit_code_for(error)
        if code is Exit.ERROR and not isinstance(error, _REPORTED):
            raise  # a bug: keep the traceback
        _fail(_reason(error))
        return int(code)


# Errors that are the environment's, not bugs: reported on one line, exit 1.
_REPORTED = (OSError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``statews`` and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log the statews.* loggers at DEBUG on stderr (lifecycle transitions, ...)",
    )
    parser = argparse.ArgumentParser(
        prog="statews", description="A WebSocket client for trio with a declared lifecycle."
    )
    # Its own -v: a shared (parents=) action would share the default with the commands'.
    parser.add_argument("-v", "--verbose", action="store_true", help="as COMMAND -v")
    parser.add_argument("--version", action="version", version=f"statews {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    connect = commands.add_parser(
        "connect",
        parents=[common],
        help="talk to a WebSocket server from the terminal or a script",
        description="Connect; send stdin lines (or --send texts) as text messages; print "
        "what arrives. Exit 0 on a normal close, 3 bad options, 4 handshake failed, "
        "5 protocol error or abnormal close, 6 timeout.",
    )
    connect.add_argument("target", metavar="URL|CONFIG", help="ws:// URL or configuration file")
    connect.add_argument("--name", help="the connection to use in a configuration file")
    connect.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    connect.add_argument(
        "--protocol", action="append", default=[], metavar="P", help="offer a subprotocol"
    )
    connect.add_argument(
        "--active",
        type=_active,
        metavar="MODE",
        help="delivery mode (as in hackney_ws): true, false or once (also yes/no, on/off, "
        "1/0, in any case); messages are printed either way",
    )
    connect.add_argument(
        "--send",
        action="append",
        metavar="TEXT",
        help="send TEXT instead of reading stdin (repeatable), then close after --count",
    )
    connect.add_argument(
        "--count",
        type=_natural,
        metavar="N",
        help="close after receiving N messages (default with --send: as many as sent)",
    )
    connect.add_argument("--json", action="store_true", help="print one JSON object per line")
    connect.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up after S seconds in all (exit 6)"
    )
    connect.set_defaults(run=_connect_command)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the built-in echo server",
        description="Echo every message back (needs the websockets package).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port",
        type=partial(_natural, limit=65535),
        default=8765,
        help="port to listen on; 0 picks a free one",
    )
    serve.add_argument(
        "--print-port", action="store_true", help="print the port on stdout once listening"
    )
    serve.set_defaults(run=_serve_command)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="show a connection's lifecycle against the built-in echo server",
        description="Start the echo server on a free loopback port, connect, send a text "
        "and a binary message and a ping, close, printing every lifecycle transition.",
    )
    demo.set_defaults(run=_demo_command)

    diagram = commands.add_parser(
        "diagram",
        parents=[common],
        help="draw the connection lifecycle",
        description="Render the lifecycle state machine (mermaid, md table, dot or svg).",
    )
    diagram.add_argument(
        "--format", choices=["mermaid", "md", "dot", "svg"], default="mermaid", dest="fmt"
    )
    diagram.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE")
    diagram.set_defaults(run=_diagram_command)

    schema = commands.add_parser(
        "schema", parents=[common], help="print the JSON Schema of the options"
    )
    schema.set_defaults(run=_schema_command)

    check = commands.add_parser(
        "check",
        parents=[common],
        help="validate a configuration file and print the options it resolves to",
        description="Validate every connection of CONFIG (or the one --name selects) and "
        "check that the files it names exist (ssl_options cafile, capath, certfile, "
        "keyfile; unix_path's directory). Print the resolved options as JSON, secrets "
        "masked: one options object for a file that is one connection, for --name or "
        "for a URL; for a file with connections.<name> tables, an object mapping each "
        "connection's name to its options. On problems print nothing on stdout, one "
        "line per problem on stderr, and exit 3.",
    )
    check.add_argument("target", metavar="CONFIG", help="configuration file (or a ws:// URL)")
    check.add_argument("--name", help="check only this connection of a configuration file")
    check.set_defaults(run=_check_command)
    return parser


def _natural(text: str, limit: int | None = None) -> int:
    if not text.isdigit() or (limit is not None and int(text) > limit):
        raise argparse.ArgumentTypeError(f"expected a whole number 0-{limit or 'N'}, got {text!r}")
    return int(text)


def _active(text: str) -> Active:
    try:
        return parse_active(text)
    except OptionsError as exc:
        # argparse names the argument itself: "argument --active: ..."
        raise argparse.ArgumentTypeError(str(exc).removeprefix("active: ")) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


# --- output helpers --------------------------------------------------------------------

_LOG_HANDLER = logging.StreamHandler()
_LOG_HANDLER.setFormatter(logging.Formatter("%(name)s: %(message)s"))


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger("statews")
    _LOG_HANDLER.setStream(sys.stderr)
    if _LOG_HANDLER not in root.handlers:
        root.addHandler(_LOG_HANDLER)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _fail(reason: str) -> None:
    print(f"statews: {reason}", file=sys.stderr, flush=True)


def _reason(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _unwrap(error: BaseException) -> BaseException:
    """The one meaningful exception in nested exception groups (the first leaf that is
    not a cancellation), or ``error`` itself."""
    while isinstance(error, BaseExceptionGroup):
        leaves = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        if not leaves:
            break
        error = leaves[0]
    return error


def describe(frame: Frame) -> str:
    """One frame as ``connect`` and ``demo`` print it: the text itself, or
    ``[binary N bytes] <hex preview>`` (likewise ping and pong)."""
    if isinstance(frame, Text):
        return frame.data
    if isinstance(frame, Binary | Ping | Pong):
        kind = type(frame).__name__.lower()
        preview = frame.data[:PREVIEW_BYTES].hex()
        more = "..." if len(frame.data) > PREVIEW_BYTES else ""
        return f"[{kind} {len(frame.data)} bytes] {preview}{more}".rstrip()
    return f"[close {frame.code} {frame.reason}]".rstrip()


def _close_text(code: int, reason: str) -> str:
    try:
        name = f" ({CloseCode(code).name.lower().replace('_', ' ')})"
    except ValueError:
        name = ""
    return f"code {code}{name}" + (f": {reason}" if reason else "")


class Transcript:
    """What ``connect`` prints: received messages on stdout (text or JSON lines); the
    connection's start and end, and with ``verbose`` the sent messages, on stderr."""

    def __init__(self, *, json_lines: bool, verbose: bool, out: TextIO, err: TextIO) -> None:
        self.json_lines = json_lines
        self.verbose = verbose
        self.out = out
        self.err = err

    def _record(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def connected(self, ws: WebSocket) -> None:
        if self.json_lines:
            self._record(
                {"event": "connected", "url": ws.options.url, "subprotocol": ws.subprotocol}
            )
        else:
            protocol = f" (subprotocol {ws.subprotocol})" if ws.subprotocol else ""
            print(f"connected to {ws.options.url}{protocol}", file=self.err, flush=True)

    def received(self, frame: Frame) -> None:
        if not self.json_lines:
            self.out.write(f"< {describe(frame)}\n")
            self.out.flush()
        elif isinstance(frame, Text):
            self._record({"direction": "in", "type": "text", "data": frame.data})
        elif isinstance(frame, Binary | Ping | Pong):
            data = base64.b64encode(frame.data).decode("ascii")
            self._record({"direction": "in", "type": type(frame).__name__.lower(), "data": data})

    def sent(self, text: str) -> None:
        if self.verbose:
            print(f"> {text}", file=self.err, flush=True)

    def closed(self, closed: ConnectionClosed) -> None:
        if self.json_lines:
            record: dict[str, Any] = {
                "event": "closed",
                "code": closed.code,
                "reason": closed.reason,
            }
            if closed.rcvd is None and closed.sent is not None:
                # No Close came back (code 1006): say which code we closed or failed with.
                record["sent"] = closed.sent.code
            self._record(record)
        else:
            print(f"closed: {_close_text(closed.code, closed.reason)}", file=self.err, flush=True)


# --- connect ---------------------------------------------------------------------------


def load_target(target: str, name: str | None) -> Options:
    """The options a ``connect``/``check`` target names: a configuration file (a name
    ending in .toml, .json, .yaml or .yml, without ``://``) or a URL.

    Raises:
        OptionsError: the file or the URL is invalid (``ConfigError`` for a file).
        UsageError: ``name`` given with a URL.
    """
    if _is_config_file(target):
        return load_config(target, name)
    if name is not None:
        raise UsageError(f"--name selects a connection in a configuration file, not in {target}")
    return resolve_options(target)


def _is_config_file(target: str) -> bool:
    return "://" not in target and target.lower().endswith(CONFIG_SUFFIXES)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise UsageError(f"-H expects 'Name: value', got {text!r}")
    return name.strip(), value.strip()


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``connect`` does once connected: send ``sends`` (or stdin lines when
    ``None``), then close after ``count`` received messages (or at stdin's end when
    ``None``)."""

    sends: tuple[str, ...] | None
    count: int | None


def _connect_command(args: argparse.Namespace) -> Exit:
    options = load_target(args.target, args.name)
    overrides: dict[str, Any] = {}
    if args.header:
        overrides["headers"] = (*options.headers, *map(_header, args.header))
    if args.protocol:
        overrides["protocols"] = tuple(args.protocol)
    if args.active is not None:
        overrides["active"] = args.active
    options = resolve_options(options, **overrides)
    sends = None if args.send is None else tuple(args.send)
    count = args.count if args.count is not None or sends is None else len(sends)
    transcript = Transcript(
        json_lines=args.json, verbose=args.verbose, out=sys.stdout, err=sys.stderr
    )
    return trio.run(partial(connect_session, options, Plan(sends, count), transcript, args.timeout))


@dataclass
class _Progress:
    expected: int | None
    received: int = 0
    we_closed: bool = False

    @property
    def done(self) -> bool:
        return self.expected is not None and self.received >= self.expected


async def connect_session(
    options: Options, plan: Plan, transcript: Transcript, timeout: float | None
) -> Exit:
    """Connect, run ``plan``, close; return the exit status for how it ended.

    Raises:
        OptionsError, HandshakeError: as :func:`statews.open_websocket`.
        CommandTimeout: ``timeout`` seconds passed (the connection was closed first).
        RecvTimeout: ``recv_timeout`` passed without a message.
    """
    progress = _Progress(plan.count)
    opened: WebSocket | None = None
    with trio.move_on_after(math.inf if timeout is None else timeout) as deadline:
        async with open_websocket(options) as ws:
            opened = ws
            transcript.connected(ws)
            await _exchange(ws, plan, transcript, progress)
    if opened is not None and opened.closed_reason is not None:
        transcript.closed(opened.closed_reason)
    if deadline.cancelled_caught:
        awaited = "" if plan.count is None else f" ({progress.received} of {plan.count} messages)"
        raise CommandTimeout(f"timed out after {timeout} s{awaited}")
    assert opened is not None
    closed = opened.closed_reason
    assert closed is not None
    if isinstance(closed, ConnectionClosedOK):
        return Exit.OK
    if (
        progress.we_closed
        and closed.rcvd is None
        and not isinstance(closed.__cause__, ProtocolError)
    ):
        return Exit.OK  # we closed as asked and the peer left without its Close: done anyway
    _fail(_reason(closed))
    return Exit.PROTOCOL


async def _exchange(ws: WebSocket, plan: Plan, transcript: Transcript, progress: _Progress) -> None:
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_send_part, ws, plan, transcript, progress)
            await _receive_part(ws, transcript, progress)
            if plan.sends is None or not progress.done:
                # Stop reading stdin, or stop sending to a connection that has ended;
                # texts given with --send are all sent before the close.
                nursery.cancel_scope.cancel()
        if progress.done and ws.state == "connected":
            progress.we_closed = True
            await ws.close()
    finally:
        if ws.mailbox is not None and ws.options.active is not False:
            # Nobody reads the mailbox any more: let the deliverer end instead of waiting.
            ws.mailbox.close()


async def _send_part(
    ws: WebSocket, plan: Plan, transcript: Transcript, progress: _Progress
) -> None:
    async def send(text: str) -> None:
        await ws.send(Text(text))
        transcript.sent(text)

    try:
        if plan.sends is not None:
            for text in plan.sends:
                await send(text)
            if not progress.done:
                return
        else:
            async with stdin_chunks() as receive:
                await read_lines(receive, send)
            if progress.expected is not None:
                return  # the awaited messages, not the end of input, end the session
        progress.we_closed = True
        await ws.close()
    except (ConnectionClosed, InvalidStateError):
        pass  # the connection ended first; the receiving side reports how


async def _receive_part(ws: WebSocket, transcript: Transcript, progress: _Progress) -> None:
    """Print messages until ``progress`` is done or the connection has ended."""

    def take(frame: Frame) -> None:
        transcript.received(frame)
        if isinstance(frame, Text | Binary):
            progress.received += 1

    try:
        if ws.mailbox is None or ws.options.active is False:
            while not progress.done:
                take(await ws.recv())
            return
        once = ws.options.active == "once"
        async for delivery in ws.mailbox:
            if not isinstance(delivery, Message):
                return  # Closed or Failed: the end, which closed_reason describes
            take(delivery.frame)
            if progress.done:
                return
            if once:
                await ws.setopts(active="once")
    except ConnectionClosed:
        pass


# --- demo ------------------------------------------------------------------------------


class _TransitionPrinter:
    """A lifecycle listener printing each transition (python-statemachine calls it)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def after_transition(self, event: str, source: Any, target: Any) -> None:
        self._say(f"lifecycle: {source.id} -> {target.id} ({event})")


def _demo_command(args: argparse.Namespace) -> Exit:
    return trio.run(demo, sys.stdout)


async def demo(out: TextIO) -> Exit:
    """Echo server and client in one trio run: print the lifecycle of one connection.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        CommandTimeout: it took longer than :data:`DEMO_TIMEOUT`.
    """
    from .server import serve_echo  # noqa: PLC0415 - needs the optional websockets

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    closed: ConnectionClosed | None = None
    with trio.move_on_after(DEMO_TIMEOUT) as deadline:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_echo, "127.0.0.1", 0)
            say(f"echo server: listening on {server.url}")
            ws = await start_link(nursery, server.url)
            ws.lifecycle.add_listener(_TransitionPrinter(say))  # type: ignore[no-untyped-call]
            say(f"lifecycle: {ws.state}")
            await ws.connect()
            for frame in (Text("hello, statews"), Binary(bytes(range(8)))):
                await ws.send(frame)
                say(f"> {describe(frame)}")
                say(f"< {describe(await ws.recv())}")
            latency = await ws.ping()
            say(f"ping: pong after {latency * 1000:.2f} ms")
            await ws.close()
            closed = ws.closed_reason
            assert closed is not None
            say(f"closed: {_close_text(closed.code, closed.reason)}")
            say(f"final state: {ws.state}")
            nursery.cancel_scope.cancel()  # stop the server
    if deadline.cancelled_caught:
        raise CommandTimeout(f"the demo did not finish within {DEMO_TIMEOUT} s")
    return Exit.OK if isinstance(closed, ConnectionClosedOK) else Exit.PROTOCOL


# --- serve, diagram, schema, check -----------------------------------------------------


def _serve_command(args: argparse.Namespace) -> Exit:
    if not args.verbose:
        logging.getLogger("statews.server").setLevel(logging.INFO)
    trio.run(serve, args.host, args.port, args.print_port or args.port == 0)
    return Exit.OK


async def serve(host: str, port: int, print_port: bool) -> None:
    """Run the echo server until interrupted; print its port on stdout if asked.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound.
    """
    from .server import serve_echo  # noqa: PLC0415 - needs the optional websockets

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_echo, host, port)
        if print_port:
            print(server.port, flush=True)


def _diagram_command(args: argparse.Namespace) -> Exit:
    from statemachine.contrib.diagram import GraphvizError  # noqa: PLC0415

    from .diagrams import render  # noqa: PLC0415 - the diagram libraries load on demand
    from .lifecycle import Lifecycle  # noqa: PLC0415

    try:
        text = render(Lifecycle, args.fmt)
    except GraphvizError as exc:  # also dot missing from PATH
        _fail(f"cannot draw {args.fmt}: {_reason(exc)}")
        return Exit.ERROR
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return Exit.OK


def _schema_command(args: argparse.Namespace) -> Exit:
    from .diagrams import options_schema  # noqa: PLC0415

    sys.stdout.write(options_schema())
    return Exit.OK


def _check_command(args: argparse.Namespace) -> Exit:
    if not _is_config_file(args.target):
        configs: dict[str | None, Options] = {args.name: load_target(args.target, args.name)}
    else:
        try:
            configs = check_config(args.target, args.name)
        except ConfigError as exc:
            for problem in exc.problems:
                _fail(_reason(problem))
            return Exit.OPTIONS
    data: object
    if args.name is not None or None in configs:
        (options,) = configs.values()
        data = dump_options(options)
    else:
        data = {name: dump_options(options) for name, options in configs.items()}
    # One write: the whole document or nothing, also into a closed pipe.
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return Exit.OK
