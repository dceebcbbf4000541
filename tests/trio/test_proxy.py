"""Tunnels: the CONNECT and SOCKS5 handshakes, and connections through real proxies
(tinyproxy, microsocks) and scripted ones on loopback, the environment's proxy included.

tinyproxy and microsocks are Debian packages (``tinyproxy-bin``, ``microsocks``); the
tests that need them are skipped, with the reason, where they are not installed.
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from peers import FrameReader, RawServer, Script, WsServer, read_request, serve_raw, start_ws_server
from wire import accept_for, close_frame, server_frame, upgrade_response

import statews
import statews.trio.opening
from statews import Options, Text
from statews.core.errors import ConnectError, ConnectTimeout, OptionsError, ProxyError, TLSError
from statews.core.proxycodec import (
    ConnectResponse,
    ConnectResponseReader,
    Socks5Handshake,
    Socks5Reply,
    check_connect_response,
    connect_request,
)
from statews.core.proxyconf import ProxyURL
from statews.trio.proxy import PrefixedStream
from statews.trio.transport import open_transport

#: How a scripted peer sees the client go away.
PEER_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, EOFError, OSError)

PROXY_VARIABLES = [f"{name}_proxy" for name in ("ws", "wss", "http", "https", "all", "no")]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no proxy settings but their own."""
    for name in (*PROXY_VARIABLES, *(v.upper() for v in PROXY_VARIABLES), "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)


# --- HTTP CONNECT, sans I/O ------------------------------------------------------------


def test_connect_request() -> None:
    request = connect_request("example.com", 443, ProxyURL("http", "p", 1), user_agent="ua")
    assert request == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua\r\n\r\n"
    )
    request = connect_request("fe80::1%eth0", 80, ProxyURL("http", "p", 1, "us:er", "pä"))
    assert request.startswith(b"CONNECT [fe80::1]:80 HTTP/1.1\r\nHost: [fe80::1]:80\r\n")
    token = base64.b64encode("us:er:pä".encode()).decode()
    assert f"\r\nProxy-Authorization: Basic {token}\r\n".encode() in request
    request = connect_request("bücher.example", 80, ProxyURL("http", "p", 1))
    assert request.startswith(b"CONNECT xn--bcher-kva.example:80 HTTP/1.1\r\n")


def test_connect_response_reader_keeps_the_tunnel_bytes() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 Connection established\r\nVia: x\r\n\r\n"
    reader = ConnectResponseReader()
    for byte in answer[:-1]:
        assert reader.feed(bytes([byte])) is None
    response = reader.feed(answer[-1:] + b"tunnel bytes")
    assert response == ConnectResponse(200, "Connection established", (("Via", "x"),))
    assert reader.trailing == b"tunnel bytes"


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "did not answer with HTTP"),
        (b"HTTP/2 200\r\n\r\n", "did not answer with HTTP"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 20000, "exceeds 16384 bytes"),
        ((b"HTTP/1.1 100 Continue\r\nX: " + b"a" * 9000 + b"\r\n\r\n") * 2, "exceeds"),
    ],
)
def test_connect_response_reader_rejects(answer: bytes, match: str) -> None:
    reader = ConnectResponseReader()

    def feed_in_chunks() -> None:
        for start in range(0, len(answer), 1000):
            reader.feed(answer[start : start + 1000])

    with pytest.raises(ProxyError, match=match):
        feed_in_chunks()


def test_non_2xx_answers_are_proxy_errors() -> None:
    headers = (("Proxy-Authenticate", 'Basic realm="p"'),)
    with pytest.raises(ProxyError, match="proxy authentication required; no credentials") as info:
        check_connect_response(
            ConnectResponse(407, "Proxy Authentication Required", headers),
            ProxyURL("http", "p", 1),
        )
    assert (info.value.status, info.value.headers) == (407, list(headers))
    with pytest.raises(ProxyError, match="it rejected the credentials") as info:
        check_connect_response(ConnectResponse(407, "", ()), ProxyURL("http", "p", 1, "u", "pw"))
    assert "pw" not in str(info.value)
    with pytest.raises(ProxyError, match="HTTP 403 Forbidden") as info:
        check_connect_response(ConnectResponse(403, "Forbidden", ()), ProxyURL("http", "p", 1))
    assert info.value.reason == "Forbidden"
    check_connect_response(ConnectResponse(204, "", ()), ProxyURL("http", "p", 1))


# --- SOCKS5, sans I/O -------------------------------------------------------------------

SUCCESS_V4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90"


def drive(handshake: Socks5Handshake, answers: list[bytes]) -> list[bytes]:
    """Feed the proxy's ``answers`` one per round; return what the client sent per round."""
    sent = [handshake.data_to_send()]
    for answer in answers:
        handshake.receive_data(answer)
        sent.append(handshake.data_to_send())
    return sent


def test_socks5_domain_without_auth() -> None:
    handshake = Socks5Handshake("example.com", 443)
    sent = drive(handshake, [b"\x05\x00", SUCCESS_V4 + b"early"])
    assert sent == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0bexample.com\x01\xbb", b""]
    assert handshake.done
    assert handshake.trailing == b"early"


def test_socks5_addresses_and_auth() -> None:
    handshake = Socks5Handshake("::1", 80, username="user", password="pw")
    sent = drive(handshake, [b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x03\x04name\x00\x50"])
    assert sent[0] == b"\x05\x02\x00\x02"
    assert sent[1] == b"\x01\x04user\x02pw"
    assert sent[2] == b"\x05\x01\x00\x04" + socket.inet_pton(socket.AF_INET6, "::1") + b"\x00\x50"
    assert handshake.done
    assert handshake.trailing == b""
    handshake = Socks5Handshake("10.1.2.3", 80, username="user", password="pw")
    sent = drive(handshake, [b"\x05\x00"])  # a proxy may skip the offered authentication
    assert sent[1] == b"\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50"


def test_socks5_byte_by_byte() -> None:
    handshake = Socks5Handshake("h", 1, username="u", password="p")
    handshake.data_to_send()
    for answer in (b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x01"):
        for byte in answer:
            assert not handshake.done
            handshake.receive_data(bytes([byte]))
        handshake.data_to_send()
    assert handshake.done
    assert handshake.trailing == b""


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (Socks5Reply.GENERAL_FAILURE, "general SOCKS server failure"),
        (Socks5Reply.NOT_ALLOWED, "not allowed by the proxy's rules"),
        (Socks5Reply.NETWORK_UNREACHABLE, "network unreachable"),
        (Socks5Reply.HOST_UNREACHABLE, "host unreachable"),
        (Socks5Reply.CONNECTION_REFUSED, "connection refused by the target"),
        (Socks5Reply.TTL_EXPIRED, "TTL expired"),
        (Socks5Reply.COMMAND_NOT_SUPPORTED, "command not supported"),
        (Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED, "address type not supported"),
        (0x2A, "unassigned reply code"),
    ],
)
def test_socks5_failure_replies(reply: int, text: str) -> None:
    handshake = Socks5Handshake("h", 1)
    with pytest.raises(ProxyError, match=f"{text} \\(reply {reply}\\)") as info:
        drive(handshake, [b"\x05\x00", bytes([5, reply, 0, 1]) + bytes(6)])
    assert info.value.reply == reply


@pytest.mark.parametrize(
    ("credentials", "answers", "match"),
    [
        (None, [b"\x04\x5a"], "not a SOCKS5 proxy"),
        (None, [b"\x05\xff"], "none of our auth methods \\(it may require a user name"),
        (("u", "p"), [b"\x05\xff"], "none of our auth methods$"),
        (None, [b"\x05\x02"], "chose auth method 2, not offered"),
        (("u", "p"), [b"\x05\x02", b"\x01\x01"], "rejected the user name and password"),
        (None, [b"\x05\x00", b"\x04\x00\x00\x01" + bytes(6)], "malformed SOCKS5 reply: version"),
        (None, [b"\x05\x00", b"\x05\x00\x00\x07" + bytes(6)], "address type 7"),
    ],
)
def test_socks5_protocol_failures(
    credentials: tuple[str, str] | None, answers: list[bytes], match: str
) -> None:
    username, password = credentials or (None, None)
    handshake = Socks5Handshake("h", 1, username=username, password=password)
    with pytest.raises(ProxyError, match=match):
        drive(handshake, answers)


def test_socks5_eof_messages() -> None:
    handshake = Socks5Handshake("h", 1, username="u", password="p")
    assert "before choosing" in str(handshake.receive_eof())
    handshake = Socks5Handshake("h", 1, username="u", password="p")
    drive(handshake, [b"\x05\x02"])
    assert "during authentication" in str(handshake.receive_eof())


# --- the prefixed stream ---------------------------------------------------------------


async def test_prefixed_stream_returns_the_prefix_first() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = PrefixedStream(left, b"abcdef")
    await right.send_all(b"later")
    with trio.fail_after(2):
        assert await stream.receive_some(4) == b"abcd"
        assert await stream.receive_some() == b"ef"
        assert await stream.receive_some() == b"later"
        await stream.send_all(b"out")
        assert await right.receive_some() == b"out"
        with pytest.raises(ValueError, match="max_bytes"):
            await PrefixedStream(left, b"x").receive_some(0)
        await stream.aclose()
        assert await right.receive_some() == b""


# --- real proxies: tinyproxy (HTTP CONNECT) and microsocks (SOCKS5) ---------------------


@dataclass
class ProxyProcess:
    port: int
    log: Path

    def url(self, scheme: str, credentials: str = "") -> str:
        return f"{scheme}://{credentials}127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_proxy(
    binary: str, make_argv: Callable[[int], list[str]], log: Path
) -> Iterator[ProxyProcess]:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian: apt-get install tinyproxy-bin microsocks)")
    port = _free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(make_argv(port), stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 5
        while True:
            assert process.poll() is None, f"{binary} exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{binary} does not listen on {port}"
                time.sleep(0.02)
        yield ProxyProcess(port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tinyproxy(tmp_path: Path, auth: bool) -> Iterator[ProxyProcess]:
    config = tmp_path / "tinyproxy.conf"

    def argv(port: int) -> list[str]:
        lines = [f"Port {port}", "Listen 127.0.0.1", "Allow 127.0.0.1", "LogLevel Info"]
        lines += ["MaxClients 20", "Timeout 10"]  # no ConnectPort line: every port allowed
        if auth:
            lines.append("BasicAuth user s3cret")
        config.write_text("\n".join(lines) + "\n")
        return ["tinyproxy", "-d", "-c", str(config)]

    yield from _run_proxy("tinyproxy", argv, tmp_path / "tinyproxy.log")


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _tinyproxy(tmp_path, auth=False)


@pytest.fixture
def tinyproxy_auth(tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _tinyproxy(tmp_path, auth=True)


def _microsocks(tmp_path: Path, auth: bool) -> Iterator[ProxyProcess]:
    def argv(port: int) -> list[str]:
        extra = ["-u", "user", "-P", "p@ss"] if auth else []
        return ["microsocks", "-i", "127.0.0.1", "-p", str(port), *extra]

    yield from _run_proxy("microsocks", argv, tmp_path / "microsocks.log")


@pytest.fixture
def microsocks(tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _microsocks(tmp_path, auth=False)


@pytest.fixture
def microsocks_auth(tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _microsocks(tmp_path, auth=True)


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


async def _echo(url: str, **options: Any) -> statews.WebSocket:
    with trio.fail_after(5):
        async with statews.open_websocket(url, **options) as ws:
            for text in ("through", "the proxy"):
                await ws.send(Text(text))
                assert await ws.recv() == Text(text)
        return ws


async def test_tinyproxy_ws_and_wss(
    nursery: trio.Nursery, ws_server: WsServer, tinyproxy: ProxyProcess, tls: Tls
) -> None:
    await _echo(ws_server.url(), proxy=tinyproxy.url("http"))
    secure = await start_ws_server(nursery, ssl=tls.server)
    await _echo(
        f"wss://127.0.0.1:{secure.port}/echo",
        proxy=tinyproxy.url("http"),
        ssl_options={"context": tls.client},
    )
    log = tinyproxy.log.read_text()
    assert f"127.0.0.1:{ws_server.port}" in log
    assert f"127.0.0.1:{secure.port}" in log


async def test_tinyproxy_basic_auth(ws_server: WsServer, tinyproxy_auth: ProxyProcess) -> None:
    await _echo(ws_server.url(), proxy=tinyproxy_auth.url("http", "user:s3cret@"))
    for credentials in ("", "user:wrong@"):
        with trio.fail_after(5), pytest.raises(ProxyError) as info:
            await _echo(ws_server.url(), proxy=tinyproxy_auth.url("http", credentials))
        # tinyproxy 1.11 (Debian 12) answers 401 where 407 is meant.
        assert info.value.status in (401, 407)
        assert "proxy authentication required" in str(info.value)
        assert "wrong" not in str(info.value)


async def test_microsocks_ws_and_wss(
    nursery: trio.Nursery, ws_server: WsServer, microsocks: ProxyProcess, tls: Tls
) -> None:
    await _echo(ws_server.url(), proxy=microsocks.url("socks5"))
    secure = await start_ws_server(nursery, ssl=tls.server)
    await _echo(
        f"wss://localhost:{secure.port}/echo",
        proxy=microsocks.url("socks5h"),
        ssl_options={"context": tls.client},
    )


async def test_microsocks_local_and_remote_dns(
    nursery: trio.Nursery, microsocks: ProxyProcess
) -> None:
    first = str(socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0])
    server = await start_ws_server(nursery, host=first)
    url = f"ws://localhost:{server.port}/echo"
    await _echo(url, proxy=microsocks.url("socks5"))  # we resolve: the proxy gets the address
    await _echo(url, proxy=microsocks.url("socks5h"))  # the proxy gets the name
    lines = [line for line in microsocks.log.read_text().splitlines() if "connected to" in line]
    assert len(lines) == 2
    assert lines[0].endswith(f"connected to {first}:{server.port}")
    assert lines[1].endswith(f"connected to localhost:{server.port}")


async def test_microsocks_auth(ws_server: WsServer, microsocks_auth: ProxyProcess) -> None:
    await _echo(ws_server.url(), proxy=microsocks_auth.url("socks5", "user:p%40ss@"))
    with trio.fail_after(5), pytest.raises(ProxyError, match="rejected the user name"):
        await _echo(ws_server.url(), proxy=microsocks_auth.url("socks5", "user:wrong@"))
    with trio.fail_after(5), pytest.raises(ProxyError, match="may require a user name"):
        await _echo(ws_server.url(), proxy=microsocks_auth.url("socks5"))


# --- scripted proxies ------------------------------------------------------------------


async def _relay(one: trio.abc.Stream, other: trio.abc.Stream) -> None:
    async with trio.open_nursery() as nursery:

        async def pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
            try:
                while data := await source.receive_some(65536):
                    await sink.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(pump, one, other)
        nursery.start_soon(pump, other, one)


async def connect_proxy(
    nursery: trio.Nursery, seen: list[bytes], tls: ssl.SSLContext | None = None
) -> RawServer:
    """A working HTTP CONNECT proxy that records the request heads it gets."""

    async def script(raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        if tls is not None:
            stream = trio.SSLStream(raw, tls, server_side=True)
        with suppress(*PEER_GONE):
            head, _ = await read_request(stream)
            seen.append(head)
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            async with await trio.open_tcp_stream(host.strip("[]"), int(port)) as upstream:
                await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await _relay(stream, upstream)

    return await serve_raw(nursery, script)


def answering(*answers: bytes, then_wait: bool = True) -> Script:
    """A script that answers each chunk the client sends with the next answer, then
    waits for the client to close (or closes at once)."""

    async def script(stream: trio.SocketStream) -> None:
        with suppress(*PEER_GONE):
            for answer in answers:
                await stream.receive_some(65536)
                await stream.send_all(answer)
            while then_wait and await stream.receive_some(65536):
                pass

    return script


async def test_https_proxy_tls_inside_tls(
    nursery: trio.Nursery, ws_server: WsServer, tls: Tls
) -> None:
    seen: list[bytes] = []
    proxy = await connect_proxy(nursery, seen, tls=tls.server)
    url = f"https://u:pw@127.0.0.1:{proxy.port}"
    ws = await _echo(ws_server.url(), proxy=url, ssl_options={"context": tls.client})
    secure = await start_ws_server(nursery, ssl=tls.server)
    await _echo(f"wss://localhost:{secure.port}/", proxy=url, ssl_options={"context": tls.client})
    assert seen[0].startswith(f"CONNECT 127.0.0.1:{ws_server.port} HTTP/1.1\r\n".encode())
    assert b"\r\nProxy-Authorization: Basic dTpwdw==" in seen[0]
    assert seen[1].startswith(f"CONNECT localhost:{secure.port} ".encode())
    assert ws.state == "closed"


async def test_https_proxy_with_an_untrusted_certificate(nursery: trio.Nursery, tls: Tls) -> None:
    proxy = await connect_proxy(nursery, [], tls=tls.server)
    with (
        trio.fail_after(5),
        pytest.raises(TLSError, match=r"TLS handshake with proxy '127\.0\.0\.1'"),
    ):
        await _echo("ws://127.0.0.1:9/", proxy=f"https://127.0.0.1:{proxy.port}")


async def test_ipv6_target_is_bracketed(nursery: trio.Nursery) -> None:
    seen: list[bytes] = []
    proxy = await connect_proxy(nursery, seen)
    server = await start_ws_server(nursery, host="::1")
    await _echo(server.url(), proxy=f"http://127.0.0.1:{proxy.port}")
    assert seen[0].startswith(f"CONNECT [::1]:{server.port} HTTP/1.1\r\n".encode())


@pytest.mark.parametrize(
    ("scheme", "answers", "error", "match"),
    [
        (
            "http",
            [b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"],
            ProxyError,
            "407 Proxy Authentication Required \\(proxy authentication required",
        ),
        ("http", [b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"], ProxyError, "403"),
        ("http", [b"HTTP/1.1 200 OK\r\n"], ProxyError, "in the middle of its answer"),
        ("http", [b""], ProxyError, "without answering CONNECT"),
        ("http", [b"\x00\xffgarbage\r\n\r\n"], ProxyError, "did not answer with HTTP"),
        ("socks5", [b"\x05\x00", b""], ProxyError, "closed the connection before replying"),
        ("socks5", [b"\x05\x02", b"\x01\x01"], ProxyError, "rejected the user name"),
        ("socks5", [b"\x05\x00", b"\x05\x01\x00\x01" + bytes(6)], ProxyError, "general SOCKS"),
        ("socks5h", [b"HTTP/1.1 400 Bad Request\r\n\r\n"], ProxyError, "not a SOCKS5 proxy"),
    ],
)
async def test_scripted_proxy_failures(
    nursery: trio.Nursery,
    scheme: str,
    answers: list[bytes],
    error: type[Exception],
    match: str,
) -> None:
    proxy = await serve_raw(nursery, answering(*answers, then_wait=False))
    url = f"{scheme}://user:pw@127.0.0.1:{proxy.port}"
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, "ws://localhost:9/", proxy=url)
            with pytest.raises(error, match=match):
                await ws.connect()
            assert ws.state == "closed"


async def test_proxy_port_closed() -> None:
    port = _free_port()
    with trio.fail_after(5), pytest.raises(ConnectError, match=f"proxy http://127.0.0.1:{port}"):
        await _echo("ws://localhost:9/", proxy=f"http://127.0.0.1:{port}")


async def test_connect_timeout_bounds_the_proxy_handshake(nursery: trio.Nursery) -> None:
    proxy = await serve_raw(nursery, answering())
    with trio.fail_after(5), pytest.raises(ConnectTimeout):
        await _echo(
            "ws://localhost:9/", proxy=f"socks5://127.0.0.1:{proxy.port}", connect_timeout=0.3
        )


async def test_bytes_after_the_proxy_answer_reach_the_tunnel(nursery: trio.Nursery) -> None:
    for scheme, answers in (
        ("http", [b"HTTP/1.1 200 OK\r\n\r\nhello from the server"]),
        ("socks5h", [b"\x05\x00", b"\x05\x00\x00\x03\x01x\x00\x01hello from the server"]),
    ):
        proxy = await serve_raw(nursery, answering(*answers))
        options = Options(host="localhost", port=9, proxy=f"{scheme}://127.0.0.1:{proxy.port}")
        with trio.fail_after(5):
            transport = await open_transport(options)
            data = b""
            while len(data) < 21:
                data += await transport.stream.receive_some(5)
            assert data == b"hello from the server"
            assert transport.socket_stream.socket.getpeername() == ("127.0.0.1", proxy.port)
            await transport.stream.aclose()


async def test_101_and_a_frame_in_the_same_packet_as_the_200(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    # The proxy answers before the upgrade request exists, so it must know the key.
    monkeypatch.setattr(statews.trio.opening, "generate_key", lambda: key)
    codes: list[int | None] = []

    async def script(stream: trio.SocketStream) -> None:
        await read_request(stream)  # CONNECT; answer it, the 101 and a frame at once
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\n\r\n"
            + upgrade_response(accept_for(key))
            + server_frame(0x1, b"early")
        )
        await read_request(stream)  # the upgrade request
        codes.append(await FrameReader(stream).close_code())
        await stream.send_all(close_frame(1000))

    proxy = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(
            "ws://example.invalid/", proxy=f"http://127.0.0.1:{proxy.port}", compression=None
        ) as ws:
            assert await ws.recv() == Text("early")
        await proxy.done.wait()
    assert codes == [1000]


# --- the environment, end to end -------------------------------------------------------


async def test_proxy_from_the_environment(
    nursery: trio.Nursery, ws_server: WsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []
    proxy = await connect_proxy(nursery, seen)
    monkeypatch.setenv("ws_proxy", f"127.0.0.1:{proxy.port}")
    await _echo(ws_server.url())
    assert len(seen) == 1
    await _echo(ws_server.url(), proxy=None)  # None ignores the environment
    monkeypatch.setenv("no_proxy", "localhost, 127.0.0.1")
    await _echo(ws_server.url())
    assert len(seen) == 1
    monkeypatch.setenv("ws_proxy", "ftp://nope")
    with trio.fail_after(5), pytest.raises(OptionsError, match=r"\$ws_proxy"):
        await _echo("ws://elsewhere.invalid/")
