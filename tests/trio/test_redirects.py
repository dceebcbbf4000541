"""Redirects of the opening handshake: the pure rule (follow_redirect) and the real thing.

The first half tables :func:`statews.redirects.follow_redirect`; the second runs
``connect()`` against scripted raw servers answering 301/302/303/307/308 and a real
`websockets` server at the end of the chain (these need the ``_upgrade`` redirect loop
in :mod:`statews.connection`).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trustme
from hypothesis import given
from hypothesis import strategies as st
from peers import FrameReader, WsServer, read_request, serve_raw
from wire import accept_for, close_frame, server_frame, upgrade_response

import statews
from statews import Text
from statews.core.errors import HandshakeError, HandshakeRejected, OptionsError, RedirectError
from statews.options.model import Options, resolve_options
from statews.trio.redirects import REDIRECT_STATUSES, follow_redirect

# ------------------------------------------------------------------ the pure rule


def redirect(location: str | None, status: int = 302) -> HandshakeRejected:
    headers = [] if location is None else [("Location", location)]
    return HandshakeRejected(status, "Moved", headers, b"")


def follow(base: Options | str, location: str | None, status: int = 302) -> Options:
    options = resolve_options(base)
    return follow_redirect(options, redirect(location, status), [options.url])


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        # relative references (RFC 3986 5.2) keep the request's scheme
        ("ws://a.test/x/y?q=1", "/z", "ws://a.test/z"),
        ("ws://a.test/x/y?q=1", "z", "ws://a.test/x/z"),
        ("ws://a.test/x/y?q=1", "../z?k", "ws://a.test/z?k"),
        ("ws://a.test/x/y?q=1", "?k=2", "ws://a.test/x/y?k=2"),
        ("wss://a.test:8443/x", "/z", "wss://a.test:8443/z"),
        ("ws://a.test/x", "//b.test:9000/p", "ws://b.test:9000/p"),
        ("wss://a.test/x", "//b.test/p", "wss://b.test/p"),
        # absolute URLs: http maps to ws, https to wss
        ("ws://a.test/", "ws://b.test/p", "ws://b.test/p"),
        ("ws://a.test/", "http://b.test:81/p", "ws://b.test:81/p"),
        ("ws://a.test/", "https://b.test/p", "wss://b.test/p"),
        ("ws://a.test/", "wss://b.test/p", "wss://b.test/p"),
        ("wss://a.test/", "https://b.test/p", "wss://b.test/p"),
        ("wss://a.test/", "WSS://B.test/p", "wss://B.test/p"),
        # fragments are dropped (RFC 6455 3), IPv6 and default ports survive
        ("ws://a.test/", "/p#frag", "ws://a.test/p"),
        ("ws://a.test/", "ws://[::1]:9000/v6", "ws://[::1]:9000/v6"),
        ("ws://a.test/", "ws://b.test:80/p", "ws://b.test/p"),
        # a UTF-8 Location (received as ISO-8859-1) is percent-encoded as UTF-8
        ("ws://a.test/", "/caf\u00c3\u00a9", "ws://a.test/caf%C3%A9"),
    ],
)
def test_location_resolution(base: str, location: str, expected: str) -> None:
    assert follow(base, location).url == expected


@pytest.mark.parametrize("status", sorted(REDIRECT_STATUSES))
def test_every_redirect_status_is_followed(status: int) -> None:
    assert follow("ws://a.test/", "/b", status).path == "/b"


@pytest.mark.parametrize("status", [200, 300, 304, 305, 400, 401, 403, 404, 429, 500, 503])
def test_other_statuses_are_raised_as_they_are(status: int) -> None:
    rejected = redirect("/b", status)
    options = resolve_options("ws://a.test/")
    with pytest.raises(HandshakeRejected) as info:
        follow_redirect(options, rejected, [options.url])
    assert info.value is rejected


def test_max_redirects_zero_raises_the_redirect_itself() -> None:
    rejected = redirect("/b", 301)
    options = resolve_options("ws://a.test/", max_redirects=0)
    with pytest.raises(HandshakeRejected) as info:
        follow_redirect(options, rejected, [options.url])
    assert info.value is rejected
    assert not isinstance(info.value, RedirectError)


@pytest.mark.parametrize(
    ("base", "location", "match"),
    [
        ("wss://a.test/", "ws://a.test/", "downgrade wss to ws"),
        ("wss://a.test/", "http://a.test/", "downgrade wss to ws"),
        ("wss://a.test/", "ws://b.test:443/", "downgrade wss to ws"),
        ("ws://a.test/", "ftp://a.test/f", "non-WebSocket URL 'ftp://a.test/f'"),
        ("ws://a.test/", "mailto:x@a.test", "non-WebSocket URL"),
        ("ws://a.test/", None, "without a Location"),
        ("ws://a.test/", "", "invalid Location"),
        ("ws://a.test/", "/a b", "invalid Location"),
        ("ws://a.test/", "/a\x00b", "invalid Location"),
        ("ws://a.test/", "ws://[::1/", "invalid Location"),
        ("ws://a.test/", "ws://a.test:99999/", "port from 1 to 65535"),
        ("ws://a.test/", "ws://:80/", "invalid URL: url: Input should have a host"),
        ("ws://a.test/", "ws:no-slashes", "invalid URL"),
        ("ws://a.test/", "ws://user:secret@b.test/", "user:password@"),
    ],
)
def test_refused_redirects(base: str, location: str | None, match: str) -> None:
    with pytest.raises(RedirectError, match=match) as info:
        follow(base, location, 307)
    error = info.value
    assert isinstance(error, HandshakeError)
    assert isinstance(error.__cause__, HandshakeRejected)
    assert error.status == 307
    assert error.chain[0] == resolve_options(base).url
    assert "secret" not in str(error)
    assert not any("secret" in url for url in error.chain)


def test_limit_counts_hops_and_reports_the_chain() -> None:
    options = resolve_options("ws://a.test/0", max_redirects=2)
    chain = [options.url]
    for hop in (1, 2):
        options = follow_redirect(options, redirect(f"/{hop}"), chain)
        chain.append(options.url)
    with pytest.raises(RedirectError, match=r"more than max_redirects=2") as info:
        follow_redirect(options, redirect("/3"), chain)
    assert info.value.chain == tuple(f"ws://a.test/{i}" for i in range(4))
    assert "ws://a.test/0 -> ws://a.test/1 -> ws://a.test/2 -> ws://a.test/3" in str(info.value)


CREDENTIALS = {
    "Authorization": "Bearer t",
    "cookie": "s=1",
    "PROXY-AUTHORIZATION": "Basic p",
    "X-Trace": "keep",
}


@pytest.mark.parametrize(
    ("base", "location", "same_origin"),
    [
        ("ws://a.test/x", "/y", True),
        ("ws://a.test/x", "ws://A.TEST/y", True),
        ("ws://a.test/x", "ws://a.test:80/y", True),
        ("ws://a.test:8000/x", "http://a.test:8000/y", True),
        ("wss://a.test/x", "https://a.test:443/y", True),
        ("ws://a.test/x", "ws://a.test:81/y", False),
        ("ws://a.test/x", "ws://b.test/y", False),
        ("ws://a.test/x", "wss://a.test/y", False),
        ("ws://a.test/x", "ws://127.0.0.1/y", False),
    ],
)
def test_credentials_do_not_cross_origins(base: str, location: str, same_origin: bool) -> None:
    options = resolve_options(base, headers=CREDENTIALS)
    moved = follow_redirect(options, redirect(location), [options.url])
    if same_origin:
        assert moved.headers == options.headers
    else:
        assert moved.headers == (("X-Trace", "keep"),)


def test_url_credentials_are_dropped_on_another_origin() -> None:
    options = resolve_options("ws://user:pw@a.test/")
    assert options.headers[0][0] == "Authorization"
    assert follow(options, "/b").headers == options.headers
    assert follow(options, "ws://b.test/").headers == ()


def test_host_header_and_server_hostname_follow_the_host() -> None:
    options = resolve_options(
        "wss://a.test/",
        headers={"Host": "front.test"},
        ssl_options={"server_hostname": "sni.test"},
    )
    same = follow(options, "/b")
    assert same.headers == (("Host", "front.test"),)
    assert same.ssl_options.server_hostname == "sni.test"
    other_port = follow(options, "wss://a.test:8443/")
    assert other_port.headers == ()
    assert other_port.ssl_options.server_hostname == "sni.test"  # same host: same name
    other_host = follow(options, "wss://b.test/")
    assert other_host.headers == ()
    assert other_host.ssl_options.server_hostname is None


def test_other_options_are_kept() -> None:
    options = resolve_options(
        "ws://a.test/x",
        headers={"Authorization": "x", "X-A": "1"},
        protocols=["chat"],
        max_queue=3,
        ping_interval=None,
        connect_timeout=1.5,
        compression=None,
        deflate={"client_max_window_bits": 10},
        max_redirects=4,
        proxy="http://user:pw@proxy.test:3128",
        connect_options={"nodelay": False},
    )
    moved = follow(options, "wss://b.test:444/y?z")
    before = options.model_dump()
    after = moved.model_dump()
    for name in ("host", "port", "transport", "path", "headers"):
        del before[name], after[name]
    assert after == before
    assert (moved.host, moved.port, moved.transport, moved.path) == ("b.test", 444, "ssl", "/y?z")


def test_unix_path_keeps_its_origin() -> None:
    options = resolve_options("ws://a.test/x", unix_path="/tmp/statews-test.sock")
    assert follow(options, "/y").unix_path == "/tmp/statews-test.sock"
    with pytest.raises(RedirectError, match="unix_path"):
        follow(options, "ws://b.test/y")


@pytest.mark.parametrize(
    ("value", "ok"), [(0, True), (10, True), (-1, False), (True, None), (1.5, False)]
)
def test_max_redirects_option(value: Any, ok: bool | None) -> None:
    assert Options(host="a.test").max_redirects == 10
    if ok:
        assert Options(host="a.test", max_redirects=value).max_redirects == value
    elif ok is False:
        with pytest.raises(OptionsError) as info:
            Options(host="a.test", max_redirects=value)
        assert info.value.option == "max_redirects"


_hosts = st.sampled_from(["a.test", "b.test", "127.0.0.1", "[::1]"])
_schemes = st.sampled_from(["ws", "wss", "http", "https", "WS", "HTTPS", "ftp", ""])
_paths = st.text(alphabet="abc/?.=%-_~", max_size=12)


@given(
    scheme=_schemes, host=_hosts, port=st.sampled_from(["", ":80", ":443", ":8443"]), path=_paths
)
def test_never_a_downgrade_never_credentials_elsewhere(
    scheme: str, host: str, port: str, path: str
) -> None:
    location = f"{scheme}://{host}{port}/{path}" if scheme else f"/{path}"
    options = resolve_options("wss://a.test/start", headers={"Cookie": "c"})
    try:
        moved = follow_redirect(options, redirect(location), [options.url])
    except RedirectError:
        return
    assert moved.secure
    same = (moved.host, moved.effective_port) == ("a.test", 443)
    assert (("Cookie", "c") in moved.headers) == same


# ------------------------------------------------------------------ end to end


@dataclass
class Router:
    """A raw server answering each request by its path: bytes to send, or None to
    accept the upgrade and send the request headers as one JSON text message."""

    routes: dict[str, bytes | None]
    scheme: str
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    closed_by_client: int = 0

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"


def moved(status: int, location: str) -> bytes:
    return f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()


async def start_router(
    nursery: trio.Nursery,
    routes: dict[str, bytes | None],
    *,
    tls: ssl.SSLContext | None = None,
    delay: float = 0.0,
) -> Router:
    router = Router(routes, "wss" if tls is not None else "ws")

    async def script(raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        if tls is not None:
            stream = trio.SSLStream(raw, tls, server_side=True)
        head, headers = await read_request(stream)
        path = head.split(b" ")[1].decode()
        router.requests.append((path, headers))
        await trio.sleep(delay)
        answer = router.routes[path]
        if answer is not None:
            await stream.send_all(answer)
            # The client must close the redirected connection itself (keep-alive here).
            if await stream.receive_some(1) == b"":
                router.closed_by_client += 1
            return
        key = headers["sec-websocket-key"]
        await stream.send_all(
            upgrade_response(accept_for(key)) + server_frame(0x1, json.dumps(headers).encode())
        )
        code = await FrameReader(stream).close_code()
        await stream.send_all(close_frame(code or 1000))

    router.port = (await serve_raw(nursery, script)).port
    return router


@pytest.mark.parametrize("status", sorted(REDIRECT_STATUSES))
async def test_redirect_to_a_real_server_drops_credentials(
    nursery: trio.Nursery, ws_server: WsServer, status: int
) -> None:
    target = ws_server.url("/headers")
    first = await start_router(nursery, {"/start": moved(status, target)})
    with trio.fail_after(5):
        async with statews.open_websocket(first.url("/start"), headers=CREDENTIALS) as ws:
            message = await ws.recv()
            assert isinstance(message, Text)
            seen = {name.lower(): value for name, value in json.loads(message.data)}
            assert seen["x-trace"] == "keep"
            for name in ("authorization", "cookie", "proxy-authorization"):
                assert name not in seen
            assert ws.options.url == target
            assert ws.peername() == ("127.0.0.1", ws_server.port)
            await ws.send(Text("after the redirect"))
            assert await ws.recv() == Text("after the redirect")
    assert first.requests[0][1]["authorization"] == "Bearer t"
    assert first.closed_by_client == 1


async def test_same_origin_redirect_keeps_credentials(nursery: trio.Nursery) -> None:
    router = await start_router(nursery, {"/old": moved(308, "new?v=2"), "/new?v=2": None})
    with trio.fail_after(5):
        async with statews.open_websocket(router.url("/old"), headers=CREDENTIALS) as ws:
            message = await ws.recv()
            assert isinstance(message, Text)
            assert json.loads(message.data)["authorization"] == "Bearer t"
            assert ws.options.path == "/new?v=2"
    assert [path for path, _ in router.requests] == ["/old", "/new?v=2"]


async def test_a_chain_of_redirects(nursery: trio.Nursery) -> None:
    routes: dict[str, bytes | None] = {f"/{i}": moved(302, f"/{i + 1}") for i in range(5)}
    routes["/5"] = None
    router = await start_router(nursery, routes)
    with trio.fail_after(5):
        async with statews.open_websocket(router.url("/0"), max_redirects=5) as ws:
            assert ws.options.path == "/5"
    assert len(router.requests) == 6
    assert router.closed_by_client == 5


async def test_redirect_loop_stops_at_max_redirects(nursery: trio.Nursery) -> None:
    router = await start_router(nursery, {"/a": moved(302, "/b"), "/b": moved(307, "/a")})
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, router.url("/a"), max_redirects=3)
            with pytest.raises(RedirectError, match="more than max_redirects=3") as info:
                await ws.connect()
            assert ws.state == "closed"
    a, b = router.url("/a"), router.url("/b")
    assert info.value.chain == (a, b, a, b, a)
    assert isinstance(info.value.__cause__, HandshakeRejected)
    assert len(router.requests) == 4


async def test_redirects_off(nursery: trio.Nursery) -> None:
    router = await start_router(nursery, {"/a": moved(301, "/b"), "/b": None})
    with trio.fail_after(5), pytest.raises(HandshakeRejected) as info:
        async with statews.open_websocket(router.url("/a"), max_redirects=0):
            pass
    assert info.value.status == 301
    assert not isinstance(info.value, RedirectError)
    assert len(router.requests) == 1


async def test_all_hops_share_connect_timeout(nursery: trio.Nursery) -> None:
    # Each hop takes 0.3 s, well within 0.5 s alone; the chain does not.
    router = await start_router(
        nursery, {"/a": moved(302, "/b"), "/b": moved(302, "/c"), "/c": None}, delay=0.3
    )
    with trio.fail_after(5):
        start = trio.current_time()
        with pytest.raises(statews.ConnectTimeout):
            async with statews.open_websocket(router.url("/a"), connect_timeout=0.5):
                pass
        assert trio.current_time() - start < 1.0
    assert [path for path, _ in router.requests] == ["/a", "/b"]


@pytest.fixture
def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_wss_to_ws_is_refused(
    nursery: trio.Nursery, ca: trustme.CA, tls_server: ssl.SSLContext
) -> None:
    plain = await start_router(nursery, {"/": None})
    secure = await start_router(nursery, {"/s": moved(302, plain.url("/"))}, tls=tls_server)
    cadata = ca.cert_pem.bytes().decode()
    with trio.fail_after(5), pytest.raises(RedirectError, match="downgrade") as info:
        async with statews.open_websocket(secure.url("/s"), ssl_options={"cadata": cadata}):
            pass
    assert info.value.chain == (secure.url("/s"), plain.url("/"))
    assert plain.requests == []


async def test_ws_to_wss_is_followed(
    nursery: trio.Nursery, ca: trustme.CA, tls_server: ssl.SSLContext
) -> None:
    secure = await start_router(nursery, {"/s": None}, tls=tls_server)
    plain = await start_router(nursery, {"/": moved(301, f"https://127.0.0.1:{secure.port}/s")})
    cadata = ca.cert_pem.bytes().decode()
    with trio.fail_after(5):
        async with statews.open_websocket(
            plain.url("/"), ssl_options={"cadata": cadata}, headers={"Cookie": "c=1"}
        ) as ws:
            assert ws.options.url == secure.url("/s")
            message = await ws.recv()
            assert isinstance(message, Text)
            assert "cookie" not in json.loads(message.data)  # another origin (scheme, port)
    assert plain.requests[0][1]["cookie"] == "c=1"


async def test_missing_location_is_a_redirect_error(nursery: trio.Nursery) -> None:
    router = await start_router(nursery, {"/": b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"})
    with trio.fail_after(5), pytest.raises(RedirectError, match="without a Location"):
        async with statews.open_websocket(router.url("/")):
            pass


async def test_a_given_stream_is_not_redirected(nursery: trio.Nursery) -> None:
    router = await start_router(nursery, {"/a": moved(302, "/b"), "/b": None})
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", router.port)
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, router.url("/a"), stream=stream)
            with pytest.raises(HandshakeRejected) as info:
                await ws.connect()
    assert info.value.status == 302
    assert len(router.requests) == 1
