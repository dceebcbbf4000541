"""One WebSocket connection on trio: the hackney_ws API, the upgrade, and the end.

:class:`WebSocket` is what the application holds. It asks the declared lifecycle
(:class:`~statews.lifecycle.Lifecycle`) what is allowed and is the only sender of its
events; nothing here keeps a second copy of the state. It owns its parts, one job each,
and data flows one way through them: socket -> :class:`~.reader.Reader` -> sans-I/O core
-> :class:`~.inbox.Inbox` -> ``recv`` / ``recv_stream`` (:mod:`.streaming`) / the
owner's channel (:class:`~.delivery.Deliverer`); application -> core ->
:class:`~.writer.Writer` -> socket; :class:`~.keepalive.Keepalive` pings. The parts
report outcomes here (a Close or a violation parsed, the socket's end, a broken write)
and this class turns them into lifecycle events.

Invariants: a frame is queued whole or not at all (cancelling ``send`` never
desynchronises the stream); messages received before the end are handed out before
the end is reported; every task ends when the connection reaches ``closed``; Fragments
reach only the stream they were parsed for.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

import trio

from ..core.errors import (
    ActiveModeError,
    CloseCode,
    ConnectionClosed,
    ConnectionClosedOK,
    HandshakeError,
    InvalidStateError,
    RecvTimeout,
    WebSocketError,
    close_code_for,
)
from ..core.events import (
    MESSAGE_TYPES,
    Binary,
    Close,
    Fragment,
    Frame,
    Ping,
    Sendable,
    Text,
    summary,
    to_frame,
)
from ..core.protocol import ClientProtocol
from ..lifecycle.listeners import contained
from ..lifecycle.machine import Lifecycle, Operation, StateName
from ..options.model import Options
from .closing import ClosingBuffer, closed_error, payload_size
from .delivery import Active, Deliverer, Delivery, parse_active
from .establish import establish, handshake_error
from .inbox import Inbox
from .keepalive import Keepalive
from .observe import Hooks, Meter, Stats
from .reader import Reader
from .streaming import MessageStream, Receiver, aiter_chunks
from .transport import Transport, address_pair
from .writer import Writer

if TYPE_CHECKING:
    from ..lifecycle.drawing import Format

__all__ = ["MessageStream", "WebSocket"]

logger = logging.getLogger("statews.connection")


class WebSocket:
    """A WebSocket client connection (see :func:`statews.start_link`).

    Create it with :func:`statews.start_link`; it starts ``idle``. Its tasks live in the
    nursery given there and end when the connection is closed or the nursery is
    cancelled.
    """

    # Slots: an idle connection is mostly this object and its parts (see bench/README.md).
    __slots__ = (
        "__weakref__",
        "_closed",
        "_closed_exc",
        "_connect_scope",
        "_deliverer",
        "_deliverer_running",
        "_error",
        "_given_stream",
        "_hooks",
        "_inbox",
        "_keepalive",
        "_meter",
        "_nursery",
        "_proto",
        "_reader",
        "_receiver",
        "_transport",
        "_writer",
        "extensions",
        "http_version",
        "lifecycle",
        "options",
        "response_headers",
        "subprotocol",
    )

    def __init__(
        self,
        nursery: trio.Nursery,
        options: Options,
        *,
        owner: trio.MemorySendChannel[Delivery] | None = None,
        stream: trio.abc.Stream | None = None,
        listeners: Sequence[object] = (),
    ) -> None:
        self.options = options
        self._nursery = nursery
        # No listener, no cost: the machine, and the frame hooks, are then built bare.
        self.lifecycle = Lifecycle(
            f"ws{id(self):x}"[-8:],
            on_enter=self._entered,
            listeners=[contained(listener) for listener in listeners] or None,
        )
        hooks = Hooks(listeners) if listeners else None
        self._hooks = hooks if hooks is not None and hooks.any else None
        self._meter = Meter()
        self._given_stream = stream
        self._transport: Transport | None = None
        self._proto: ClientProtocol | None = None
        #: ``"1.1"`` or ``"2"``: the HTTP version of the opening handshake (``http2``).
        self.http_version = "1.1"
        self.subprotocol: str | None = None
        self.response_headers: tuple[tuple[str, str], ...] = ()
        self.extensions: tuple[str, ...] = ()
        # The owned parts. The inbox (socket -> application) exists from the start, so
        # that receiving after a failed connect reports the end; the writer, the reader
        # and the keepalive are made with the core once the upgrade succeeded.
        self._inbox = Inbox(options.max_queue, keep_control=options.control_frames)
        if self._hooks is not None and self._hooks.frame_received is not None:
            self._inbox.on_frame = functools.partial(self._hooks.received, self)
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._keepalive: Keepalive | None = None
        self._deliverer = Deliverer(self, self._inbox, owner, options.active, options.max_queue)
        self._deliverer_running = False
        self._connect_scope: trio.CancelScope | None = None
        self._receiver = Receiver(self._inbox, self._is_closed, self._closed_error)
        self._error: BaseException | None = None
        self._closed_exc: ConnectionClosed | None = None
        self._closed = trio.Event()
        for hook in (hooks and hooks.attach) or ():
            hook(self)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> StateName:
        """``"idle"``, ``"upgrading"``, ``"connected"``, ``"closing"`` or ``"closed"``:
        the declared lifecycle's state (typed, so that a misspelt one fails mypy)."""
        return self.lifecycle.state

    @property
    def mailbox(self) -> trio.MemoryReceiveChannel[Delivery]:
        """Where active mode delivers when no ``owner`` was given to :func:`start_link`
        (hackney's process mailbox): ``async for delivery in ws.mailbox: ...``.

        Raises:
            WebSocketError: deliveries go to an owner channel (given to ``start_link`` or
                ``controlling_process``), which has no mailbox here.
        """
        mailbox = self._deliverer.mailbox()
        if mailbox is None:
            raise WebSocketError(
                "no mailbox: deliveries go to the owner channel given to start_link() or"
                " controlling_process()"
            )
        return mailbox

    def __aiter__(self) -> AsyncIterator[Frame]:
        """``async for message in ws:``: :meth:`recv` until the connection closes.

        The loop ends quietly after a normal close (:class:`ConnectionClosedOK`: 1000 or
        1001 both ways) and raises :class:`ConnectionClosedError` otherwise, as websockets
        and trio-websocket do. Every message received before the close is yielded first.

        Raises: as :meth:`recv`, except ``ConnectionClosedOK``.
        """
        return self._messages()

    async def _messages(self) -> AsyncIterator[Frame]:
        while True:
            try:
                message = await self.recv()
            except ConnectionClosedOK:
                return
            yield message

    @property
    def closed_reason(self) -> ConnectionClosed | None:
        """Once closed: how (the exception ``recv`` raises after the last message); also
        inside listeners of the transition to ``closed``."""
        if self._closed_exc is None and self.state == "closed":
            return self._closed_error()
        return self._closed_exc

    def __repr__(self) -> str:
        return f"<statews.WebSocket {self.options.url} {self.state}>"

    # ------------------------------------------------------------------ connect

    async def connect(self, timeout: float | None = None) -> None:
        """Open TCP/TLS and perform the upgrade: ``idle -> upgrading -> connected``.

        Blocks until the upgrade is done. ``timeout`` (default ``connect_timeout``)
        bounds the whole of it: TCP connect, TLS, request and response.

        Raises:
            InvalidStateError: not ``idle``.
            ConnectTimeout: it took longer than the timeout.
            ConnectError: the TCP connection could not be made.
            TLSError: the TLS handshake failed.
            HandshakeRejected: the server answered with another status than 101 (a
                redirect when ``max_redirects`` is 0).
            RedirectError: a redirect was not followed (see
                :func:`statews.trio.redirects.follow_redirect`); redirects within
                ``max_redirects`` are followed, each hop over a new connection, and
                ``options`` becomes that of the URL finally connected to.
            InvalidHandshake: the server's answer is not a valid upgrade.
            ConnectionClosed: ``close()`` was called meanwhile.
        """
        self.lifecycle.require("connect")
        self.lifecycle.fire("connect")
        limit = self.options.connect_timeout if timeout is None else timeout
        # One scope for both ends of the wait: its deadline is the timeout, and close()
        # cancels it after taking it away (so that a cancel is told from a timeout).
        deadline = math.inf if limit is None else trio.current_time() + limit
        scope = self._connect_scope = trio.CancelScope(deadline=deadline)
        try:
            with scope:
                await self._upgrade()
        except (HandshakeError, OSError, trio.BrokenResourceError) as exc:
            # The error the application sees is also what later calls report as the cause.
            error = handshake_error(exc, limit, self.options.url)
            self._abandon_upgrade(error)
            if error is exc:
                raise
            raise error from exc
        except BaseException as exc:
            self._abandon_upgrade(exc, aborted=True)
            raise
        closed_meanwhile = self._connect_scope is None
        self._connect_scope = None
        if scope.cancelled_caught:
            if closed_meanwhile:  # close() was called while upgrading
                self._abandon_upgrade(None, aborted=True)
                raise self._closed_error()
            error = handshake_error(trio.TooSlowError(), limit, self.options.url)
            self._abandon_upgrade(error)
            raise error
        writer, reader, keepalive = self._writer, self._reader, self._keepalive
        assert writer is not None
        assert reader is not None
        self._nursery.start_soon(reader.run)  # the writer starts its task when needed
        interval = self.options.ping_interval
        if interval is not None and keepalive is not None:
            self._nursery.start_soon(
                keepalive.run,  # fails the connection with 1011 when a pong is late
                interval,
                self.options.ping_timeout,
                writer.wait_between_messages,
                self._reader_held_back,
                self._fail,
                lambda: self.state == "connected",
            )
        if self._deliverer.mode is not False:
            self._ensure_deliverer()

    async def _upgrade(self) -> None:
        done = await establish(self._nursery, self.options, self._given_stream)
        self.options = options = done.options
        self._transport = transport = done.transport
        self._proto = self._receiver.proto = proto = done.proto
        self.http_version = done.upgrade.http_version
        self.subprotocol = done.upgrade.subprotocol
        self.response_headers = done.upgrade.response.headers
        self.extensions = tuple(ext.name for ext in done.upgrade.extensions)
        # Plain TCP/Unix: the socket itself is read and written directly (no TLS between).
        plain_socket = (
            transport.socket_stream.socket if transport.stream is transport.socket_stream else None
        )
        self._writer = Writer(
            proto,
            self._nursery,
            transport.stream,
            plain_socket,
            options.write_limit,
            self._is_closed,
            self._record_error,
        )
        self._reader = Reader(
            proto,
            transport.stream,
            self._inbox,
            self._writer,
            self.lifecycle,
            self._begin_closing,
            self._finish,
            self._record_error,
            plain_socket,
        )
        if options.ping_interval is not None:
            self._start_keepalive()  # else made by the first ping(): a pong needs a ping
        self.lifecycle.fire("upgraded")
        if done.upgrade.trailing:
            self._reader.ingest(done.upgrade.trailing)

    def _abandon_upgrade(self, error: BaseException | None, *, aborted: bool = False) -> None:
        """The upgrade did not complete (``establish`` closed what it opened)."""
        self._connect_scope = None
        self._error = error
        if self.state == "upgrading":
            self.lifecycle.fire("aborted" if aborted else "upgrade_failed")

    # ------------------------------------------------------------------ sending

    async def send(self, message: Sendable) -> None:
        """Queue one message or frame for sending; return once the writer has it.

        ``message`` is a ``str`` (a text message), ``bytes``, ``bytearray`` or
        ``memoryview`` (a binary message), a :class:`Text`, :class:`Binary`,
        :class:`Ping`, :class:`Pong` or :class:`Close`, or one of hackney's forms:
        ``("text", d)``, ``("binary", d)``, ``("ping",)``, ``("ping", d)``, ``("pong",)``,
        ``("pong", d)``, ``("close",)``, ``("close", code, reason)``. A bare string is
        always text. Sending a Close starts the closing handshake without waiting for it
        (``close()`` waits). Waits only while more than ``write_limit`` bytes are
        queued. If cancelled, nothing of the frame was queued.

        Raises:
            InvalidStateError: the connection is not ``connected``.
            ConnectionClosed: the connection is closed.
            LocalProtocolError: the frame breaks the protocol (e.g. ping over 125 bytes).
            TypeError: ``message`` is none of these.
        """
        frame = message if isinstance(message, MESSAGE_TYPES) else to_frame(message)
        self._require_open("send")
        if isinstance(frame, Close):
            await trio.lowlevel.checkpoint_if_cancelled()
            self._queue_close(frame)
            return
        writer = self._writer
        assert writer is not None  # connected: made at the upgrade
        await writer.wait_room()
        self._require_open("send")
        assert self._proto is not None
        self._proto.send(frame)
        writer.flush()
        if type(frame) is Text or type(frame) is Binary:
            meter = self._meter
            meter.messages_out += 1
            meter.payload_out += payload_size(frame.data)
        if self._hooks is not None:
            self._hooks.sent(self, frame)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s > %s", self.lifecycle.name, summary(frame))

    def _queue_close(self, frame: Close) -> None:
        # A Close is never held back by write_limit: closing must work against a peer
        # that stopped reading (close_timeout then bounds it).
        assert self._proto is not None
        assert self._writer is not None
        self._proto.send(frame)
        logger.debug("%s > %s", self.lifecycle.name, summary(frame))
        if self._hooks is not None:
            self._hooks.sent(self, frame)
        self.lifecycle.fire("close_requested")
        self._writer.wake()

    async def send_stream(self, chunks: Iterable[str | bytes] | AsyncIterable[str | bytes]) -> None:
        """Send one message whose fragments are ``chunks``, an iterable or async iterable
        of all ``str`` (a text message) or all ``bytes`` (binary). Each chunk is one
        frame, sent as it comes, with back-pressure; an empty iterable sends nothing.

        If this is cancelled or the iterable raises after the first fragment went out,
        the message cannot be completed: the connection is failed with 1011 rather than
        left with a message no other frame may follow.

        Raises: as :meth:`send`.
        """
        started = False
        try:
            previous: str | bytes | None = None
            async for chunk in aiter_chunks(chunks):
                if previous is not None:
                    await self._send_fragment(previous, fin=False)
                    started = True
                previous = chunk
            if previous is not None:
                await self._send_fragment(previous, fin=True)
        except BaseException:
            proto = self._proto
            if started and proto is not None and proto.message_in_progress:
                abandoned = WebSocketError("a streamed message was abandoned midway")
                self._fail(abandoned, "message abandoned")
            raise

    async def _send_fragment(self, data: str | bytes, *, fin: bool) -> None:
        self._require_open("send")
        writer = self._writer
        assert writer is not None
        await writer.wait_room()
        self._require_open("send")
        assert self._proto is not None
        self._proto.send_fragment(data, fin=fin)
        writer.wake()
        self._meter.payload_out += payload_size(data)
        if fin:
            self._meter.messages_out += 1
        if logger.isEnabledFor(logging.DEBUG):
            kind = "TEXT" if isinstance(data, str) else "BINARY"
            logger.debug(
                "%s > %s fragment, %d bytes, fin=%s", self.lifecycle.name, kind, len(data), fin
            )
        if fin:
            writer.message_done()

    async def ping(self, data: bytes | None = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        ``data`` defaults to 4 random bytes. A pong answers the ping with the same
        payload and every ping sent before it.

        Raises: as :meth:`send`; :class:`ConnectionClosed` if the connection ends first;
        :class:`WebSocketError` if a ping with the same payload is still waiting.
        """
        self._require_open("ping")
        keepalive = self._keepalive or self._start_keepalive()
        return await keepalive.ping(data, self._closed_error)

    def _start_keepalive(self) -> Keepalive:
        self._keepalive = keepalive = Keepalive(self._send_ping)
        if self._hooks is not None and self._hooks.pong is not None:
            keepalive.on_pong = functools.partial(self._hooks.ponged, self)
        self._inbox.on_pong = keepalive.acknowledge
        return keepalive

    async def _send_ping(self, payload: bytes) -> None:
        await self.send(Ping(payload))

    def _reader_held_back(self) -> bool:
        return self.state == "connected" and self._inbox.holds_back()

    def _require_open(self, operation: Operation) -> None:
        """The lifecycle decides; once closed, the refusal says how the connection ended."""
        try:
            self.lifecycle.require(operation)
        except InvalidStateError:
            if self.state == "closed":
                closed = self._closed_error()
                raise closed from closed.__cause__  # how it ended, not the refusal
            raise

    # ------------------------------------------------------------------ receiving

    async def recv(self, timeout: float | None = None) -> Frame:
        """Return the next message (passive mode only).

        Messages received before the connection ended are returned first; then
        :class:`ConnectionClosed` is raised. ``timeout`` defaults to ``recv_timeout``.

        Raises:
            InvalidStateError: not connected yet.
            ActiveModeError: the connection is in active mode.
            RecvTimeout: nothing arrived in time; the connection stays usable.
            ConnectionClosed: the connection is closed and every message was read.
        """
        self._require_passive("recv")
        receiver = self._receiver
        if receiver.stream is not None:
            receiver.abandon()
        limit = self.options.recv_timeout if timeout is None else timeout
        if limit is None:
            frame = await receiver.next_item()
        else:
            try:
                with trio.fail_after(limit):
                    frame = await receiver.next_item()
            except trio.TooSlowError:
                raise RecvTimeout(f"no message within {limit} s") from None
        # Fragments are parsed only for an open stream (see Receiver.want, Receiver.abandon).
        assert not isinstance(frame, Fragment)
        return frame

    def recv_stream(self) -> MessageStream:
        """Receive the next message in pieces, without holding it whole (passive mode only).

        Use ``async with ws.recv_stream() as message: async for chunk in message: ...``:
        the chunks are ``str`` (text, validated and decoded) or ``bytes`` (binary) and
        join into the message; the iteration ends after its last piece. Each piece is what
        arrived, up to ``max_queue`` of them held ahead, so memory stays bounded by that and
        the read size, not by the message. ``max_message_size`` and ``max_frame_size``
        apply as for :meth:`recv`. The reader parses ahead of the application: a message
        already parsed comes as one chunk, and what had arrived of one being received is
        its first chunk. After a streamed message the reader waits for the next receive
        call, so that the following message is received as that call asks.

        Leaving the ``async with`` block (or calling :meth:`recv` or ``recv_stream``
        again) before the end discards the rest of the message. Control frames kept with
        ``control_frames=True`` are left for :meth:`recv`.

        The first two errors below are raised by this call, the others by the iteration.

        Raises:
            InvalidStateError: not connected yet.
            ActiveModeError: the connection is in active mode.
            RecvTimeout: no piece within ``recv_timeout``; the connection stays usable.
            ConnectionClosed: the connection closed before the message ended (after the
                pieces received before that), or before it began and every message was read.
            WebSocketError: iterating after the stream was abandoned.
        """
        self._require_passive("recv_stream")
        return self._receiver.open_stream(self.options.recv_timeout)

    def _require_passive(self, operation: str) -> None:
        self.lifecycle.require("recv")
        if self._deliverer.mode is not False:
            raise ActiveModeError(
                f"{operation}() is for passive mode; active={self._deliverer.mode!r}"
                " delivers to the owner"
            )

    # ------------------------------------------------------------------ active mode

    async def setopts(self, *, active: Active) -> None:
        """Set the delivery mode: ``False`` (passive), ``True`` or ``"once"``.

        ``"once"`` delivers one message to the owner, then returns to passive; set it
        again for the next one. Takes effect between two deliveries.

        Raises:
            OptionsError: ``active`` is not one of the three values.
        """
        active = parse_active(active)  # the one parser: as options and the CLI accept
        self.lifecycle.require("setopts")
        if active is not False:
            self._receiver.abandon()
            self._receiver.want(stream=False)  # the reader may wait for a receive call: go on
        await self._deliverer.change(mode=active)
        if active is not False:
            self._ensure_deliverer()

    async def controlling_process(self, owner: trio.MemorySendChannel[Delivery]) -> None:
        """Deliver to ``owner`` from now on; nothing in flight is lost or duplicated."""
        self.lifecycle.require("controlling_process")
        await self._deliverer.change(owner=owner)

    def _ensure_deliverer(self) -> None:
        if not self._deliverer_running and self.state not in ("idle", "upgrading"):
            self._deliverer_running = True
            self._nursery.start_soon(self._deliver_loop)

    async def _deliver_loop(self) -> None:
        try:
            await self._deliverer.run(self._closed_error, lambda: self.state == "closed")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.info("%r: owner channel closed; closing with 1001", self)
            if self.state == "connected":
                self._queue_close(Close(CloseCode.GOING_AWAY, "owner went away"))
        finally:
            self._deliverer_running = False

    # ------------------------------------------------------------------ close

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close gracefully and wait until closed, at most ``close_timeout`` (then abort).

        Idempotent: closing a closing or closed connection only waits for the end.
        Closing an idle or upgrading connection abandons it.

        Raises:
            LocalProtocolError: ``code`` may not be sent or ``reason`` is too long.
        """
        self.lifecycle.require("close")
        state = self.state
        if state == "idle":
            self.lifecycle.fire("aborted")
        elif state == "upgrading":
            scope, self._connect_scope = self._connect_scope, None
            if scope is not None:
                scope.cancel()
        elif state == "connected":
            self._queue_close(Close(code, reason))
        await self._closed.wait()

    async def aclose(self) -> None:
        """``close()`` with code 1000, for ``async with`` and trio conventions."""
        await self.close()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            await self.close()

    def _entered(self, state: str) -> None:
        """Told by the lifecycle of every state entered: synchronous, no I/O."""
        self._meter.entered(self.lifecycle.state)
        if state == "closing":
            self._on_closing()
        elif state == "closed":
            self._on_closed()

    def _on_closing(self) -> None:
        # From now on the reader reads on whatever the inbox holds; what it keeps is
        # bounded by the closing buffer, and the whole by close_timeout.
        inbox = self._inbox
        inbox.closing = ClosingBuffer(self.options.closing_buffer_size, self.lifecycle.name)
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._reader is not None:
            self._reader.close_within(self.options.close_timeout)
        if self._writer is not None:
            self._writer.wake()
        inbox.has_room.unpark_all()  # a reader held back by a full inbox must see the Close

    def _on_closed(self) -> None:
        self._closed_exc = self._closed_error()
        if self._keepalive is not None:
            self._keepalive.release_all()
        self._closed.set()
        self._inbox.wake_all()
        if self._writer is not None:
            self._writer.wake_all()

    def _is_closed(self) -> bool:
        return self.lifecycle.state == "closed"

    def _record_error(self, error: BaseException) -> None:
        """What ended or broke the connection; the first one reported is kept."""
        self._error = self._error or error

    def _fail(self, error: BaseException, reason: str) -> None:
        """Fail the connection: send a Close with the code that ``error`` maps to."""
        if self.state != "connected":
            return
        assert self._proto is not None
        assert self._writer is not None
        self._error = error
        self._proto.send(Close(close_code_for(error), reason))
        self.lifecycle.fire("failed")
        self._writer.wake()

    def _begin_closing(self) -> None:
        """Told by the reader: the core saw the peer's Close (and queued the echo) or a
        violation (then our Close reporting it is queued now)."""
        proto = self._proto
        assert proto is not None
        if proto.failure is not None:
            self._record_error(proto.failure)
            proto.fail()
            assert self._writer is not None
            self._writer.wake()
        if self.state == "connected":
            self.lifecycle.fire("failed" if proto.failure is not None else "close_received")

    async def _finish(self, event: str) -> None:
        """Told by the reader as it ends: let the writer flush (bounded), close the
        stream, fire ``event``."""
        writer = self._writer
        if event in ("close_completed", "connection_lost") and writer is not None and writer.busy:
            with trio.move_on_after(self.options.close_timeout or 1.0):
                await writer.wait_flushed()
        if self._transport is not None:
            await trio.aclose_forcefully(self._transport.stream)
        if self.state != "closed":
            self.lifecycle.fire(event)

    def _closed_error(self) -> ConnectionClosed:
        return closed_error(self._proto, self._error, self._inbox.closing)

    # ------------------------------------------------------------------ observing, addresses

    @property
    def stats(self) -> Stats:
        """The connection's counters now (see :class:`~statews.trio.observe.Stats`)."""
        return self._meter.snapshot(self._inbox, self._proto, self._keepalive, self._reader)

    def diagram(self, fmt: Format = "mermaid") -> str:
        """The lifecycle diagram with this connection's current state highlighted
        (``"mermaid"``, ``"md"``, ``"dot"`` or ``"svg"``; the last two need Graphviz)."""
        from ..lifecycle.drawing import render  # noqa: PLC0415 - diagram rendering is rarely needed

        return render(self.lifecycle, fmt)

    def peername(self) -> tuple[str, int]:
        """The peer's (address, port). Raises InvalidStateError unless connected/closing."""
        self.lifecycle.require("peername")
        assert self._transport is not None
        address = self._transport.socket_stream.socket.getpeername()
        return address_pair(address)

    def sockname(self) -> tuple[str, int]:
        """Our (address, port). Raises InvalidStateError unless connected/closing."""
        self.lifecycle.require("sockname")
        assert self._transport is not None
        address = self._transport.socket_stream.socket.getsockname()
        return address_pair(address)
