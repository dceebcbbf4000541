"""WebSockets over HTTP/2 (RFC 8441) on trio: the connection pool and the per-WebSocket stream.

:func:`http2_upgrade` is what :meth:`WebSocket.connect <statews.WebSocket.connect>` calls
when ``http2`` is not ``"never"``: it finds (or opens) an HTTP/2 connection to the
origin, opens one stream on it with an extended CONNECT (:mod:`statews.core.h2opening`)
and returns that stream as a :class:`trio.abc.Stream` (:class:`HTTP2Stream`), so the
WebSocket's reader and writer run over it unchanged. ``h2`` (python-hyper) does the
framing, HPACK and flow-control bookkeeping; the driving code is here.

Where the tasks live: each HTTP/2 connection runs one task (reading, with a writer task
inside it) in the nursery of the first WebSocket that opened it. The pool is per nursery:
WebSockets to the same origin (scheme, host, port, Unix path, proxy, TLS and TCP
options) started in the same nursery share connections; WebSockets in other nurseries get
their own. So no task outlives the nursery its WebSockets live in. A connection is closed
(GOAWAY, then the socket) as soon as its last stream ends: there is no idle pool.

Invariants:

* ``SETTINGS_MAX_CONCURRENT_STREAMS`` is respected: when every connection of an origin is
  at its limit, a new connection is opened (no waiting).
* Flow control per stream: received data is acknowledged (WINDOW_UPDATE) only once the
  WebSocket's reader took it, so a WebSocket whose application stops reading stops its
  own stream at :data:`STREAM_WINDOW` bytes while the others flow (the connection window,
  :data:`CONNECTION_WINDOW`, is large enough for every stream's window).
* A stream ends with END_STREAM when the peer ended its side first (after the closing
  handshake), with RST_STREAM (CANCEL) otherwise. RST_STREAM from the peer, GOAWAY and a
  broken connection fail the stream with :class:`~statews.core.h2opening.HTTP2Error` (a
  ``ConnectionError``: the WebSocket ends with 1006, that error as the cause).
* Every public call is bounded by its caller (``connect_timeout`` covers opening the
  connection, the SETTINGS exchange and the CONNECT); a connection's task ends when its
  socket ends or its nursery is cancelled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import weakref
from collections import deque
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import trio

from ..core.errors import InvalidHandshake, OptionsError
from ..core.h2opening import HTTP2Error, check_connect_response, connect_headers
from ..core.protocol import ClientProtocol
from ..options.model import Options
from .opening import Upgrade, agreed_extensions, extension_offers
from .transport import Transport, open_transport

__all__ = [
    "CONNECTION_WINDOW",
    "STREAM_WINDOW",
    "HTTP2Connection",
    "HTTP2Stream",
    "end_with_closing_handshake",
    "http2_upgrade",
]

logger = logging.getLogger("statews.http2")

#: Receive window of each stream: what one WebSocket may have in flight towards us.
STREAM_WINDOW = 1024 * 1024
#: Receive window of the whole connection: room for many streams' windows at once.
CONNECTION_WINDOW = 2**30
#: Largest response header list we accept (as the HTTP/1.1 parser's header limit).
MAX_HEADER_LIST_SIZE = 64 * 1024
_RECEIVE_SIZE = 64 * 1024
#: Seconds the connection's task gives its last frames (GOAWAY) to leave.
_FLUSH_TIMEOUT = 1.0

_Key = tuple[Any, ...]

#: What a broken connection raises: the socket's errors and ours.
_BROKEN = (HTTP2Error, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


def _as_http2_error(exc: BaseException) -> HTTP2Error:
    return exc if isinstance(exc, HTTP2Error) else HTTP2Error(f"HTTP/2 connection broke: {exc}")


async def http2_upgrade(
    nursery: trio.Nursery, options: Options
) -> tuple[Transport, Upgrade | None]:
    """Open a WebSocket over HTTP/2 for ``options`` (``http2`` is ``"auto"`` or ``"always"``).

    Returns the stream's transport and the completed upgrade; or, in ``"auto"``, a
    transport for an HTTP/1.1 upgrade and ``None``: for ``ws://``, when the server
    selected ``http/1.1`` by ALPN (that connection is returned), or when it selected
    ``h2`` without ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` (a new connection then, offering
    no ``h2``; the pool remembers the origin and does not try HTTP/2 there again).

    Raises:
        InvalidHandshake: (``"always"``) the server does not select ``h2`` or does not
            enable extended CONNECT; the server does not speak HTTP/2 (no SETTINGS: an
            HTTP/1.1 server reached with prior knowledge, say); the stream was reset or
            the connection failed before the response; the response is not a valid
            RFC 8441 answer.
        HandshakeRejected: the server answered with another status than 200.
        OptionsError: (``"always"``) a header cannot be sent over HTTP/2 (``"auto"`` then
            upgrades over HTTP/1.1), raised before any I/O.
        and what :func:`~statews.transport.open_transport` raises.
    """
    pool = _pool_for(nursery)
    key = _origin_key(options)
    if options.http2 == "auto" and (not options.secure or key in pool.http11_only):
        return await open_transport(options), None
    offers = extension_offers(options)
    try:  # before any I/O: what cannot go over HTTP/2 is known from the options alone
        headers = connect_headers(
            host=options.host,
            port=options.effective_port,
            secure=options.secure,
            resource=options.path,
            protocols=options.protocols,
            extensions=", ".join(offers.values()) or None,
            headers=options.headers,
        )
    except OptionsError:
        if options.http2 == "always":
            raise
        # auto: HTTP/1.1 may carry a connection-specific header (or raises the same error)
        return await open_transport(options), None
    connection = await pool.connection_for(key, options)
    if connection is None:  # auto, and the server has no RFC 8441
        return await open_transport(options), None
    if isinstance(connection, Transport):  # auto, and the server chose http/1.1
        return connection, None
    try:
        stream = connection.open_stream(headers)
    except BaseException:
        if not connection.streams:  # a connection opened for this stream alone
            connection.shutdown()
        raise
    try:
        status, response_headers = await stream.response()
        response, accepted = check_connect_response(
            status, response_headers, protocols=options.protocols, offered_extensions=tuple(offers)
        )
        extensions = agreed_extensions(accepted, options)
    except BaseException:
        stream.release()
        raise
    done = Upgrade(response, accepted.subprotocol, extensions, b"", http_version="2")
    return Transport(stream, connection.transport.socket_stream), done


# --------------------------------------------------------------------------- the pool


class _Pool:
    """The HTTP/2 connections of one nursery, by origin."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.connections: dict[_Key, list[HTTP2Connection]] = {}
        #: Origins that answered h2 without extended CONNECT: HTTP/1.1 from then on.
        self.http11_only: set[_Key] = set()
        #: Origins whose first connection is being opened (TCP, TLS, ALPN).
        self._opening: dict[_Key, trio.Event] = {}

    async def connection_for(
        self, key: _Key, options: Options
    ) -> HTTP2Connection | Transport | None:
        """A connection to ``key`` with room for one more stream; a new one if none has.

        In ``"auto"``: a :class:`Transport` when the server selected ``http/1.1`` by
        ALPN (for the HTTP/1.1 upgrade), ``None`` when it has no RFC 8441.

        Raises: as :func:`http2_upgrade`.
        """
        while True:
            for connection in list(self.connections.get(key, ())):
                if not connection.ready.is_set():
                    # Being opened by another WebSocket: its SETTINGS decide for us too.
                    await connection.ready.wait()
                    break
                if connection.has_room():
                    return connection
            else:
                opening = self._opening.get(key)
                if opening is not None:  # another WebSocket is connecting: its result decides
                    await opening.wait()
                    continue
                opening = self._opening[key] = trio.Event()
                try:
                    return await self._open(key, options)
                finally:
                    del self._opening[key]
                    opening.set()

    async def _open(self, key: _Key, options: Options) -> HTTP2Connection | Transport | None:
        transport = await open_transport(options, offer_h2=True)
        if options.secure:
            selected = transport.stream.selected_alpn_protocol()  # type: ignore[attr-defined]
            if selected != "h2":
                if options.http2 == "auto":
                    return transport  # HTTP/1.1 over this very connection
                await trio.aclose_forcefully(transport.stream)
                raise InvalidHandshake(
                    f"http2=always: the server did not select h2 by ALPN (it selected {selected!r})"
                )
        connection = HTTP2Connection(transport, self, key)
        self.connections.setdefault(key, []).append(connection)
        try:
            await self.nursery.start(connection.run)
        except HTTP2Error as exc:  # the socket works, but what came back is not HTTP/2
            self._forget(connection)
            how = "by ALPN" if options.secure else "with prior knowledge (h2c)"
            raise InvalidHandshake(
                f"http2={options.http2}: no HTTP/2 from the server, chosen {how}: {exc}"
            ) from exc
        except BaseException:
            self._forget(connection)
            raise
        finally:
            connection.ready.set()
        if connection.connect_protocol:
            return connection
        connection.shutdown()
        if options.http2 == "always":
            raise InvalidHandshake(
                "http2=always: the server speaks HTTP/2 but does not enable extended CONNECT "
                "(SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)"
            )
        self.http11_only.add(key)
        return None

    def _forget(self, connection: HTTP2Connection) -> None:
        connections = self.connections.get(connection.key, [])
        if connection in connections:
            connections.remove(connection)
        if not connections:
            self.connections.pop(connection.key, None)


_pools: weakref.WeakKeyDictionary[trio.Nursery, _Pool] = weakref.WeakKeyDictionary()


def _pool_for(nursery: trio.Nursery) -> _Pool:
    pool = _pools.get(nursery)
    if pool is None:
        pool = _pools[nursery] = _Pool(nursery)
    return pool


def _origin_key(options: Options) -> _Key:
    """What must be equal for two WebSockets to share a connection."""
    shared = options.model_dump(
        mode="json",
        include={
            "transport",
            "host",
            "port",
            "unix_path",
            "proxy",
            "ssl_options",
            "connect_options",
        },
    )
    # A ready SSLContext is not serialised: the same object means the same TLS settings.
    return (json.dumps(shared, sort_keys=True), id(options.ssl_options.context))


# ----------------------------------------------------------------------- a connection


class HTTP2Connection:
    """One HTTP/2 client connection and its streams (see the module docstring).

    :meth:`run` is its task; the streams call the rest, synchronously except where
    they wait for flow-control room.
    """

    def __init__(self, transport: Transport, pool: _Pool, key: _Key) -> None:
        self.transport = transport
        self.key = key
        self._pool = pool
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.streams: dict[int, HTTP2Stream] = {}
        #: Set once the server's SETTINGS came (or the connection failed first).
        self.ready = trio.Event()
        self.connect_protocol = False
        #: Why the connection ended; ``None`` while it is usable.
        self.error: HTTP2Error | None = None
        self._has_output = trio.lowlevel.ParkingLot()
        self._window = trio.lowlevel.ParkingLot()
        self._closing = False
        self._writing = False  # the write loop is inside send_all
        self._flushed = trio.Event()
        self._read_scope = trio.CancelScope()

    def has_room(self) -> bool:
        """Whether one more stream may be opened now."""
        if self._closing or self.error is not None:
            return False
        limit = self.h2.remote_settings.max_concurrent_streams
        return len(self.streams) < limit

    # -- the task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Speak HTTP/2 until the socket ends or :meth:`shutdown`; started once the server's
        SETTINGS arrived.

        Raises (before it started only): HTTP2Error, OSError, trio errors of the socket.
        """
        started = False
        stream = self.transport.stream
        try:
            self.h2.initiate_connection()
            self.h2.update_settings(
                {
                    h2.settings.SettingCodes.ENABLE_PUSH: 0,
                    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
                }
            )
            self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
            await stream.send_all(self.h2.data_to_send())
            while not self.ready.is_set():
                await self._receive(stream)
            started = True
            task_status.started()
            async with trio.open_nursery() as inner:
                inner.start_soon(self._write_loop, stream)
                with self._read_scope:
                    try:
                        while True:
                            await self._receive(stream)
                    except _BROKEN as exc:  # caught here: the nursery would wrap it in a group
                        self._begin_close(_as_http2_error(exc))
                self._begin_close(None)
                with trio.move_on_after(_FLUSH_TIMEOUT):
                    await self._flushed.wait()
                inner.cancel_scope.cancel()
        except _BROKEN as exc:
            self._begin_close(_as_http2_error(exc))
            if not started:
                raise
        finally:
            self._begin_close(HTTP2Error("HTTP/2 connection ended"))
            self._pool._forget(self)
            with trio.CancelScope(shield=True):
                # Cancelled (the nursery ends) before the write loop sent what shutdown()
                # queued: the GOAWAY still leaves, bounded, unless a write was cut midway.
                pending = b"" if self._writing else self.h2.data_to_send()
                if pending:
                    with trio.move_on_after(_FLUSH_TIMEOUT), contextlib.suppress(*_BROKEN):
                        await stream.send_all(pending)
                await trio.aclose_forcefully(stream)

    async def _receive(self, stream: trio.abc.Stream) -> None:
        data = await stream.receive_some(_RECEIVE_SIZE)
        if not data:
            raise HTTP2Error("the server closed the HTTP/2 connection")
        if self.h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
            # After a GOAWAY, sent or received, h2 accepts no frame (its SETTINGS ACK, say)
            # and every stream is over: what still arrives is dropped.
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY saying why; it goes out before the socket closes.
            self._has_output.unpark_all()
            code = getattr(exc, "error_code", None)
            raise HTTP2Error(f"HTTP/2 protocol error from the server: {exc}", code) from exc
        for event in events:
            self._dispatch(event)
        self._has_output.unpark_all()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.is_set():
                self.connect_protocol = self.h2.remote_settings.enable_connect_protocol == 1
                self.ready.set()
            self._window.unpark_all()
            return
        if isinstance(event, h2.events.WindowUpdated):
            self._window.unpark_all()
            return
        if isinstance(event, h2.events.ConnectionTerminated):
            code = event.error_code
            name = getattr(code, "name", code)
            # h2 allows nothing more on the connection after a GOAWAY: every stream ends.
            self._begin_close(
                HTTP2Error(
                    f"HTTP/2 GOAWAY from the server ({name}, last stream {event.last_stream_id})",
                    int(code or 0),
                )
            )
            return
        stream_id = getattr(event, "stream_id", None)
        stream = self.streams.get(stream_id) if stream_id is not None else None
        if isinstance(event, h2.events.DataReceived):
            if stream is None:  # a stream we reset: give the window back at once
                self._acknowledge(event.flow_controlled_length, event.stream_id)
            else:
                stream.on_data(event.data, event.flow_controlled_length)
            if event.stream_ended and stream is not None:
                stream.on_end()
        elif stream is None:
            return
        elif isinstance(event, h2.events.ResponseReceived):
            stream.on_response(event.headers)
            if event.stream_ended:
                stream.on_end()
        elif isinstance(event, h2.events.StreamEnded | h2.events.TrailersReceived):
            stream.on_end()
        elif isinstance(event, h2.events.StreamReset):
            code = event.error_code
            name = getattr(code, "name", code)
            stream.on_error(HTTP2Error(f"HTTP/2 stream reset by the server ({name})", int(code)))
            self._window.unpark_all()  # its writer may wait for a window that will not open

    async def _write_loop(self, stream: trio.abc.Stream) -> None:
        try:
            while True:
                data = self.h2.data_to_send()
                if data:
                    self._writing = True
                    if self._closing:  # the last frames (GOAWAY): not cut by the nursery's end
                        with trio.CancelScope(shield=True), trio.move_on_after(_FLUSH_TIMEOUT):
                            await stream.send_all(data)
                    else:
                        await stream.send_all(data)
                    self._writing = False
                    continue
                if self._closing:
                    self._flushed.set()
                    self._read_scope.cancel()
                    return
                await self._has_output.park()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._begin_close(HTTP2Error(f"HTTP/2 connection broke: {exc}"))
            self._flushed.set()
            self._read_scope.cancel()

    # -- for the streams

    def open_stream(self, headers: list[tuple[str, str]]) -> HTTP2Stream:
        """Send the CONNECT request on a new stream (no waiting: frames leave with the task).

        Raises:
            OptionsError: h2 refuses a header.
            InvalidHandshake: the connection ended meanwhile.
        """
        if self.error is not None or self._closing:
            raise InvalidHandshake(f"the HTTP/2 connection ended before the CONNECT: {self.error}")
        stream_id = self.h2.get_next_available_stream_id()
        encoded = [(n.encode("ascii"), v.encode("utf-8")) for n, v in headers]
        self.h2.send_headers(stream_id, encoded, end_stream=False)
        stream = self.streams[stream_id] = HTTP2Stream(self, stream_id)
        self._has_output.unpark_all()
        return stream

    def release(self, stream: HTTP2Stream, *, graceful: bool) -> None:
        """``stream`` is done; the last one closes the connection.

        A stream both sides ended is closed already. Otherwise RST_STREAM: NO_ERROR when
        ``graceful`` (the closing handshake completed; our END_STREAM went with our Close
        if it could), CANCEL when not. Never a DATA frame after the Close: a server may
        have forgotten the stream by then (hypercorn fails the whole connection on one).
        """
        self._window.unpark_all()  # a send waiting on it must see it gone
        if self.streams.pop(stream.stream_id, None) is None:
            return
        if self.error is None and not (stream.local_ended and stream.ended):
            code = h2.errors.ErrorCodes.NO_ERROR if graceful else h2.errors.ErrorCodes.CANCEL
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.reset_stream(stream.stream_id, code)
            self._has_output.unpark_all()
        if not self.streams:
            self.shutdown()

    def shutdown(self) -> None:
        """Close gracefully: GOAWAY, then the socket (frames queued before leave first)."""
        if self._closing:
            return
        self._closing = True
        self._pool._forget(self)
        if self.error is None:
            self.h2.close_connection()
        self._has_output.unpark_all()
        if not self.ready.is_set():
            self._read_scope.cancel()

    def _begin_close(self, error: HTTP2Error | None) -> None:
        """The connection is over (``error`` says why): no new stream, every stream fails."""
        if error is not None and self.error is None:
            self.error = error
            for stream in list(self.streams.values()):
                stream.on_error(error)
        self._closing = True
        self._pool._forget(self)
        self.ready.set()
        self._has_output.unpark_all()
        self._window.unpark_all()

    def acknowledge(self, size: int, stream_id: int) -> None:
        """The application took ``size`` flow-controlled bytes of ``stream_id``."""
        self._acknowledge(size, stream_id)
        self._has_output.unpark_all()

    def _acknowledge(self, size: int, stream_id: int) -> None:
        if size and self.error is None:
            # The stream may have ended meanwhile: its window no longer matters then.
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.h2.acknowledge_received_data(size, stream_id)

    async def send(self, stream: HTTP2Stream, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` on ``stream`` as DATA frames, as the flow-control windows allow;
        the frame that carries the WebSocket's Close carries END_STREAM (RFC 8441 5.1:
        what TCP's FIN is to HTTP/1.1).

        Raises:
            HTTP2Error: the stream or the connection ended.
        """
        view = memoryview(data)
        while view:
            if stream.error is not None:
                raise stream.error
            if stream.released:
                raise trio.ClosedResourceError("the HTTP/2 stream was closed")
            try:
                room = min(
                    self.h2.local_flow_control_window(stream.stream_id),
                    self.h2.max_outbound_frame_size,
                )
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
                raise HTTP2Error(f"the HTTP/2 stream is closed: {exc}") from exc
            if room <= 0:
                await self._window.park()
                continue
            last = room >= len(view) and stream.sends_last()
            self.h2.send_data(stream.stream_id, bytes(view[:room]), end_stream=last)
            stream.local_ended = last
            view = view[room:]
            self._has_output.unpark_all()
        await trio.lowlevel.checkpoint()


# -------------------------------------------------------------------------- a stream


def end_with_closing_handshake(stream: trio.abc.Stream, proto: ClientProtocol) -> None:
    """Over HTTP/2, have ``stream`` end (``receive_some`` returns ``b""``, ``aclose``
    sends END_STREAM) once ``proto`` sent and received a Close: there is no TCP FIN to
    wait for, and a server may end its side only after ours (hypercorn does). Other
    streams are left alone."""
    if isinstance(stream, HTTP2Stream):
        stream._proto = proto


class HTTP2Stream(trio.abc.Stream):
    """One WebSocket's HTTP/2 stream as a byte stream: DATA frames both ways.

    ``receive_some`` returns ``b""`` once the peer sent END_STREAM and raises
    :class:`~statews.core.h2opening.HTTP2Error` after RST_STREAM, GOAWAY or a broken
    connection (``send_all`` too); ``aclose`` ends the stream (END_STREAM if the peer
    ended its side, RST_STREAM otherwise) and never waits.
    """

    def __init__(self, connection: HTTP2Connection, stream_id: int) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.error: HTTP2Error | None = None
        self._chunks: deque[tuple[bytes, int]] = deque()
        #: END_STREAM received / sent.
        self.ended = False
        self.local_ended = False
        self._released = False
        self._response: tuple[int, list[tuple[str, str]]] | None = None
        self._wake = trio.lowlevel.ParkingLot()
        #: The WebSocket's core (:func:`end_with_closing_handshake`).
        self._proto: ClientProtocol | None = None

    # -- from the connection

    def on_response(self, headers: list[tuple[bytes, bytes]]) -> None:
        status = 0
        regular = []
        for name, value in headers:
            if name == b":status":
                status = int(value)
            elif not name.startswith(b":"):
                regular.append((name.decode("latin-1"), value.decode("latin-1")))
        self._response = (status, regular)
        self._wake.unpark_all()

    def on_data(self, data: bytes, flow_controlled: int) -> None:
        self._chunks.append((data, flow_controlled))
        self._wake.unpark_all()

    def on_end(self) -> None:
        self.ended = True
        self._wake.unpark_all()

    def on_error(self, error: HTTP2Error) -> None:
        if self.error is None:
            self.error = error
        self._wake.unpark_all()

    # -- the handshake

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        """The ``:status`` and regular headers of the server's answer.

        Raises:
            InvalidHandshake: the stream was reset, ended, or the connection ended first.
        """
        while self._response is None:
            if self.error is not None:
                raise InvalidHandshake(
                    f"no answer to the extended CONNECT: {self.error}"
                ) from self.error
            if self.ended:
                raise InvalidHandshake("the server ended the stream without an answer")
            await self._wake.park()
        return self._response

    def release(self) -> None:
        """Give the stream back to the connection (END_STREAM or RST_STREAM)."""
        if not self._released:
            self._released = True
            self._wake.unpark_all()
            graceful = (self.ended or self._finished()) and self.error is None
            self.connection.release(self, graceful=graceful)

    @property
    def released(self) -> bool:
        """Whether the stream was given back (:meth:`release`, ``aclose``)."""
        return self._released

    def sends_last(self) -> bool:
        """Whether the bytes being sent are the WebSocket's last: its Close was queued and
        the writer took everything the core queued (nothing may follow a Close)."""
        proto = self._proto
        return proto is not None and proto.close_sent is not None and proto.bytes_to_send == 0

    def _finished(self) -> bool:
        proto = self._proto
        return (
            proto is not None and proto.close_received is not None and proto.close_sent is not None
        )

    # -- trio.abc.Stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._chunks:
            if self.error is not None:
                raise self.error
            if self.ended or self._released or self._finished():
                return b""
            await self._wake.park()
        data, flow_controlled = self._chunks.popleft()
        if max_bytes is not None and len(data) > max_bytes:
            # The rest stays first in line; its share of the window is acknowledged with it.
            self._chunks.appendleft((data[max_bytes:], flow_controlled))
            return data[:max_bytes]
        self.connection.acknowledge(flow_controlled, self.stream_id)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._released:
            raise trio.ClosedResourceError("the HTTP/2 stream was closed")
        if self.local_ended:
            raise trio.ClosedResourceError("the HTTP/2 stream was ended by its Close")
        await self.connection.send(self, data)

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.release()
        await trio.lowlevel.checkpoint()
