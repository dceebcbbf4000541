"""The built-in echo server behind ``statews serve`` and ``statews demo``: a test peer.

It runs on the ``websockets`` package's trio server (an independent implementation, so
statews is checked against someone else's code), which is an optional dependency:
``pip install 'statews[server]'``. Without it, :func:`serve_echo` raises
:class:`ServerUnavailable` saying so.

Invariants:

* Every message is sent back unchanged, in order, on the connection it came on; every
  message received before the client's Close is echoed before the server's Close.
  (websockets answers a Close inside its parser, before the messages that preceded it
  reach the handler; :func:`echo_connection` holds that answer back until the echo
  loop has drained them.)
* Cancelled, the server closes its open connections with 1001 (going away) and waits
  for them at most :data:`GOING_AWAY_TIMEOUT` seconds before dropping them.
* Each connection and its end are logged at INFO on the ``statews.server`` logger, and
  "listening" once; websockets' own logs go to ``statews.server.websockets``, its
  INFO records demoted to DEBUG (they repeat ours). The server is meant for loopback
  and tests, and limits incoming messages to :data:`MAX_MESSAGE_SIZE`.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from websockets.trio.server import Server, ServerConnection

__all__ = [
    "GOING_AWAY_TIMEOUT",
    "MAX_MESSAGE_SIZE",
    "CloseGate",
    "EchoServer",
    "ServerFunction",
    "ServerUnavailable",
    "address_of",
    "echo_connection",
    "hold_close",
    "serve_echo",
    "serve_handler",
    "serve_until_signal",
]

logger = logging.getLogger("statews.server")

#: Largest message the echo server accepts (statews' default ``max_message_size``).
MAX_MESSAGE_SIZE: Final = 64 * 2**20
#: Seconds a cancelled server waits for its clients to answer its 1001 Close.
GOING_AWAY_TIMEOUT: Final = 3.0


#: Awaited with a client's Close code and reason before the server answers that Close.
CloseGate = Callable[[int, str], Awaitable[None]]


class ServerUnavailable(ImportError):
    """The ``websockets`` package, which the echo server runs on, is not installed."""


@dataclass(frozen=True, slots=True)
class EchoServer:
    """Where a running server (echo or replay) listens (the first of its addresses)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The ``ws://`` URL of the server's root."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/"


class _DemotedInfo(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger: its INFO records ("server listening", "connection open", ...)
    repeat the echo server's own, so they are logged at DEBUG."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    task_status: trio.TaskStatus[EchoServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an echo server on ``host``:``port`` until cancelled; then close its open
    connections with 1001 (waiting at most :data:`GOING_AWAY_TIMEOUT` seconds).

    With ``nursery.start(serve_echo, host, 0)`` the OS picks a free port and the
    :class:`EchoServer` returned says which.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    await serve_handler(_echo, "echo server", host, port, task_status=task_status)


async def serve_handler(
    handler: Callable[[ServerConnection], Awaitable[None]],
    name: str,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[EchoServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``handler`` for each connection (an :func:`echo_connection` instance) on
    ``host``:``port`` until cancelled, as :func:`serve_echo` does; ``name`` is what the
    "listening" and "stopped" log lines call the server.

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    try:
        from websockets.trio.server import serve  # noqa: PLC0415 - an optional dependency
    except ImportError as exc:
        raise ServerUnavailable(
            f"the {name} needs the websockets package: pip install 'statews[server]'"
        ) from exc
    try:
        # Bound here rather than by serve(), so that a failure is a plain OSError.
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        error = OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        error.errno = exc.errno
        raise error from exc
    address: Any = listeners[0].socket.getsockname()
    bound = EchoServer(str(address[0]), int(address[1]))
    # The websockets server runs shielded: a cancellation of ours must not cancel its
    # connections before they have said goodbye with 1001.
    shield = trio.CancelScope(shield=True)

    async def run(*, task_status: trio.TaskStatus[Server]) -> None:
        with shield:
            await serve(
                handler,
                listeners=listeners,
                max_size=MAX_MESSAGE_SIZE,
                logger=_DemotedInfo(logging.getLogger("statews.server.websockets")),
                create_connection=echo_connection(),
                task_status=task_status,
            )

    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(run)
        logger.info("%s listening on %s", name, bound.url)
        task_status.started(bound)
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True) as going_away:
                going_away.deadline = trio.current_time() + GOING_AWAY_TIMEOUT
                await server.aclose()  # 1001 to every open connection, waits for handlers
            shield.cancel()  # whatever did not finish in time
            logger.info("%s stopped", name)


#: A server function as :func:`serve_echo`: ``(host, port, *, task_status)``.
ServerFunction = Callable[..., Awaitable[None]]


async def serve_until_signal(
    host: str, port: int, print_port: bool, server: ServerFunction | None = None
) -> None:
    """Run ``server`` (default: :func:`serve_echo`) until SIGINT or SIGTERM (its clients
    are closed with 1001); print its port on stdout if asked (``statews serve``).

    Raises:
        ServerUnavailable: ``websockets`` is not installed.
        OSError: the address cannot be bound.
    """
    # A signal received, not a KeyboardInterrupt raised anywhere: the server's goodbye
    # must not be interrupted halfway.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(server or serve_echo, host, port)
            if print_port:
                print(bound.port, flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


def hold_close(conn: ServerConnection, gate: CloseGate) -> None:
    """Make ``conn`` (made by :func:`serve_handler`) answer its client's Close only once
    ``gate`` has returned (see :func:`echo_connection`)."""
    conn.close_gate = gate  # type: ignore[attr-defined]  # EchoConnection's


@cache
def echo_connection() -> type[ServerConnection]:
    """websockets' server connection, with its reply to a client's Close held back until
    the echo loop has echoed every message that came before that Close.

    websockets' protocol answers a Close (and half-closes TCP) while parsing, so that
    messages parsed in the same read could no longer be echoed. The protocol here keeps
    the Close frame instead (further input is discarded, as RFC 6455 1.4 asks), the
    connection ends the message queue after the messages that preceded it (the handler
    drains them, then sees the end), and :meth:`reply_to_close` replays the frame through
    websockets' own handling: the reply, the TCP half-close, the closed state.

    A handler may set the connection's ``close_gate`` (a :data:`CloseGate`): the reply
    then waits until the gate, called with the held Close's code and reason, returns
    (the replay server sends what its transcript says comes before the Close).
    """
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415 - optional dependency
    from websockets.frames import Close, Frame, Opcode  # noqa: PLC0415
    from websockets.protocol import Event, State  # noqa: PLC0415
    from websockets.server import ServerProtocol  # noqa: PLC0415
    from websockets.trio.messages import Assembler  # noqa: PLC0415
    from websockets.trio.server import ServerConnection  # noqa: PLC0415
    from websockets.typing import Data  # noqa: PLC0415

    class EchoProtocol(ServerProtocol):
        held_close: Frame | None = None

        def recv_frame(self, frame: Frame) -> None:
            if (
                frame.opcode is Opcode.CLOSE
                and self.state is State.OPEN
                and self.current_size is None  # else the base class fails the connection
            ):
                Close.parse(frame.data)  # a malformed Close fails now, as in the base class
                self.held_close = frame
                self.parser = self._discard()
                next(self.parser)
                self.events.append(frame)
                return
            super().recv_frame(frame)

        def _discard(self) -> Generator[None]:
            while not (yield from self.reader.at_eof()):
                self.reader.discard()
            # The client left before our reply: the connection ends with its Close.
            if self.held_close is not None:
                self.close_rcvd = Close.parse(self.held_close.data)
                self.held_close = None
            self.state = State.CLOSED
            yield
            raise AssertionError("_discard() shouldn't step after EOF")

        def reply_to_close(self) -> None:
            """Handle the held Close as websockets does on receipt (a no-op without one)."""
            frame, self.held_close = self.held_close, None
            if frame is not None and self.state is not State.CLOSED:
                super().recv_frame(frame)
                self.events.pop()  # the Close event was reported when it was held

        def send_close(self, code: int | None = None, reason: str = "") -> None:
            super().send_close(code, reason)
            self.reply_to_close()  # both Closes sent: the handshake is complete

    class EchoAssembler(Assembler):
        on_end: Callable[[], Awaitable[None]] | None = None

        async def get(self, decode: bool | None = None) -> Data:  # type: ignore[override]
            try:
                return await super().get(decode)
            except EOFError:
                # The handler asks for the next message: it has echoed every one before.
                if self.on_end is not None:
                    await self.on_end()
                raise

    class EchoConnection(ServerConnection):
        protocol: EchoProtocol
        close_gate: CloseGate | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # serve() and the base class build a plain protocol and assembler; the
            # subclasses only add methods and attributes with class defaults, so the
            # instances can take their class.
            self.protocol.__class__ = EchoProtocol
            self.recv_messages.__class__ = EchoAssembler
            assert isinstance(self.recv_messages, EchoAssembler)
            self.recv_messages.on_end = self._reply_to_close

        def process_event(self, event: Event) -> None:
            super().process_event(event)
            if isinstance(event, Frame) and self.protocol.held_close is event:
                self.recv_messages.close()  # the handler gets what came before, then the end

        async def _reply_to_close(self) -> None:
            frame = self.protocol.held_close
            if frame is None:
                return
            if self.close_gate is not None:
                close = Close.parse(frame.data)
                await self.close_gate(close.code, close.reason)
                if self.protocol.held_close is None:
                    return  # answered meanwhile (the gate's owner closed)
            try:
                async with self.send_context():
                    self.protocol.reply_to_close()
            except ConnectionClosed:
                pass  # ended another way meanwhile; recv() reports how

    return EchoConnection


async def _echo(conn: ServerConnection) -> None:
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415 - optional dependency

    peer = address_of(conn.remote_address)
    path = conn.request.path if conn.request is not None else "?"
    logger.info("%s: connected, path %s", peer, path)
    count = 0
    try:
        async for message in conn:
            count += 1
            await conn.send(message)
    except ConnectionClosed:
        pass  # the end is reported below, from the connection's close codes
    code = conn.close_code if conn.close_code is not None else 1006
    logger.info("%s: closed with %s after %d messages received", peer, code, count)


def address_of(address: Any) -> str:
    """A peer's address as ``host:port`` (IPv6 in brackets)."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)
