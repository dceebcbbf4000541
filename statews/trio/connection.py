"""One WebSocket connection on trio: the hackney_ws API, the upgrade, and delivery.

The sans-I/O core (:class:`~statews.protocol.ClientProtocol`) does the framing; the
reader and writer tasks live in :mod:`statews.tasks` (the half of :class:`WebSocket`
that runs in them); :class:`~statews.lifecycle.Lifecycle` holds the lifecycle state and
nothing here keeps a second copy of it: the runtime asks it what is allowed and sends it
events. ``recv`` takes whole messages from the inbox; ``recv_stream`` asks the reader to
stream the next message as Fragments (:mod:`statews.streaming`), which is how a message
larger than memory is received; ``_deliver_loop`` (active modes) hands messages to the
owner one at a time (:class:`~statews.delivery.Deliverer`).

Invariants: a frame is queued whole or not at all (cancelling ``send`` never
desynchronises the stream); messages received before the end are handed out before
the end is reported; every task ends when the connection reaches ``closed``; Fragments
reach only the stream they were parsed for.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING

import trio

from ..core.errors import (
    ActiveModeError,
    CloseCode,
    ConnectError,
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
    HandshakeRejected,
    InvalidHandshake,
    InvalidStateError,
    RecvTimeout,
    WebSocketError,
    connection_closed,
)
from ..core.events import Binary, Close, Fragment, Frame, Ping, Sendable, Text, to_frame
from ..core.protocol import ClientProtocol
from ..lifecycle.machine import Lifecycle, Operation
from ..options.model import Options
from .closing import ClosingBuffer
from .delivery import Active, Closed, Deliverer, Delivery, Failed, parse_active
from .http2 import end_with_closing_handshake, http2_upgrade
from .opening import Upgrade, upgrade
from .redirects import follow_redirect
from .streaming import MessageStream, aiter_chunks
from .tasks import RECEIVE_SIZE, ConnectionTasks, summary
from .transport import Transport, address_pair, open_transport, socket_stream_of
from .writer import Writer

if TYPE_CHECKING:
    from ..lifecycle.drawing import Format

__all__ = ["RECEIVE_SIZE", "MessageStream", "WebSocket", "to_frame"]

logger = logging.getLogger("statews.connection")


class WebSocket(ConnectionTasks):
    """A WebSocket client connection (see :func:`statews.start_link`).

    Create it with :func:`statews.start_link`; it starts ``idle``. Its tasks live in the
    nursery given there and end when the connection is closed or the nursery is
    cancelled.
    """

    #: ``"1.1"`` or ``"2"``: the HTTP version of the opening handshake (option ``http2``).
    http_version: str = "1.1"

    def __init__(
        self,
        nursery: trio.Nursery,
        options: Options,
        *,
        owner: trio.MemorySendChannel[Delivery] | None = None,
        stream: trio.abc.Stream | None = None,
    ) -> None:
        self.options = options
        self._nursery = nursery
        self.lifecycle = Lifecycle(f"ws{id(self):x}"[-8:], on_enter=self._entered)
        self._mailbox: trio.MemoryReceiveChannel[Delivery] | None = None
        if owner is None:
            owner, self._mailbox = trio.open_memory_channel[Delivery](options.max_queue)
        self._given_stream = stream
        self._transport: Transport | None = None
        self._proto: ClientProtocol | None = None
        self.subprotocol: str | None = None
        self.response_headers: tuple[tuple[str, str], ...] = ()
        self.extensions: tuple[str, ...] = ()
        # Inbox and its wake-ups: recv/deliverer wait for messages, the reader for room.
        self._inbox: deque[Frame | Fragment] = deque()
        self._has_message = trio.lowlevel.ParkingLot()
        self._has_room = trio.lowlevel.ParkingLot()
        # The write side, made with the core once the upgrade succeeded.
        self._writer: Writer | None = None
        self._connect_scope: trio.CancelScope | None = None
        self._reader_scope = trio.CancelScope()
        self._deliverer = Deliverer(
            self, self._inbox, self._has_message, self._has_room, owner, options.active
        )
        self._deliverer_running = False
        # The message being taken in pieces (recv_stream); Fragments in the inbox are its.
        self._stream: MessageStream | None = None
        # Drop the Fragments parsed until the end of a message whose stream was abandoned.
        self._discarding = False
        # A streamed message ended: the reader waits for the application's next receive
        # call, which says whether the next message comes whole or in pieces.
        self._await_demand = False
        # What the peer sends once we are closing is kept up to closing_buffer_size.
        self._closing_buffer: ClosingBuffer | None = None
        self._pings: dict[bytes, tuple[float, trio.Event]] = {}
        self._error: BaseException | None = None
        self._closed_exc: ConnectionClosed | None = None
        self._closed = trio.Event()
        self._keepalive_scope = trio.CancelScope()

    # ------------------------------------------------------------------ state

    @property
    def mailbox(self) -> trio.MemoryReceiveChannel[Delivery]:
        """Where active mode delivers when no ``owner`` was given to :func:`start_link`
        (hackney's process mailbox): ``async for delivery in ws.mailbox: ...``.

        Raises:
            WebSocketError: deliveries go to an owner channel (given to ``start_link`` or
                ``controlling_process``), which has no mailbox here.
        """
        if self._mailbox is None:
            raise WebSocketError(
                "no mailbox: deliveries go to the owner channel given to start_link() or"
                " controlling_process()"
            )
        return self._mailbox

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
        """Once closed: how (the exception ``recv`` raises after the last message)."""
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
                :func:`statews.redirects.follow_redirect`); redirects within
                ``max_redirects`` are followed, each hop over a new connection, and
                ``options`` becomes that of the URL finally connected to.
            InvalidHandshake: the server's answer is not a valid upgrade.
            ConnectionClosed: ``close()`` was called meanwhile.
        """
        self.lifecycle.fire("connect")
        limit = self.options.connect_timeout if timeout is None else timeout
        scope = self._connect_scope = trio.CancelScope()
        try:
            with scope, trio.fail_after(math.inf if limit is None else limit):
                await self._upgrade()
        except (HandshakeError, trio.TooSlowError, OSError, trio.BrokenResourceError) as exc:
            # The error the application sees is also what later calls report as the cause.
            error = self._handshake_error(exc, limit)
            await self._abandon_upgrade(error)
            if error is exc:
                raise
            raise error from exc
        except BaseException as exc:
            await self._abandon_upgrade(exc, aborted=True)
            raise
        finally:
            self._connect_scope = None
        if scope.cancelled_caught:  # close() was called while upgrading
            await self._abandon_upgrade(None, aborted=True)
            raise self._closed_error()
        assert self._writer is not None
        self._nursery.start_soon(self._read_loop)
        self._nursery.start_soon(self._writer.run)
        if self.options.ping_interval is not None:
            self._nursery.start_soon(self._keepalive_loop)
        if self._deliverer.mode is not False:
            self._ensure_deliverer()

    def _handshake_error(self, exc: BaseException, limit: float | None) -> HandshakeError:
        """The :class:`HandshakeError` that reports ``exc``, raised during the upgrade."""
        if isinstance(exc, HandshakeError):
            return exc
        if isinstance(exc, trio.TooSlowError):
            return ConnectTimeout(f"connect and upgrade took longer than {limit} s")
        if isinstance(exc, OSError):
            return ConnectError(f"cannot connect to {self.options.url}: {exc}")
        return InvalidHandshake(f"connection broke during the handshake: {exc}")

    async def _upgrade(self) -> None:
        if self._given_stream is not None:
            stream = self._given_stream
            self._transport = Transport(stream, socket_stream_of(stream))
            done = await upgrade(stream, self.options)
        else:
            done = await self._upgrade_following_redirects()
        options = self.options
        self.http_version = done.http_version
        self.subprotocol = done.subprotocol
        self.response_headers = done.response.headers
        self.extensions = tuple(ext.name for ext in done.extensions)
        self._proto = ClientProtocol(
            max_frame_size=options.max_frame_size,
            max_message_size=options.max_message_size,
            fragment_size=options.fragment_size,
            extensions=done.extensions,
        )
        transport = self._transport
        assert transport is not None
        end_with_closing_handshake(transport.stream, self._proto)  # HTTP/2: no TCP FIN
        # Plain TCP/Unix: direct writes on the socket's descriptor when the task is idle.
        plain = transport.stream is transport.socket_stream
        self._writer = Writer(
            self._proto,
            transport.stream,
            transport.socket_stream.socket.fileno() if plain else -1,
            options.write_limit,
            self._is_closed,
            self._writer_broke,
        )
        self.lifecycle.fire("upgraded")
        if done.trailing:
            self._ingest(done.trailing)

    async def _upgrade_following_redirects(self) -> Upgrade:
        """Open a transport and upgrade over it; on a redirect, close it and start over
        at the new URL (:func:`~statews.redirects.follow_redirect` decides), so that
        ``self.options`` ends as the options of the URL finally connected to."""
        chain = [self.options.url]
        while True:
            try:
                if self.options.http2 == "never":
                    self._transport = await open_transport(self.options)
                else:  # RFC 8441 on a pooled HTTP/2 connection, or a transport for HTTP/1.1
                    self._transport, done = await http2_upgrade(self._nursery, self.options)
                    if done is not None:
                        return done
                return await upgrade(self._transport.stream, self.options)
            except HandshakeRejected as rejected:
                moved = follow_redirect(self.options, rejected, chain)
                logger.info("%r: HTTP %d redirect to %s", self, rejected.status, moved.url)
            if self._transport is not None:
                await trio.aclose_forcefully(self._transport.stream)
            self._transport = None
            self.options = moved
            chain.append(moved.url)

    async def _abandon_upgrade(self, error: BaseException | None, *, aborted: bool = False) -> None:
        self._error = error
        if self.state == "upgrading":
            self.lifecycle.fire("aborted" if aborted else "upgrade_failed")
        if self._transport is not None:
            await trio.aclose_forcefully(self._transport.stream)

    # ------------------------------------------------------------------ sending

    async def send(self, message: Sendable) -> None:
        """Queue one message or frame for sending; return once the writer has it.

        ``message`` is a ``str`` (a text message), ``bytes``, ``bytearray`` or
        ``memoryview`` (a binary message), a :class:`Text`, :class:`Binary`,
        :class:`Ping`, :class:`Pong` or :class:`Close`, or one of hackney's forms:
        ``("text", d)``, ``("binary", d)``, ``("ping",)``, ``("ping", d)``, ``("pong",)``,
        ``("pong", d)``, ``("close",)``, ``("close", code, reason)``. A bare string is
        always text. Sending a Close starts the closing handshake
        without waiting for it (``close()`` waits). Waits only while more than
        ``write_limit`` bytes are queued. If cancelled, nothing of the frame was queued.

        Raises:
            InvalidStateError: the connection is not ``connected``.
            ConnectionClosed: the connection is closed.
            LocalProtocolError: the frame breaks the protocol (e.g. ping over 125 bytes).
            TypeError: ``message`` is none of these.
        """
        frame = message if isinstance(message, _MESSAGE_TYPES) else to_frame(message)
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
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s > %s", self.lifecycle.name, summary(frame))

    def _queue_close(self, frame: Close) -> None:
        # A Close is never held back by write_limit: closing must work against a peer
        # that stopped reading (close_timeout then bounds it).
        assert self._proto is not None
        assert self._writer is not None
        self._proto.send(frame)
        logger.debug("%s > %s", self.lifecycle.name, summary(frame))
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
        if logger.isEnabledFor(logging.DEBUG):
            kind = "TEXT" if isinstance(data, str) else "BINARY"
            logger.debug(
                "%s > %s fragment, %d bytes, fin=%s", self.lifecycle.name, kind, len(data), fin
            )
        if fin:
            writer.message_sent.unpark_all()

    async def ping(self, data: bytes | None = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        ``data`` defaults to 4 random bytes. A pong answers the ping with the same
        payload and every ping sent before it.

        Raises: as :meth:`send`; :class:`ConnectionClosed` if the connection ends first;
        :class:`WebSocketError` if a ping with the same payload is still waiting.
        """
        payload, sent_at, waiter = await self._start_ping(data)
        await waiter.wait()
        if payload in self._pings:  # woken by the end, not by a pong
            del self._pings[payload]
            raise self._closed_error()
        return trio.current_time() - sent_at

    async def _start_ping(self, data: bytes | None) -> tuple[bytes, float, trio.Event]:
        if data is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        else:
            payload = bytes(data)
            if payload in self._pings:
                raise WebSocketError(f"a ping with payload {payload!r} is already waiting")
        waiter = trio.Event()
        sent_at = trio.current_time()
        self._pings[payload] = (sent_at, waiter)
        try:
            await self.send(Ping(payload))
        except BaseException:
            self._pings.pop(payload, None)
            raise
        return payload, sent_at, waiter

    async def _keepalive_loop(self) -> None:
        """Ping every ``ping_interval``; fail with 1011 when a pong is ``ping_timeout`` late."""
        interval = self.options.ping_interval
        timeout = self.options.ping_timeout
        assert interval is not None
        with self._keepalive_scope:
            while True:
                await trio.sleep(interval)
                # A ping is legal between fragments, but some peers mishandle it there.
                while self._proto is not None and self._proto.message_in_progress:
                    assert self._writer is not None
                    await self._writer.message_sent.park()
                try:
                    _, _, waiter = await self._start_ping(None)
                except (ConnectionClosed, InvalidStateError):
                    return
                while not waiter.is_set():
                    with trio.move_on_after(math.inf if timeout is None else timeout):
                        await waiter.wait()
                    if waiter.is_set() or self._reader_paused():
                        # Paused, we are the slow side: the pong may wait behind
                        # messages the application has not taken yet.
                        continue
                    self._fail(
                        TimeoutError(f"keepalive: no pong within {timeout} s"),
                        "keepalive ping timeout",
                    )
                    return
                if self.state != "connected":
                    return

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
        if self._stream is not None:
            self._abandon_stream()
        limit = self.options.recv_timeout if timeout is None else timeout
        if limit is None:
            frame = await self._next_message()
        else:
            try:
                with trio.fail_after(limit):
                    frame = await self._next_message()
            except trio.TooSlowError:
                raise RecvTimeout(f"no message within {limit} s") from None
        # Fragments are parsed only for an open stream (see _want_message, _abandon_stream).
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

        Raises (from the iteration, except the first two):
            InvalidStateError: not connected yet.
            ActiveModeError: the connection is in active mode.
            RecvTimeout: no piece within ``recv_timeout``; the connection stays usable.
            ConnectionClosed: the connection closed before the message ended (after the
                pieces received before that), or before it began and every message was read.
            WebSocketError: iterating after the stream was abandoned.
        """
        self._require_passive("recv_stream")
        self._abandon_stream()
        stream = self._stream = MessageStream(self)
        return stream

    def _require_passive(self, operation: str) -> None:
        self.lifecycle.require("recv")
        if self._deliverer.mode is not False:
            raise ActiveModeError(
                f"{operation}() is for passive mode; active={self._deliverer.mode!r}"
                " delivers to the owner"
            )

    async def _next_message(self, stream: MessageStream | None = None) -> Frame | Fragment:
        inbox = self._inbox
        while True:
            if stream is not None and self._stream is not stream:
                raise WebSocketError("the rest of this message was discarded (stream abandoned)")
            if inbox:
                break
            if self.state == "closed":
                await trio.lowlevel.checkpoint()
                raise self._closed_error()
            self._want_message(stream is not None)
            await self._has_message.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        frame = inbox.popleft()
        if self._has_room:  # only a reader held back by a full inbox waits there
            self._has_room.unpark_all()
        return frame

    async def _next_chunk(self, stream: MessageStream) -> str | bytes:
        """The next piece of ``stream``'s message; ends the stream after the last one.

        Raises: as the iteration of :meth:`recv_stream`.
        """
        limit = self.options.recv_timeout
        while True:
            if limit is None:
                frame = await self._next_message(stream)
            else:
                try:
                    with trio.fail_after(limit):
                        frame = await self._next_message(stream)
                except trio.TooSlowError:
                    raise RecvTimeout(f"no message within {limit} s") from None
            if isinstance(frame, _CHUNK_TYPES):
                if not isinstance(frame, Fragment) or frame.fin:
                    self._end_stream(stream)
                return frame.data
            stream.held.append(frame)  # a control frame: recv() returns it afterwards

    def _want_message(self, stream: bool) -> None:
        """The application waits with an empty inbox: let a reader waiting for that go on,
        and have the next message parsed whole or in pieces (``stream``): the core streams
        the rest of one already arriving whole."""
        if self._await_demand:
            self._await_demand = False
            self._has_room.unpark_all()
        proto = self._proto
        if proto is not None and not proto.streaming_message:
            proto.stream_next = stream

    def _abandon_stream(self) -> None:
        """End the open stream, if any, before its message ended: its Fragments leave the
        inbox and the rest of its message will be dropped as it arrives."""
        stream = self._stream
        if stream is None:
            return
        inbox = self._inbox
        ended = False
        if any(type(frame) is Fragment for frame in inbox):
            # The core stops after a streamed message: every Fragment queued is this one's.
            kept = []
            for frame in inbox:
                if isinstance(frame, Fragment):
                    ended = frame.fin
                else:
                    kept.append(frame)
            inbox.clear()
            inbox.extend(kept)
            self._has_room.unpark_all()
        proto = self._proto
        if not ended and proto is not None:
            self._discarding = proto.streaming_message
            proto.stream_next = False
        stream.abandoned = True
        self._end_stream(stream)

    def _end_stream(self, stream: MessageStream) -> None:
        self._stream = None
        stream.done = True
        if stream.held:  # control frames that came before whatever the inbox holds
            self._inbox.extendleft(reversed(stream.held))
            stream.held.clear()

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
            self._abandon_stream()
            self._want_message(False)  # the reader may wait for a receive call: go on
        await self._deliverer.change(mode=active)
        if active is not False:
            self._ensure_deliverer()

    async def controlling_process(self, owner: trio.MemorySendChannel[Delivery]) -> None:
        """Deliver to ``owner`` from now on; nothing in flight is lost or duplicated."""
        self.lifecycle.require("controlling_process")
        self._mailbox = None
        await self._deliverer.change(owner=owner)

    def _ensure_deliverer(self) -> None:
        if not self._deliverer_running and self.state not in ("idle", "upgrading"):
            self._deliverer_running = True
            self._nursery.start_soon(self._deliver_loop)

    async def _deliver_loop(self) -> None:
        try:
            await self._deliverer.run(self._end_delivery, lambda: self.state == "closed")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.info("%r: owner channel closed; closing with 1001", self)
            if self.state == "connected":
                self._queue_close(Close(CloseCode.GOING_AWAY, "owner went away"))
        finally:
            self._deliverer_running = False

    def _end_delivery(self) -> Delivery:
        closed = self._closed_error()
        if closed.rcvd is not None:
            return Closed(
                self,
                closed.rcvd.code,
                closed.rcvd.reason,
                dropped_messages=closed.dropped_messages,
                dropped_bytes=closed.dropped_bytes,
            )
        return Failed(self, closed)

    # ------------------------------------------------------------------ close

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close gracefully and wait until closed, at most ``close_timeout`` (then abort).

        Idempotent: closing a closing or closed connection only waits for the end.
        Closing an idle or upgrading connection abandons it.

        Raises:
            LocalProtocolError: ``code`` may not be sent or ``reason`` is too long.
        """
        state = self.state
        if state == "idle":
            self.lifecycle.fire("aborted")
        elif state == "upgrading":
            if self._connect_scope is not None:
                self._connect_scope.cancel()
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
        if state == "closing":
            self._on_closing()
        elif state == "closed":
            self._on_closed()

    def _on_closing(self) -> None:
        self._closing_buffer = ClosingBuffer(self.options.closing_buffer_size, self.lifecycle.name)
        self._keepalive_scope.cancel()
        timeout = self.options.close_timeout
        if timeout is not None:
            self._reader_scope.deadline = min(
                self._reader_scope.deadline, trio.current_time() + timeout
            )
        if self._writer is not None:
            self._writer.wake()
        self._has_room.unpark_all()  # a reader held back by a full inbox must see the Close

    def _on_closed(self) -> None:
        self._keepalive_scope.cancel()
        self._closed_exc = self._closed_error()
        for _, waiter in self._pings.values():
            waiter.set()
        self._closed.set()
        self._has_message.unpark_all()
        self._has_room.unpark_all()
        if self._writer is not None:
            self._writer.wake_all()

    def _is_closed(self) -> bool:
        return self.lifecycle.state == "closed"

    def _writer_broke(self, error: BaseException) -> None:
        """The writer could not write (it aborts the stream; the reader sees the end)."""
        self._error = self._error or error

    def _closed_error(self) -> ConnectionClosed:
        """A fresh exception describing the end (fresh: re-raising one instance would
        pile up tracebacks)."""
        proto = self._proto
        rcvd = proto.close_received if proto is not None else None
        sent = proto.close_sent if proto is not None else None
        error = self._error
        if error is not None:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        elif proto is None:
            detail = "closed before the upgrade completed"
        else:
            detail = ""
        buffer = self._closing_buffer
        closed = connection_closed(
            rcvd,
            sent,
            detail,
            dropped_messages=buffer.dropped_messages if buffer is not None else 0,
            dropped_bytes=buffer.dropped_bytes if buffer is not None else 0,
        )
        closed.__cause__ = error
        return closed

    # ------------------------------------------------------------------ addresses

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


# isinstance() with a tuple is several times faster than with a union type.
_MESSAGE_TYPES = (Text, Binary)
_CHUNK_TYPES = (Fragment, Text, Binary)
