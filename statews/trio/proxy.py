"""Tunnels through a proxy over trio: the driver of :mod:`statews.core.proxycodec`.

:func:`open_tunnel` runs an HTTP CONNECT or SOCKS5 handshake over an open stream and
returns the tunnel; which proxy to use is :mod:`statews.core.proxyconf`'s business, TLS
(to an ``https://`` proxy, to the server) :mod:`statews.trio.transport`'s.

Invariants:

* The bytes a proxy sent after its answer belong to the tunnel: the stream
  :func:`open_tunnel` returns gives them back first (:class:`PrefixedStream`).
* A proxy that answers but does not open the tunnel raises :class:`ProxyError`, also
  when it closes or resets; errors name the proxy without its password. Nothing here
  is bounded in time: the caller's ``connect_timeout`` covers the connect.
"""

from __future__ import annotations

import socket

import trio

from ..core.errors import ConnectError, ProxyError
from ..core.proxycodec import (
    READ_SIZE,
    ConnectResponseReader,
    Socks5Handshake,
    check_connect_response,
    connect_request,
)
from ..core.proxyconf import ProxyURL, ip_literal

__all__ = ["PrefixedStream", "open_tunnel"]


class PrefixedStream(trio.abc.Stream):
    """``transport_stream`` with ``prefix`` (bytes already read from it) read first."""

    def __init__(self, transport_stream: trio.abc.Stream, prefix: bytes) -> None:
        self.transport_stream = transport_stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """The prefix first (at most ``max_bytes`` of it at a time), then the stream's.

        Raises: as the transport stream's ``receive_some``; ValueError if ``max_bytes < 1``.
        """
        if not self._prefix:
            return await self.transport_stream.receive_some(max_bytes)
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        await trio.lowlevel.checkpoint()
        count = len(self._prefix) if max_bytes is None else max_bytes
        chunk, self._prefix = self._prefix[:count], self._prefix[count:]
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send on the transport stream."""
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """As the transport stream's."""
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Drop the prefix and close the transport stream."""
        self._prefix = b""
        await self.transport_stream.aclose()


async def open_tunnel(
    stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int
) -> trio.abc.Stream:
    """Ask the proxy at the other end of ``stream`` for a tunnel to ``host``:``port``.

    Returns the tunnel: ``stream`` itself, or a :class:`PrefixedStream` over it when the
    proxy sent bytes after its answer. ``https`` proxies speak HTTP CONNECT too: TLS to
    the proxy is the caller's (``stream`` is then that TLS stream). ``socks5`` resolves
    ``host`` here and sends the address; ``socks5h`` sends the name.

    Raises:
        ProxyError: the proxy refused, failed or broke the handshake.
        ConnectError: ``host`` could not be resolved (``socks5`` only).
        OptionsError: ``host`` cannot be sent (a bad IDNA name, or over 255 bytes).
    """
    try:
        if proxy.scheme in ("http", "https"):
            trailing = await _http_connect(stream, proxy, host, port)
        else:
            if proxy.scheme == "socks5":
                host = await _resolve(host, port)
            trailing = await _socks5_connect(stream, proxy, host, port)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise ProxyError(f"the connection to proxy {proxy.redacted} broke: {exc}") from exc
    return PrefixedStream(stream, trailing) if trailing else stream


async def _http_connect(stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int) -> bytes:
    await stream.send_all(connect_request(host, port, proxy))
    reader = ConnectResponseReader()
    response = None
    while response is None:
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise reader.feed_eof()
        response = reader.feed(data)
    check_connect_response(response, proxy)
    return reader.trailing


async def _socks5_connect(stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int) -> bytes:
    handshake = Socks5Handshake(host, port, username=proxy.username, password=proxy.password)
    while True:
        outgoing = handshake.data_to_send()
        if outgoing:
            await stream.send_all(outgoing)
        if handshake.done:
            return handshake.trailing
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise handshake.receive_eof()
        handshake.receive_data(data)


async def _resolve(host: str, port: int) -> str:
    """The first address ``host`` resolves to (an IP literal is returned as is).

    Raises:
        ConnectError: the name does not resolve.
    """
    if ip_literal(host) is not None:
        return host
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(
            f"cannot resolve {host!r} for the SOCKS5 proxy (socks5h:// lets the proxy "
            f"resolve it): {exc}"
        ) from exc
    if not infos:
        raise ConnectError(f"cannot resolve {host!r} for the SOCKS5 proxy: no address")
    return str(infos[0][4][0])
