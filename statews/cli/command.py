"""The ``statews`` command line: connect, serve, demo, diagram, schema and check.

Built on the public API only (:func:`statews.open_websocket`, :func:`statews.start_link`,
:func:`statews.connect_forever`, :mod:`statews.options.config`, :mod:`statews.lifecycle.drawing`,
:mod:`statews.cli.server`); the connect session itself is :mod:`statews.cli.console`.

``statews connect URL|CONFIG|HOST:PORT`` is a client in the manner of wscat and
websocat: each line read on stdin is sent as a text message (``-b``: binary), each
message received is printed on stdout. A bare ``host:port[/path]`` means
``ws://host:port/path``.

Output. A text message is printed as it is; a binary message as ``base64:`` and the
base64 (RFC 4648, padded) of its whole payload, so that it can be decoded back
(:func:`statews.cli.console.parse_message`); with ``--show-ping`` pings and pongs as
``[ping N bytes] <hex>``. Lines carry a ``< `` prefix only when stdout is a terminal
(``--prefix``/``--no-prefix`` decide otherwise), so that ``statews connect URL --send
'{"a": 1}' | jq .`` works. With ``--json`` stdout has one JSON object per line:
``{"event": "connected", "url": ..., "subprotocol": ...}``, then ``{"direction": "in",
"type": "text", "data": ...}`` per message (``"binary"``, ``"ping"``, ``"pong"`` data
in base64), ``{"event": "pong", "round_trip": seconds}`` per answered ping of ours with
``--show-ping``, then ``{"event": "closed", "code": ..., "reason": ...}`` (plus
``"sent"``, our Close code, when no Close came back and the code is 1006, and
``"dropped_messages"`` when some were dropped while closing). Sent messages are not
printed, so stdout holds only what the server said; with ``-v`` they are echoed on
stderr as ``> text``.

Ending. At the end of the input, ``connect`` keeps printing what arrives until the
server closes or no message came for ``--wait`` seconds (default 1; 0 closes at once),
then closes with 1000 and prints everything received before the server's Close.
``-n`` stays connected instead; ``--count N`` closes after N messages received;
``-1`` sends one message (the first line, or ``--send``), prints one reply and closes.
``--send TEXT`` (repeatable) sends instead of reading stdin and closes after
``--count`` messages (default: as many as were sent). ``-r`` reconnects (backoff, as
:func:`statews.connect_forever`) when the connection ends abnormally; ``--send`` texts
are sent again on each connection. On stdin, ``/ping [data]`` pings and prints the
round trip, ``/close [code [reason]]`` closes; every other line is a message.

Record and replay. ``connect --record FILE`` writes the session as a transcript
(:mod:`statews.cli.transcript`); ``serve --replay FILE`` plays its server side to each
client (:mod:`statews.cli.replay`; ``--fast``: no delays, ``--loose``: ignore what
clients send); a malformed transcript exits 3.

Options. ``-o key=value`` (repeatable) sets any option of the model, dotted for groups
(``-o deflate.compress_level=1``); the value is read as JSON, else as a TOML value,
else taken as a string. The other flags (``-H``, ``--protocol``, ``--origin``,
``--active``, ``-k``) apply on top. ``-k`` turns TLS verification off and says so on
stderr, always.

Invariants:

* Every failure that an exit code names ends the command with one line
  ``statews: <reason>`` on stderr, never a traceback (``-v`` adds details: the
  status, headers and start of the body of a rejected handshake). The codes
  (:class:`Exit`): 0 the connection closed normally (1000/1001, or we closed it as
  asked), 1 any other error, 2 usage error (the command's usage is printed), 3 invalid
  options or configuration file (also a missing optional package), 4 opening
  handshake failed (refused, rejected, invalid, TLS, proxy), 5 protocol error or
  abnormal close, 6 timeout (``--timeout``, ``connect_timeout``, ``recv_timeout``),
  7 messages received while closing were dropped (past ``closing_buffer_size``),
  130 interrupted.
* stdout carries results only (messages, JSON records, schema, diagram, options);
  everything else goes to stderr. ``-v`` turns on DEBUG logs of the ``statews.*``
  loggers only (lifecycle transitions come from ``statews.lifecycle``). Output into a
  closed pipe (``| head``) ends the command quietly.
* stdin is read without blocking the event loop: through a non-blocking
  :class:`trio.lowlevel.FdStream` for pipes, sockets and terminals (its blocking flag is
  restored afterwards), through a worker thread otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import Any, Final, TextIO

import trio

from .. import __version__
from ..core.errors import (
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
    HandshakeRejected,
    OptionsError,
    ProtocolError,
    RecvTimeout,
)
from ..core.events import Binary, Text
from ..lifecycle.drawing import FORMATS
from ..options.config import (
    ConfigError,
    check_config,
    config_json_schema_text,
    dump_options,
)
from ..options.model import Options
from ..options.modes import Active, parse_active
from ..trio.client import start_link
from .console import (
    DEFAULT_WAIT,
    CommandTimeout,
    DroppedMessages,
    Plan,
    Transcript,
    close_text,
    connect_session,
    describe,
    session_failure,
)
from .replay import REPLAY_MISMATCH, serve_replay
from .server import ServerFunction, serve_until_signal
from .targets import (
    UsageError,
    connect_options,
    is_config_file,
    load_target,
)
from .transcript import TranscriptError, read_transcript, recording

__all__ = ["Exit", "exit_code_for", "main"]

#: How long ``statews demo`` may take in all.
DEMO_TIMEOUT: Final = 10.0
#: Bytes of a rejected handshake's body shown with ``-v``.
BODY_PREVIEW: Final = 200


class Exit(IntEnum):
    """The command's exit status."""

    OK = 0
    ERROR = 1
    USAGE = 2
    OPTIONS = 3
    HANDSHAKE = 4
    PROTOCOL = 5
    TIMEOUT = 6
    DROPPED = 7
    INTERRUPTED = 130


class MissingExtra(Exception):
    """An optional package the command needs is not installed."""


def exit_code_for(error: BaseException) -> Exit:
    """The exit status that reports ``error``."""
    if isinstance(error, UsageError):
        return Exit.USAGE
    if isinstance(error, OptionsError | MissingExtra | TranscriptError):
        return Exit.OPTIONS
    if isinstance(error, ConnectTimeout | RecvTimeout | CommandTimeout):
        return Exit.TIMEOUT
    if isinstance(error, HandshakeError):
        return Exit.HANDSHAKE
    if isinstance(error, DroppedMessages):
        return Exit.DROPPED
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
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader left (| head): end quietly; stdout goes nowhere so that the
        # interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.ERROR)
    except BaseException as exc:
        error = _unwrap(exc)
        if isinstance(error, KeyboardInterrupt):  # Ctrl-C is how a server is stopped
            return int(Exit.OK if args.command == "serve" else Exit.INTERRUPTED)
        code = exit_code_for(error)
        if code is Exit.ERROR and not isinstance(error, _REPORTED):
            raise  # a bug: keep the traceback
        _fail(_reason(error))
        if args.verbose and isinstance(error, HandshakeRejected):
            _show_rejection(error)
        return int(code)


def _run(args: argparse.Namespace) -> int:
    """Run the command; a closed stdout comes out as a bare BrokenPipeError."""
    command: Callable[[argparse.Namespace], Exit] = args.run
    try:
        code = int(command(args))
        sys.stdout.flush()  # here, so that a closed pipe is met inside main's handler
    except BaseException as exc:
        if isinstance(_unwrap(exc), BrokenPipeError):
            raise _unwrap(exc) from None
        raise
    else:
        return code


# Errors that are the environment's, not bugs: reported on one line, exit 1.
_REPORTED = (OSError, ImportError)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with "(default: ...)" after each option that has a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: shows defaults in its help, and reports an unknown
    argument with its own usage (not the top-level one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``statews`` and its subcommands."""
    common = _CommandParser(add_help=False)
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
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )

    connect = commands.add_parser(
        "connect",
        parents=[common],
        help="talk to a WebSocket server from the terminal or a script",
        description="Connect; send stdin lines (or --send texts) as messages; print what "
        "arrives (binary as base64:...). At the end of input, wait until the server is "
        "quiet, then close. Exit 0 on a normal close, 3 bad options, 4 handshake failed, "
        "5 protocol error or abnormal close, 6 timeout, 7 messages dropped while closing.",
    )
    _connect_arguments(connect)
    connect.set_defaults(run=_connect_command)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the built-in echo server (or replay a recorded session)",
        description="Echo every message back, or with --replay FILE play a recorded "
        "session to each client (needs the websockets package). Ctrl-C closes the "
        "clients with 1001. Exit 3 for a malformed transcript.",
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
    serve.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="play the server's side of a transcript (connect --record) instead of echoing; "
        f"a client that sends otherwise is closed with {REPLAY_MISMATCH}",
    )
    serve.add_argument(
        "--fast", action="store_true", help="with --replay: no recorded delays, as fast as possible"
    )
    serve.add_argument(
        "--loose", action="store_true", help="with --replay: ignore what the client sends"
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
    diagram.add_argument("--format", choices=FORMATS, default="mermaid", dest="fmt")
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


def _connect_arguments(connect: argparse.ArgumentParser) -> None:
    connect.add_argument(
        "target", metavar="URL|CONFIG|HOST:PORT", help="ws:// URL, configuration file or host:port"
    )
    connect.add_argument("--name", help="the connection to use in a configuration file")
    connect.add_argument(
        "-o",
        dest="option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an option (repeatable; dotted for groups: -o deflate.compress_level=1)",
    )
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
    connect.add_argument("--origin", help="send this Origin header")
    connect.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate and host name (warns on stderr)",
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
    connect.add_argument(
        "-b", "--binary", action="store_true", help="send lines (and --send texts) as binary"
    )
    connect.add_argument(
        "-1",
        "--one-message",
        dest="one",
        action="store_true",
        help="send one message (the first line, or --send), print one reply, close",
    )
    connect.add_argument(
        "-n",
        "--no-close",
        action="store_true",
        help="stay connected after the end of input (until the server closes)",
    )
    connect.add_argument(
        "--wait",
        type=partial(_seconds, zero=True),
        default=DEFAULT_WAIT,
        metavar="S",
        help="at the end of input, close once no message came for S seconds (0: at once)",
    )
    connect.add_argument(
        "-r",
        "--reconnect",
        action="store_true",
        help="reconnect with backoff when the connection ends abnormally",
    )
    connect.add_argument(
        "--ping-interval",
        type=_seconds,
        metavar="S",
        help="ping every S seconds instead of the keepalive (close 1011 if ping_timeout passes)",
    )
    connect.add_argument(
        "--show-ping",
        action="store_true",
        help="print the pings and pongs received and the round trip of ours",
    )
    connect.add_argument("--json", action="store_true", help="print one JSON object per line")
    connect.add_argument(
        "--prefix",
        action=argparse.BooleanOptionalAction,
        help="print '< ' before each message (default: when stdout is a terminal)",
    )
    connect.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on stderr but errors and warnings"
    )
    connect.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up after S seconds in all (exit 6)"
    )
    connect.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write the session to FILE as a JSON Lines transcript (statews serve --replay)",
    )


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


def _seconds(text: str, *, zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not ((value >= 0 if zero else value > 0) and math.isfinite(value)):
        bound = ">= 0" if zero else "> 0"
        raise argparse.ArgumentTypeError(f"expected a number of seconds {bound}, got {text!r}")
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


def _show_rejection(error: HandshakeRejected) -> None:
    """``-v``: the rejected handshake's response, indented under the error line."""
    lines = [f"HTTP {error.status} {error.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in error.headers]
    if error.body:
        more = "..." if len(error.body) > BODY_PREVIEW else ""
        lines.append(f"body: {error.body[:BODY_PREVIEW]!r}{more}")
    print("\n".join("  " + line for line in lines), file=sys.stderr, flush=True)


def _unwrap(error: BaseException) -> BaseException:
    """The one meaningful exception in nested exception groups (the first leaf that is
    not a cancellation), or ``error`` itself."""
    while isinstance(error, BaseExceptionGroup):
        leaves = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        if not leaves:
            break
        error = leaves[0]
    return error


# --- connect ---------------------------------------------------------------------------


def _connect_command(args: argparse.Namespace) -> Exit:
    options = connect_options(args)
    if args.one and args.send is not None and len(args.send) > 1:
        raise UsageError("-1 sends one message: give at most one --send")
    if args.record is not None and args.reconnect:
        raise UsageError("--record records one connection: not with -r")
    sends = None if args.send is None else tuple(args.send)
    count = args.count
    if args.one:
        count = 1
    elif count is None and sends is not None:
        count = len(sends)
    plan = Plan(
        sends,
        count,
        binary=args.binary,
        one=args.one,
        no_close=args.no_close,
        wait=args.wait,
        ping_interval=args.ping_interval,
        ping_timeout=options.ping_timeout,
        show_ping=args.show_ping,
        reconnect=args.reconnect,
    )
    prefix = sys.stdout.isatty() if args.prefix is None else args.prefix
    transcript = Transcript(
        json_lines=args.json,
        verbose=args.verbose,
        out=sys.stdout,
        err=sys.stderr,
        prefix=prefix,
        quiet=args.quiet,
    )
    if args.insecure and options.secure:
        transcript.warn("--insecure: the server's TLS certificate and host name are NOT verified")
    with recording(args.record) as transcript.recorder:
        closed, we_closed = trio.run(
            partial(connect_session, options, plan, transcript, args.timeout)
        )
    if closed is None:
        return Exit.ERROR  # never connected, yet no error: cannot happen
    failure = session_failure(closed, we_closed)
    if failure is None:
        return Exit.OK
    _fail(_reason(failure))
    return exit_code_for(failure)


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
            say(f"closed: {close_text(closed.code, closed.reason)}")
            say(f"final state: {ws.state}")
            nursery.cancel_scope.cancel()  # stop the server
    if deadline.cancelled_caught:
        raise CommandTimeout(f"the demo did not finish within {DEMO_TIMEOUT} s")
    return Exit.OK if isinstance(closed, ConnectionClosedOK) else Exit.PROTOCOL


# --- serve, diagram, schema, check -----------------------------------------------------


def _serve_command(args: argparse.Namespace) -> Exit:
    if (args.fast or args.loose) and args.replay is None:
        raise UsageError("--fast and --loose go with --replay FILE")
    server: ServerFunction | None = None
    if args.replay is not None:
        transcript = read_transcript(args.replay)  # before listening: exit 3 if malformed
        server = partial(serve_replay, transcript, fast=args.fast, loose=args.loose)
    if not args.verbose:
        logging.getLogger("statews.server").setLevel(logging.INFO)
    trio.run(serve_until_signal, args.host, args.port, args.print_port or args.port == 0, server)
    return Exit.OK


def _diagram_command(args: argparse.Namespace) -> Exit:
    from statemachine.contrib.diagram import GraphvizError  # noqa: PLC0415

    from ..lifecycle import Lifecycle, render  # noqa: PLC0415 - the diagram libraries load on demand

    try:
        text = render(Lifecycle, args.fmt)
    except ImportError as exc:  # pydot
        raise MissingExtra(
            f"--format {args.fmt} needs pydot: pip install 'statews[diagrams]'"
        ) from exc
    except GraphvizError as exc:  # also dot missing from PATH
        _fail(f"cannot draw {args.fmt}: {_reason(exc)}")
        return Exit.ERROR
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return Exit.OK


def _schema_command(args: argparse.Namespace) -> Exit:
    sys.stdout.write(config_json_schema_text())
    return Exit.OK


def _check_command(args: argparse.Namespace) -> Exit:
    if not is_config_file(args.target):
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
