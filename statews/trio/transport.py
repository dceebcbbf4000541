"""Opening the byte stream a WebSocket runs over: TCP or a Unix socket, a proxy tunnel, TLS.

The only module that creates sockets. The route is, in order:

1. the socket: a Unix domain socket when ``unix_path`` is set (no proxy then), else TCP
   to the proxy :func:`~statews.core.proxyconf.select_proxy` chooses, else TCP to the server;
2. through a proxy: TLS to it for ``https://``, then the tunnel
   (:func:`~statews.trio.proxy.open_tunnel`: HTTP CONNECT or SOCKS5);
3. TLS to the server for ``wss://`` (inside the proxy's TLS for an ``https://`` proxy).

It returns a :class:`trio.abc.Stream` plus the :class:`trio.SocketStream` underneath (for
peername/sockname and socket options: the proxy's or the Unix socket's), and turns
transport failures into statews errors: a TLS failure keeps the :mod:`ssl` error as
``__cause__``, never a silent hang; a failure to reach the proxy or the Unix socket is
a :class:`ConnectError` naming it, the OS error as ``__cause__``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import trio

from ..core.errors import ConnectError, OptionsError, TLSError
from ..core.proxyconf import AUTO, ProxyURL, select_proxy
from ..options.model import Options
from .proxy import open_tunnel

__all__ = ["Transport", "address_pair", "open_transport", "socket_stream_of"]


@dataclass(slots=True)
class Transport:
    """An open stream and the socket stream it runs on (the same object for plain TCP)."""

    stream: trio.abc.Stream
    socket_stream: trio.SocketStream


async def open_transport(options: Options, *, offer_h2: bool = False) -> Transport:
    """Open the stream to the server: socket, proxy tunnel and TLS as the options say.

    ``proxy="auto"`` reads the environment (``os.environ``) now. Not bounded in time
    here: the caller bounds connect plus upgrade together, proxy handshake included.
    ``offer_h2`` (for ``wss`` with ``http2`` ``"auto"`` or ``"always"``): ALPN offers
    ``h2`` and ``http/1.1`` (``"auto"``) or ``h2`` alone (``"always"``), unless
    ``ssl_options`` sets ``alpn_protocols`` or gives a ready ``context``, which are used
    as they are; the server's choice is ``stream.selected_alpn_protocol()``.

    Raises:
        OSError: the TCP connection to the server could not be made.
        ConnectError: the proxy or the Unix socket could not be reached, or (``socks5``)
            the server's name could not be resolved.
        ProxyError: the proxy did not open the tunnel.
        TLSError: the TLS handshake with the server or an ``https`` proxy failed.
        OptionsError: a proxy URL together with ``unix_path``, or the environment's
            proxy URL is invalid.
    """
    conn = options.connect_options
    proxy = None
    if options.unix_path is not None:
        if options.proxy not in (None, AUTO):
            raise OptionsError("proxy: cannot be combined with unix_path", option="proxy")
        sock = await _open_unix(options.unix_path)
    else:
        proxy = select_proxy(
            options.proxy,
            options.host,
            options.effective_port,
            secure=options.secure,
            environ=os.environ,
        )
        if proxy is None:
            sock = await _open_tcp(
                options.host,
                options.effective_port,
                happy_eyeballs_delay=conn.happy_eyeballs_delay,
                local_address=conn.local_address,
            )
        else:
            sock = await _open_proxy(proxy, options)
    try:
        configure_socket(sock, nodelay=conn.nodelay, keepalive=conn.keepalive)
        stream: trio.abc.Stream = sock
        if proxy is not None:
            if proxy.scheme == "https":
                context = options.ssl_options.create_context()
                stream = await _start_tls(stream, context, proxy.host, "proxy ")
            stream = await open_tunnel(stream, proxy, options.host, options.effective_port)
        if options.secure:
            ssl_options = options.ssl_options
            server_hostname = ssl_options.server_hostname or options.host
            context = ssl_options.create_context()
            if offer_h2 and ssl_options.context is None and ssl_options.alpn_protocols is None:
                offers = ["h2", "http/1.1"] if options.http2 == "auto" else ["h2"]
                context.set_alpn_protocols(offers)
            stream = await _start_tls(stream, context, server_hostname)
        return Transport(stream, sock)
    except BaseException:
        await trio.aclose_forcefully(sock)
        raise


def configure_socket(stream: trio.SocketStream, *, nodelay: bool, keepalive: bool) -> None:
    """Apply socket-level options (trio enables TCP_NODELAY by default; honour ``False``).

    Both are TCP matters: a Unix socket is left as it is.
    """
    if stream.socket.family not in (socket.AF_INET, socket.AF_INET6):
        return
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
    if keepalive:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)


async def _open_tcp(
    host: str, port: int, *, happy_eyeballs_delay: float | None, local_address: str | None
) -> trio.SocketStream:
    """``trio.open_tcp_stream``, with a shortcut for an IP address (without ``local_address``).

    An address literal resolves to itself: there is one address to try, so no happy
    eyeballs race (whose nursery, task and cancel scopes cost ~130 us per connect), just
    one socket connected. The errors are the OS's, as ``open_tcp_stream`` raises them.
    """
    family = _literal_family(host) if local_address is None else None
    if family is None:
        return await trio.open_tcp_stream(
            host, port, happy_eyeballs_delay=happy_eyeballs_delay, local_address=local_address
        )
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def _literal_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 when ``host`` is an IP address literal, else None."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


async def _open_unix(path: str) -> trio.SocketStream:
    try:
        return await trio.open_unix_socket(path)
    except OSError as exc:
        raise ConnectError(f"cannot connect to Unix socket {path!r}: {exc}") from exc


async def _open_proxy(proxy: ProxyURL, options: Options) -> trio.SocketStream:
    conn = options.connect_options
    try:
        return await trio.open_tcp_stream(
            proxy.host,
            proxy.port,
            happy_eyeballs_delay=conn.happy_eyeballs_delay,
            local_address=conn.local_address,
        )
    except OSError as exc:
        raise ConnectError(f"cannot connect to proxy {proxy.redacted}: {exc}") from exc


async def _start_tls(
    stream: trio.abc.Stream, context: ssl.SSLContext, server_hostname: str, what: str = ""
) -> trio.SSLStream[trio.abc.Stream]:
    """TLS over ``stream``; ``what`` says whom to in errors (``"proxy "`` or nothing)."""
    tls = trio.SSLStream(stream, context, server_hostname=server_hostname)
    try:
        await tls.do_handshake()
    except ssl.SSLError as exc:
        raise TLSError(f"TLS handshake with {what}{server_hostname!r} failed: {exc}") from exc
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError):
            raise TLSError(
                f"TLS handshake with {what}{server_hostname!r} failed: {cause}"
            ) from cause
        raise
    return tls


def socket_stream_of(stream: trio.abc.Stream) -> trio.SocketStream:
    """The :class:`trio.SocketStream` under ``stream`` (through TLS and other wrappers).

    Raises:
        TypeError: there is none.
    """
    inner: Any = stream
    while not isinstance(inner, trio.SocketStream):
        inner = getattr(inner, "transport_stream", None)
        if inner is None:
            raise TypeError("the given stream does not run over a trio.SocketStream")
    return inner


def address_pair(address: Any) -> tuple[str, int]:
    """A socket address as (host, port); a Unix socket path as (path, 0)."""
    if isinstance(address, tuple):
        return str(address[0]), int(address[1])
    return str(address), 0
