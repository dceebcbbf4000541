"""The hostile peer: a scripted raw-TCP (or TLS) server whose behaviour is a list of steps.

A script is a tuple of :class:`Step` objects run in order on each accepted connection
(:func:`serve_steps`); the server records in :class:`Seen` what it observed of the client:
the request headers, every client frame, the client's Close code and how TCP ended.

Invariants:

* Every step is bounded by the client's behaviour or by its own timeout: a step that
  waits for the client (:class:`Watch`, :class:`Flood`) ends when the client sends its
  Close or ends TCP, so a client that hangs makes the test's ``fail_after`` fire instead
  of the server waiting forever.
* A step that finds the client gone (broken pipe, reset) records it and ends the script:
  the client closing while the server still talks is a legitimate outcome, not an error.
* Anything else the server sees (an unmasked client frame, a malformed one) raises in
  the server and fails the test.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

import trio
from peers import FrameReader, RawServer, read_request, serve_raw
from wire import PONG, accept_for, close_code, server_frame, upgrade_response

#: What steps see when the client is gone.
GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass
class Seen:
    """What the server observed of the client, over all connections."""

    connections: int = 0
    #: The headers of the last request read, and of every request, in order.
    headers: dict[str, str] | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    #: Every client frame, as (opcode, fin, unmasked payload).
    frames: list[tuple[int, bool, bytes]] = field(default_factory=list)
    #: The code of the client's Close (1005 for an empty body), or None if none came.
    close_code: int | None = None
    #: How TCP ended as the server saw it: "eof", "reset", "we-reset", "we-closed".
    ended: str | None = None
    #: The server-side TLS handshake error, when the client refused the handshake.
    tls_error: BaseException | None = None
    #: Bytes read by :class:`Drain` (raw, not parsed as frames).
    raw_bytes: int = 0


class Peer:
    """The server side of one connection, as steps see it."""

    def __init__(self, stream: trio.abc.Stream, tcp: trio.SocketStream, seen: Seen) -> None:
        self.stream = stream
        self.tcp = tcp
        self.seen = seen
        self.reader = FrameReader(stream)

    def fill(self, data: bytes) -> bytes:
        """``data`` with ``{accept}`` replaced by the right Sec-WebSocket-Accept and
        ``{port}`` by the server's port."""
        if b"{port}" in data:
            port = self.tcp.socket.getsockname()[1]
            data = data.replace(b"{port}", str(port).encode())
        if b"{accept}" not in data:
            return data
        assert self.seen.headers is not None, "{accept} needs ReadRequest first"
        accept = accept_for(self.seen.headers["sec-websocket-key"]).encode()
        return data.replace(b"{accept}", accept)

    async def send(self, data: bytes) -> bool:
        """Send ``data``; False (and recorded) if the client is gone."""
        try:
            await self.stream.send_all(data)
        except GONE:
            self.seen.ended = self.seen.ended or "reset"
            return False
        return True

    async def watch(self) -> bool:
        """Read client frames until its Close (True) or the end of TCP (False)."""
        while True:
            count = len(self.seen.frames)
            if await self.watch_one():
                return True
            if len(self.seen.frames) == count:
                return False

    async def watch_one(self) -> bool:
        """Read one client frame into ``seen.frames``; True if it was the Close.

        At the end of TCP nothing is added and ``seen.ended`` is set.
        """
        try:
            got = await self.reader.frame()
        except GONE:
            self.seen.ended = self.seen.ended or "reset"
            return False
        if got is None:
            self.seen.ended = self.seen.ended or "eof"
            return False
        self.seen.frames.append(got)
        opcode, _, payload = got
        if opcode == 0x8:
            self.seen.close_code = close_code(payload)
            return True
        return False


class Step:
    """One thing the server does. ``run`` returns False to end the script."""

    async def run(self, peer: Peer) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class ReadRequest(Step):
    """Read the upgrade request and record its headers."""

    async def run(self, peer: Peer) -> bool:
        try:
            _, peer.seen.headers = await read_request(peer.stream)
        except (EOFError, *GONE):
            peer.seen.ended = "eof"
            return False
        peer.seen.requests.append(peer.seen.headers)
        return True


@dataclass(frozen=True)
class Respond(Step):
    """Send raw bytes; ``{accept}`` in them is replaced by the right Sec-WebSocket-Accept."""

    data: bytes

    async def run(self, peer: Peer) -> bool:
        return await peer.send(peer.fill(self.data))


def Upgrade(extra: bytes = b"") -> tuple[Step, ...]:
    """Read the request and answer a valid 101; ``extra`` follows in the same write."""
    return (ReadRequest(), Respond(upgrade_response() + extra))


@dataclass(frozen=True)
class Send(Step):
    """Send bytes (the client may be gone: that ends the script quietly)."""

    data: bytes

    async def run(self, peer: Peer) -> bool:
        return await peer.send(self.data)


@dataclass(frozen=True)
class Sleep(Step):
    seconds: float

    async def run(self, peer: Peer) -> bool:
        await trio.sleep(self.seconds)
        return True


@dataclass(frozen=True)
class Watch(Step):
    """Read client frames until its Close (then go on) or the end of TCP (then stop)."""

    async def run(self, peer: Peer) -> bool:
        return await peer.watch()


@dataclass(frozen=True)
class AnswerPings(Step):
    """Read client frames until its Close, answering each Ping with ``pong(payload)``."""

    pong: Callable[[bytes], bytes]

    async def run(self, peer: Peer) -> bool:
        seen = peer.seen
        while True:
            count = len(seen.frames)
            if await peer.watch_one():
                return True
            if len(seen.frames) == count:  # TCP ended
                return False
            opcode, _, payload = seen.frames[-1]
            if opcode == 0x9 and not await peer.send(server_frame(PONG, self.pong(payload))):
                return False


@dataclass(frozen=True)
class Flood(Step):
    """Send ``chunks()`` (sleeping ``every`` between them) while watching the client.

    Ends when the client's Close or TCP end is seen (the sending is cancelled), or when
    the chunks run out and then the client closes.
    """

    chunks: Callable[[Peer], Iterable[bytes]]
    every: float = 0.0

    async def run(self, peer: Peer) -> bool:
        async def sender() -> None:
            for chunk in self.chunks(peer):
                if not await peer.send(chunk):
                    return
                if self.every:
                    await trio.sleep(self.every)
                else:
                    await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            result = await peer.watch()
            nursery.cancel_scope.cancel()
        return result


@dataclass(frozen=True)
class Drain(Step):
    """Read raw bytes (not frames) until the client ends TCP; record the count."""

    async def run(self, peer: Peer) -> bool:
        try:
            while chunk := await peer.stream.receive_some(65536):
                peer.seen.raw_bytes += len(chunk)
        except GONE:
            peer.seen.ended = peer.seen.ended or "reset"
            return False
        peer.seen.ended = peer.seen.ended or "eof"
        return False


@dataclass(frozen=True)
class Reset(Step):
    """Abort TCP with a reset (SO_LINGER 0, then close)."""

    async def run(self, peer: Peer) -> bool:
        reset(peer.tcp)
        peer.seen.ended = peer.seen.ended or "we-reset"
        return False


@dataclass(frozen=True)
class HalfClose(Step):
    """Shut down our write side (FIN) and keep the read side open."""

    async def run(self, peer: Peer) -> bool:
        await peer.tcp.send_eof()
        return True


@dataclass(frozen=True)
class CloseTCP(Step):
    """Close TCP at once (FIN), without a Close frame."""

    async def run(self, peer: Peer) -> bool:
        await trio.aclose_forcefully(peer.stream)
        peer.seen.ended = peer.seen.ended or "we-closed"
        return False


def reset(tcp: trio.SocketStream) -> None:
    """Abort ``tcp`` with an RST instead of a FIN."""
    tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tcp.socket.close()


Script = tuple[Step, ...]


async def run_steps(
    steps: Script, seen: Seen, tls: ssl.SSLContext | None, tcp: trio.SocketStream
) -> None:
    seen.connections += 1
    stream: trio.abc.Stream = tcp
    if tls is not None:
        tls_stream = trio.SSLStream(tcp, tls, server_side=True)
        try:
            await tls_stream.do_handshake()
        except GONE as exc:
            seen.tls_error = exc
            seen.ended = "reset"
            return
        stream = tls_stream
    peer = Peer(stream, tcp, seen)
    for step in steps:
        if not await step.run(peer):
            return


async def serve_steps(
    nursery: trio.Nursery, steps: Script, tls: ssl.SSLContext | None = None
) -> tuple[RawServer, Seen]:
    """Serve ``steps`` on 127.0.0.1 (over TLS with ``tls``); return the server and its record."""
    seen = Seen()
    server = await serve_raw(nursery, partial(run_steps, steps, seen, tls))
    return server, seen


Chunks = Callable[[Peer], Iterator[bytes]]


def endless(chunk: bytes) -> Chunks:
    """``chunk`` forever (for :class:`Flood`)."""

    def chunks(peer: Peer) -> Iterator[bytes]:
        while True:
            yield chunk

    return chunks


def once_then(first: bytes, then: bytes) -> Chunks:
    """``first`` once, then ``then`` forever (for :class:`Flood`)."""

    def chunks(peer: Peer) -> Iterator[bytes]:
        yield first
        while True:
            yield then

    return chunks


def bytewise(data: bytes) -> Chunks:
    """``data`` (``{accept}`` filled in) one byte at a time (for :class:`Flood`)."""

    def chunks(peer: Peer) -> Iterator[bytes]:
        filled = peer.fill(data)
        for i in range(len(filled)):
            yield filled[i : i + 1]

    return chunks
