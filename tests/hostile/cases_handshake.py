"""The handshake half of the hostile table, and the request-side injection table.

Rows: non-101 answers, broken 101s, responses that never end or come too slowly,
servers that vanish or reset mid-answer, TLS that must be refused. Each expects the
exception :meth:`~statews.WebSocket.connect` raises, and no WebSocket frame from the
client: a connection that never opened is only closed, never closed *with a Close*.
:data:`INJECTIONS`: options that would inject CR, LF or NUL, refused before any
connection is made.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from wire import close_frame, upgrade_response

import statews

from .harness import (
    CloseTCP,
    Drain,
    Flood,
    HalfClose,
    ReadRequest,
    Reset,
    Respond,
    Send,
    Sleep,
    Upgrade,
    Watch,
    bytewise,
    once_then,
)
from .table import Case, Injection, Seen

__all__ = ["HANDSHAKE", "INJECTIONS", "REDIRECTS", "invalid"]


def _rejected(
    id: str,
    status: int,
    response: bytes,
    check: Callable[[BaseException], None] | None = None,
    **kwargs: Any,
) -> Case:
    return Case(
        id,
        (ReadRequest(), Respond(response), Watch()),
        statews.HandshakeRejected,
        code=status,
        phase="handshake",
        check=check,
        **kwargs,
    )


def invalid(id: str, response: bytes, **kwargs: Any) -> Case:
    return Case(
        id,
        (ReadRequest(), Respond(response), Watch()),
        statews.InvalidHandshake,
        phase="handshake",
        **kwargs,
    )


def _invalid_flood(id: str, first: bytes, then: bytes) -> Case:
    """A response that never ends: the client must stop at its header limit."""
    return Case(
        id,
        (ReadRequest(), Flood(once_then(first, then))),
        statews.InvalidHandshake,
        phase="handshake",
    )


def _has_header(name: str, value: str) -> Callable[[BaseException], None]:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.HandshakeRejected)
        assert (name, value) in exc.headers

    return check


def _body_is(body: bytes) -> Callable[[BaseException], None]:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.HandshakeRejected)
        assert exc.body == body

    return check


def _body_at_most(size: int) -> Callable[[BaseException], None]:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.HandshakeRejected)
        assert 0 < len(exc.body) <= size

    return check


def _retry_after(seconds: float) -> Callable[[BaseException], None]:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.HandshakeRejected)
        assert exc.retry_after == seconds

    return check


HANDSHAKE: list[Case] = [
    _rejected(
        "status-301-not-followed",
        301,
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/elsewhere\r\n"
        b"Content-Length: 0\r\n\r\n",
        _has_header("Location", "ws://127.0.0.1:1/elsewhere"),
        options={"max_redirects": 0},
    ),
    _rejected("status-400", 400, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"),
    _rejected(
        "status-401-with-body",
        401,
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 8\r\n\r\n"
        b"no token",
        _body_is(b"no token"),
    ),
    _rejected("status-403", 403, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
    _rejected(
        "status-404-chunked-body",
        404,
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nnope\r\n1;ext=1\r\n!\r\n0\r\n\r\n",
        _body_is(b"nope!"),
    ),
    Case(
        "status-500-body-until-eof",
        (
            ReadRequest(),
            Respond(b"HTTP/1.1 500 Internal Server Error\r\n\r\noops"),
            HalfClose(),
            Watch(),
        ),
        statews.HandshakeRejected,
        code=500,
        phase="handshake",
        check=_body_is(b"oops"),
    ),
    _rejected(
        "status-503-retry-after",
        503,
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n",
        _retry_after(120.0),
    ),
    Case(
        "status-404-body-stalls",
        (
            ReadRequest(),
            Respond(b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\nshort"),
            Watch(),
        ),
        statews.ConnectTimeout,
        phase="handshake",
        options={"connect_timeout": 0.5},
        at_least=0.45,
        within=1.5,
    ),
    invalid("101-without-upgrade", upgrade_response(upgrade=None)),
    invalid("101-without-connection", upgrade_response(connection=None)),
    invalid("101-upgrade-h2c", upgrade_response(upgrade=b"h2c")),
    invalid("101-wrong-accept", upgrade_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")),
    invalid("101-missing-accept", upgrade_response(None)),
    invalid("101-duplicate-accept", upgrade_response(extra=b"Sec-WebSocket-Accept: {accept}\r\n")),
    invalid(
        "101-subprotocol-not-offered",
        upgrade_response(extra=b"Sec-WebSocket-Protocol: other\r\n"),
        options={"protocols": ["chat"]},
    ),
    invalid(
        "101-two-subprotocols",
        upgrade_response(extra=b"Sec-WebSocket-Protocol: chat, superchat\r\n"),
        options={"protocols": ["chat", "superchat"]},
    ),
    invalid(
        "101-subprotocol-none-offered", upgrade_response(extra=b"Sec-WebSocket-Protocol: chat\r\n")
    ),
    invalid(
        "101-extension-not-offered",
        upgrade_response(extra=b"Sec-WebSocket-Extensions: x-custom\r\n"),
    ),
    invalid(
        "101-deflate-not-offered",
        upgrade_response(extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    ),
    invalid(
        "101-header-block-over-64k",
        upgrade_response(
            extra=b"".join(b"X-Pad-%05d: %s\r\n" % (i, b"a" * 100) for i in range(700))
        ),
    ),
    _invalid_flood(
        "header-line-never-ends", b"HTTP/1.1 101 Switching Protocols\r\nX-Endless: ", b"a" * 4096
    ),
    _invalid_flood("status-line-never-ends", b"HTTP/1.1 101 ", b"b" * 4096),
    _invalid_flood("interim-100-forever", b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 64),
    _invalid_flood(
        "chunk-size-line-never-ends",
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1",
        b"0" * 4096,
    ),
    invalid(
        "chunk-size-overflow",
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10000000000000000\r\nx\r\n0\r\n\r\n",
    ),
    Case(
        "status-404-endless-body",
        (
            ReadRequest(),
            Flood(
                once_then(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 1000000000000\r\n\r\n",
                    b"x" * 8192,
                )
            ),
        ),
        statews.HandshakeRejected,
        code=404,
        phase="handshake",
        check=_body_at_most(2**20),
    ),
    Case(
        "status-404-endless-chunk",
        (
            ReadRequest(),
            Flood(
                once_then(
                    b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"ffffffffffffffff\r\n",
                    b"y" * 8192,
                )
            ),
        ),
        statews.HandshakeRejected,
        code=404,
        phase="handshake",
        check=_body_at_most(2**20),
    ),
    invalid("101-obs-fold", upgrade_response(extra=b"X-Folded: a\r\n  b\r\n")),
    invalid("http-1.0-101", upgrade_response(version=b"HTTP/1.0")),
    invalid("garbage-status-line", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    invalid("binary-junk-response", bytes(range(256)) + b"\r\n\r\n"),
    invalid("lowercase-http-version", b"http/1.1 101 Switching Protocols\r\n\r\n"),
    invalid("status-code-999", b"HTTP/1.1 999 Whatever\r\nContent-Length: 0\r\n\r\n"),
    invalid("nul-in-header-value", upgrade_response(extra=b"X-Nul: a\x00b\r\n")),
    invalid("header-without-colon", upgrade_response(extra=b"NoColonHere\r\n")),
    invalid("bad-content-length", b"HTTP/1.1 404 Not Found\r\nContent-Length: 1x\r\n\r\n"),
    Case(
        "slowloris-response",
        (ReadRequest(), Flood(bytewise(upgrade_response()), every=0.1)),
        statews.ConnectTimeout,
        phase="handshake",
        options={"connect_timeout": 0.5},
        at_least=0.45,
        within=1.2,
    ),
    Case(
        "never-answers",
        (ReadRequest(), Watch()),
        statews.ConnectTimeout,
        phase="handshake",
        options={"connect_timeout": 0.5},
        at_least=0.45,
        within=1.2,
    ),
    Case("closes-at-once", (CloseTCP(),), statews.InvalidHandshake, phase="handshake"),
    Case(
        "closes-after-request",
        (ReadRequest(), HalfClose(), Watch()),
        statews.InvalidHandshake,
        phase="handshake",
    ),
    Case(
        "closes-mid-response",
        (ReadRequest(), Respond(upgrade_response()[:40]), HalfClose(), Watch()),
        statews.InvalidHandshake,
        phase="handshake",
    ),
    Case(
        "reset-mid-response",
        (ReadRequest(), Respond(upgrade_response()[:40]), Reset()),
        statews.InvalidHandshake,
        phase="handshake",
    ),
    Case(
        "tls-untrusted-certificate",
        (ReadRequest(), Respond(upgrade_response()), Watch()),
        statews.TLSError,
        cause=ssl.SSLCertVerificationError,
        phase="handshake",
        tls="untrusted",
    ),
    Case(
        "tls-wrong-hostname",
        (ReadRequest(), Respond(upgrade_response()), Watch()),
        statews.TLSError,
        cause=ssl.SSLCertVerificationError,
        phase="handshake",
        tls="wrong-host",
    ),
    *(
        Case(
            f"101-tolerated-{name}",
            (ReadRequest(), Respond(response), Send(close_frame(1000)), Watch()),
            statews.ConnectionClosedOK,
            code=1000,
            wire=1000,
        )
        for name, response in (
            ("obs-text-in-other-header", upgrade_response(extra=b"X-Junk: \xff\xfe caf\xe9\r\n")),
            ("connection-token-list", upgrade_response(connection=b"keep-alive, upGRADE")),
            ("upgrade-in-other-case", upgrade_response(upgrade=b"WebSocket")),
            (
                "interim-100-first",
                b"HTTP/1.1 100 Continue\r\n\r\n" + upgrade_response(),
            ),
            ("accept-with-surrounding-spaces", upgrade_response("  {accept}  ")),
        )
    ),
    Case(
        "tls-server-never-answers-hello",
        (Drain(),),
        statews.ConnectTimeout,
        phase="handshake",
        tls="plaintext",
        options={"connect_timeout": 0.5},
        at_least=0.45,
        within=1.5,
    ),
    Case(
        "tls-trusted-works",
        (*Upgrade(), Send(close_frame(1000)), Watch()),
        statews.ConnectionClosedOK,
        code=1000,
        wire=1000,
        tls="trusted",
    ),
    Case(
        "tls-server-speaks-plaintext",
        (Respond(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), Drain()),
        statews.TLSError,
        cause=ssl.SSLError,
        phase="handshake",
        tls="plaintext",
    ),
]

# ---------------------------------------------------------------------- redirects


def _redirect(id: str, location: bytes | None, expect: type[BaseException], **kwargs: Any) -> Case:
    """A 302 to ``location`` (``{port}``: this server's port; None: no Location at all)."""
    header = b"" if location is None else b"Location: " + location + b"\r\n"
    response = b"HTTP/1.1 302 Found\r\n" + header + b"Content-Length: 0\r\n\r\n"
    return Case(
        id, (ReadRequest(), Respond(response), Watch()), expect, phase="handshake", **kwargs
    )


def _chain_of(length: int) -> Callable[[BaseException], None]:
    def check(exc: BaseException) -> None:
        assert isinstance(exc, statews.RedirectError)
        assert len(exc.chain) == length, exc.chain

    return check


def _no_injected_header(seen: Seen) -> None:
    assert len(seen.requests) == 2
    assert all("x-injected" not in request for request in seen.requests), seen.requests


REDIRECTS: list[Case] = [
    _redirect(
        "redirect-loop",
        b"ws://127.0.0.1:{port}/",
        statews.RedirectError,
        connections=11,  # the first request and max_redirects=10 more
        check=_chain_of(12),  # ... and the refused eleventh hop
        cause=statews.HandshakeRejected,
    ),
    _redirect(
        "redirect-loop-relative",
        b"/again",
        statews.RedirectError,
        connections=3,
        options={"max_redirects": 2},
    ),
    _redirect("redirect-without-location", None, statews.RedirectError),
    _redirect("redirect-to-file-scheme", b"file:///etc/passwd", statews.RedirectError),
    _redirect(
        "redirect-with-credentials", b"ws://user:secret@127.0.0.1:{port}/", statews.RedirectError
    ),
    _redirect("redirect-to-invalid-port", b"ws://127.0.0.1:99999/", statews.RedirectError),
    _redirect("redirect-to-dead-port", b"ws://127.0.0.1:1/", statews.ConnectError),
    _redirect(
        "redirect-location-encoded-crlf",
        b"/a%0d%0aX-Injected:%201",
        statews.RedirectError,
        connections=2,
        options={"max_redirects": 1},
        server_check=_no_injected_header,
    ),
    Case(
        "redirect-chain-slower-than-connect-timeout",
        (
            ReadRequest(),
            Sleep(0.15),
            Respond(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /next\r\n\r\n"),
            Watch(),
        ),
        statews.ConnectTimeout,
        phase="handshake",
        connections=None,
        options={"connect_timeout": 0.5},
        at_least=0.45,
        within=1.5,
    ),
    _redirect(
        "redirect-wss-to-ws-downgrade",
        b"ws://127.0.0.1:{port}/",
        statews.RedirectError,
        tls="trusted",
    ),
]

# -------------------------------------------------------------------- injections

INJECTIONS: list[Injection] = [
    *(
        Injection(f"host-{name}", options={"host": f"127.0.0.1{char}x"})
        for name, char in (("cr", "\r"), ("lf", "\n"), ("nul", "\0"))
    ),
    Injection("host-header-split", options={"host": "127.0.0.1\r\nX-Injected: 1"}),
    *(
        Injection(f"path-{name}", options={"path": f"/a{char}b"})
        for name, char in (("cr", "\r"), ("lf", "\n"), ("nul", "\0"))
    ),
    Injection("path-request-split", options={"path": "/ HTTP/1.1\r\nHost: evil\r\n\r\nGET /"}),
    Injection("url-path-crlf", url="ws://127.0.0.1:{port}/a\r\nX-Injected: 1"),
    Injection("url-path-nul", url="ws://127.0.0.1:{port}/a\0b"),
    *(
        Injection(f"header-name-{name}", options={"headers": {f"X-A{char}B": "v"}})
        for name, char in (("cr", "\r"), ("lf", "\n"), ("nul", "\0"))
    ),
    *(
        Injection(f"header-value-{name}", options={"headers": {"X-A": f"v{char}X-Injected: 1"}})
        for name, char in (("cr", "\r"), ("lf", "\n"), ("nul", "\0"), ("crlf", "\r\n"))
    ),
    Injection("header-pairs-value-lf", options={"headers": [["X-A", "v\nX-B: 1"]]}),
    *(
        Injection(f"subprotocol-{name}", options={"protocols": [f"chat{char}x"]})
        for name, char in (("cr", "\r"), ("lf", "\n"), ("nul", "\0"))
    ),
    Injection("subprotocol-header-split", options={"protocols": ["chat\r\nX-Injected: 1"]}),
    Injection(
        "server-hostname-crlf",
        url="wss://127.0.0.1:{port}/",
        options={"ssl_options": {"server_hostname": "a\r\nb"}},
    ),
]
