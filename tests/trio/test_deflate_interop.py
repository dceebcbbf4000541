"""permessage-deflate against real servers: `websockets` (Python) and Node's `ws`.

Every server parameter combination of RFC 7692 7.1 (36 per server) meets a covering
set of client :class:`~statews.options.DeflateOptions` (every pair of client parameter
values occurs), and every client combination meets each server's defaults. Each pair
exchanges messages that break on a wrong window size (back-references 2 KiB away), a
wrong context takeover (the same message again), the empty-message rules and
fragmentation. A byte-counting relay between client and server checks that
compression happens on the wire in both directions, not only in the handshake.

The Node peer (``tests/node/echo_server.js``) needs ``node`` and ``npm ci --prefix
tests/node``; without them those tests are skipped, or fail when ``CI`` is set."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import trio
from peers import node_echo, read_request, serve_raw, start_ws_server
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from wire import accept_for, upgrade_response

import statews
from statews import Binary, Frame, Text
from statews.core.errors import HandshakeRejected, InvalidHandshake

# ------------------------------------------------------------------ messages

_rng = random.Random(7692)
#: Random 2 KiB repeated: compressible only with a window over 2 KiB, so a peer that
#: compresses with a larger window than agreed makes a 9..11-bit inflater fail.
FAR_REPEATS = bytes(_rng.getrandbits(8) for _ in range(2048)) * 8
NOISE = bytes(_rng.getrandbits(8) for _ in range(16 * 1024))
SAME = "".join(_rng.choice("abcdefghij klmnop") for _ in range(700))
JSONISH = json.dumps([{"id": i, "name": f"item-{i}", "tags": ["a", "b"]} for i in range(600)])

#: (what, message): every one is echoed and must come back equal.
MESSAGES: list[tuple[str, Frame]] = [
    ("small text", Text("héllo ✓")),
    ("empty text", Text("")),
    ("empty binary", Binary(b"")),
    ("far repeats", Binary(FAR_REPEATS)),
    ("incompressible", Binary(NOISE)),
    ("large compressible text", Text(JSONISH)),
    # The same message again: with context takeover the second is a back-reference.
    ("same 1", Text(SAME)),
    ("same 2", Text(SAME)),
    ("same 3", Text(SAME)),
    ("empty after context", Binary(b"")),
    ("same 4", Text(SAME)),
]
#: The few that break on a wrong window, a wrong context takeover or the empty-message
#: rule, and show compression on the wire: for the large matrices.
FEW = {"empty binary", "far repeats", "large compressible text", "same 1", "same 2"}
FEW_MESSAGES = [(what, message) for what, message in MESSAGES if what in FEW]


# ------------------------------------------------------------------ a counting relay


@dataclass
class Relay:
    port: int
    up: int = 0  # bytes client -> server
    down: int = 0  # bytes server -> client

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


async def start_relay(nursery: trio.Nursery, target_port: int) -> Relay:
    """A TCP relay to ``target_port`` counting the bytes in each direction."""
    relay = Relay(0)

    async def pump(
        source: trio.abc.ReceiveStream, sink: trio.abc.SendStream, up: bool, done: trio.CancelScope
    ) -> None:
        try:
            while data := await source.receive_some(65536):
                if up:
                    relay.up += len(data)
                else:
                    relay.down += len(data)
                await sink.send_all(data)
        except trio.BrokenResourceError:
            pass
        done.cancel()

    async def script(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", target_port)
        async with server, trio.open_nursery() as pumps:
            pumps.start_soon(pump, client, server, True, pumps.cancel_scope)
            pumps.start_soon(pump, server, client, False, pumps.cancel_scope)

    relay.port = (await serve_raw(nursery, script)).port
    return relay


async def exchange(
    ws: statews.WebSocket,
    relay: Relay | None,
    label: str,
    messages: list[tuple[str, Frame]] = MESSAGES,
) -> None:
    """Echo every message; with a relay, check that compressible data was compressed."""
    for what, message in messages:
        up, down = (relay.up, relay.down) if relay else (0, 0)
        await ws.send(message)
        echoed = await ws.recv()
        assert echoed == message, f"{label}: {what} came back different"
        if relay is not None and what == "large compressible text":
            size = len(JSONISH)
            assert relay.up - up < size / 5, f"{label}: we did not compress"
            assert relay.down - down < size / 5, f"{label}: the server did not compress"


# ------------------------------------------------------------------ websockets

SERVER_PARAMS = [
    {
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": smwb,
        "client_max_window_bits": cmwb,
    }
    for snct, cnct, smwb, cmwb in itertools.product(
        (False, True), (False, True), (None, 9, 12), (None, 9, 12)
    )
]


def _client(snct: bool, cnct: bool, smwb: int | None, cmwb: int | None) -> dict[str, Any]:
    return {
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": smwb,
        "client_max_window_bits": cmwb,
        "threshold": 0,  # compress everything, the empty messages too
    }


_FLAGS = (False, True)
_SERVER_BITS = (None, 10, 15)
_CLIENT_BITS = (None, 9, 15)
#: Options that change how we compress, not what is negotiated.
CLIENT_EXTRAS: list[dict[str, Any]] = [
    {"threshold": 128, "compress_level": 1, "mem_level": 1},
    {"threshold": 100_000, "client_max_window_bits": 9},  # offered, nothing compressed
    {"compress_level": 9, "mem_level": 9, "client_max_window_bits": 11},
]
#: Every combination of the four negotiated client parameters.
CLIENT_ALL = [
    _client(*combo) for combo in itertools.product(_FLAGS, _FLAGS, _SERVER_BITS, _CLIENT_BITS)
]
#: A covering subset: every pair of values of any two parameters occurs in some row
#: (an orthogonal array of strength 2, the flags folded from 3 levels to 2).
CLIENT_PAIRWISE = [
    _client((i + j) % 3 == 1, (i + 2 * j) % 3 == 1, _SERVER_BITS[i], _CLIENT_BITS[j])
    for i in range(3)
    for j in range(3)
]


def _id(params: dict[str, Any]) -> str:
    short = {
        "server_no_context_takeover": "snct",
        "client_no_context_takeover": "cnct",
        "server_max_window_bits": "smwb",
        "client_max_window_bits": "cmwb",
    }
    parts = []
    for name, value in params.items():
        if value is True:
            parts.append(short.get(name, name))
        elif value not in (False, None):
            parts.append(f"{short.get(name, name)}={value}")
    return "+".join(parts) or "defaults"


async def run_clients(
    relay: Relay,
    clients: list[dict[str, Any]],
    server: str,
    accepts: Callable[[dict[str, Any]], bool] = lambda deflate: True,
    messages: list[tuple[str, Frame]] = MESSAGES,
) -> None:
    """Connect once per client setting and exchange MESSAGES; a setting the server does
    not accept (``accepts``) must be rejected with 400 instead."""
    for deflate in clients:
        label = f"{server}, client {_id(deflate)}"
        connect = partial(statews.open_websocket, relay.url(), deflate=deflate, ping_interval=None)
        if not accepts(deflate):
            with pytest.raises(HandshakeRejected) as info:
                async with connect():
                    pass
            assert info.value.status == 400, label
            continue
        async with connect() as ws:
            assert ws.extensions == ("permessage-deflate",), label
            accepted = dict(ws.response_headers)["Sec-WebSocket-Extensions"]
            assert accepted.startswith("permessage-deflate"), label
            compressing = deflate.get("threshold", 128) <= len(JSONISH)
            await exchange(ws, relay if compressing else None, label, messages)


async def websockets_relay(nursery: trio.Nursery, server_params: dict[str, Any]) -> Relay:
    factory = ServerPerMessageDeflateFactory(**server_params)
    server = await start_ws_server(nursery, extensions=[factory])
    return await start_relay(nursery, server.port)


@pytest.mark.parametrize("server_params", SERVER_PARAMS, ids=_id)
async def test_websockets_server_parameter_matrix(
    nursery: trio.Nursery, server_params: dict[str, Any]
) -> None:
    relay = await websockets_relay(nursery, server_params)
    with trio.fail_after(10):
        await run_clients(
            relay, CLIENT_PAIRWISE, f"server {_id(server_params)}", messages=FEW_MESSAGES
        )


async def test_websockets_every_client_combination(nursery: trio.Nursery) -> None:
    relay = await websockets_relay(nursery, {})
    with trio.fail_after(10):
        await run_clients(relay, CLIENT_ALL + CLIENT_EXTRAS, "server defaults")


@pytest.mark.parametrize("server_params", SERVER_PARAMS[::5], ids=_id)
@pytest.mark.parametrize("fragment_size", [64, 1000])
async def test_websockets_server_fragmented(
    nursery: trio.Nursery, server_params: dict[str, Any], fragment_size: int
) -> None:
    server = await start_ws_server(
        nursery, extensions=[ServerPerMessageDeflateFactory(**server_params)]
    )
    text = JSONISH[:5000]
    with trio.fail_after(10):
        async with statews.open_websocket(
            server.url(), fragment_size=fragment_size, deflate={"threshold": 0}
        ) as ws:
            assert ws.extensions == ("permessage-deflate",)
            for message in (Text(text), Binary(FAR_REPEATS[:3000]), Text(""), Text(text)):
                await ws.send(message)
                assert await ws.recv() == message
            # A streamed message: compression is decided on the first fragment.
            await ws.send_stream([text[:10], text[10:3000], text[3000:]])
            assert await ws.recv() == Text(text)
            await ws.send_stream([b"", FAR_REPEATS[:4096], b""])
            assert await ws.recv() == Binary(FAR_REPEATS[:4096])
    await server.server.aclose()


async def test_websockets_default_compression(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, compression="deflate")
    relay = await start_relay(nursery, server.port)
    with trio.fail_after(10):
        async with statews.open_websocket(relay.url()) as ws:
            assert ws.extensions == ("permessage-deflate",)
            await exchange(ws, relay, "websockets defaults")
    await server.server.aclose()


async def test_server_without_compression(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, compression=None)
    with trio.fail_after(5):
        async with statews.open_websocket(server.url("/headers")) as ws:
            sent = await ws.recv()
            assert isinstance(sent, Text)
            offered = {k.lower(): v for k, v in json.loads(sent.data)}
            assert offered["sec-websocket-extensions"].startswith("permessage-deflate")
            assert ws.extensions == ()
            await exchange(ws, None, "declined")
    await server.server.aclose()


async def test_compression_none_offers_nothing(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, compression="deflate")
    relay = await start_relay(nursery, server.port)
    with trio.fail_after(5):
        async with statews.open_websocket(relay.url("/headers"), compression=None) as ws:
            sent = await ws.recv()
            assert isinstance(sent, Text)
            headers = {k.lower() for k, _ in json.loads(sent.data)}
            assert "sec-websocket-extensions" not in headers
            assert ws.extensions == ()
            assert not any(k.lower() == "sec-websocket-extensions" for k, _ in ws.response_headers)
            up = relay.up
            await ws.send(Text(JSONISH))
            assert await ws.recv() == Text(JSONISH)
            assert relay.up - up > len(JSONISH)  # sent as it is
    await server.server.aclose()


# ------------------------------------------------------------------ answers we cannot honour


@pytest.mark.parametrize(
    ("deflate", "accepted", "match"),
    [
        ({}, "permessage-deflate; foo=1", "unknown parameter 'foo'"),
        ({}, "permessage-deflate; server_no_context_takeover=1", "takes no value"),
        ({}, "permessage-deflate; client_max_window_bits=16", "8..15"),
        ({}, "permessage-deflate; server_max_window_bits", "needs an integer"),
        ({}, "permessage-deflate; client_max_window_bits=09", "8..15"),
        (
            {},
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "duplicate",
        ),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits=12",
            "exceeds",
        ),
        (
            {"server_max_window_bits": 10},
            "permessage-deflate; server_max_window_bits=12",
            "exceeds",
        ),
        ({"server_max_window_bits": 10}, "permessage-deflate", "lacks it"),
        ({"server_no_context_takeover": True}, "permessage-deflate", "lacks it"),
        ({}, "permessage-deflate, permessage-deflate", "twice"),
        ({}, "x-webkit-deflate-frame", "not offered"),
    ],
)
async def test_answers_we_cannot_honour(
    nursery: trio.Nursery, deflate: dict[str, Any], accepted: str, match: str
) -> None:
    async def script(stream: trio.SocketStream) -> None:
        _, headers = await read_request(stream)
        await stream.send_all(
            upgrade_response(
                accept_for(headers["sec-websocket-key"]),
                extra=f"Sec-WebSocket-Extensions: {accepted}\r\n".encode(),
            )
        )
        await trio.sleep(5)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            ws = await statews.start_link(inner, server.url(), deflate=deflate)
            with pytest.raises(InvalidHandshake, match=match):
                await ws.connect()
            assert ws.state == "closed"


# ------------------------------------------------------------------ Node's ws

#: Node ws options (perMessageDeflate) to try; threshold 0 compresses every message.
NODE_CONFIGS: list[dict[str, Any]] = [
    {"serverNoContextTakeover": snct, "clientNoContextTakeover": cnct}
    | ({} if smwb is None else {"serverMaxWindowBits": smwb})
    | ({} if cmwb is None else {"clientMaxWindowBits": cmwb})
    | {"threshold": 0}
    for snct, cnct, smwb, cmwb in itertools.product(
        (False, True), (False, True), (None, 9, 12), (None, 9, 12)
    )
]


def node_accepts(config: dict[str, Any], deflate: dict[str, Any]) -> bool:
    """Whether Node's ws accepts our offer (it answers 400 otherwise): it refuses to
    use a larger window than the client asks for or to accept a client window larger
    than offered (ws/lib/permessage-deflate.js, acceptAsServer)."""
    smwb = config.get("serverMaxWindowBits")
    cmwb = config.get("clientMaxWindowBits")
    asked_server = deflate.get("server_max_window_bits")
    offered_client = deflate.get("client_max_window_bits")
    if config["serverNoContextTakeover"] is False and deflate.get("server_no_context_takeover"):
        return False
    if asked_server is not None and smwb is not None and smwb > asked_server:
        return False
    return not (cmwb is not None and offered_client is not None and cmwb > offered_client)


@pytest.fixture(scope="module")
def node_server() -> Iterator[list[int]]:
    """One Node process listening once per NODE_CONFIGS entry; yields the ports."""
    with node_echo(NODE_CONFIGS) as ports:
        yield ports


def _node_id(config: dict[str, Any]) -> str:
    return "+".join(f"{k}={v}" for k, v in config.items() if v is not False and k != "threshold")


@pytest.mark.parametrize(
    "config", NODE_CONFIGS, ids=[_node_id(c) or "defaults" for c in NODE_CONFIGS]
)
async def test_node_ws_parameter_matrix(
    nursery: trio.Nursery, node_server: list[int], config: dict[str, Any]
) -> None:
    relay = await start_relay(nursery, node_server[NODE_CONFIGS.index(config)])
    with trio.fail_after(10):
        await run_clients(
            relay, CLIENT_PAIRWISE, f"node {config}", partial(node_accepts, config), FEW_MESSAGES
        )


async def test_node_ws_every_client_combination(
    nursery: trio.Nursery, node_server: list[int]
) -> None:
    config = NODE_CONFIGS[0]
    relay = await start_relay(nursery, node_server[0])
    with trio.fail_after(10):
        await run_clients(
            relay, CLIENT_ALL + CLIENT_EXTRAS, f"node {config}", partial(node_accepts, config)
        )


async def test_node_ws_fragmented(node_server: list[int]) -> None:
    with trio.fail_after(10):
        for index in (0, 5, 35):
            url = f"ws://127.0.0.1:{node_server[index]}/"
            async with statews.open_websocket(url, fragment_size=700) as ws:
                assert ws.extensions == ("permessage-deflate",)
                for message in (Text(JSONISH[:6000]), Binary(FAR_REPEATS[:5000]), Binary(b"")):
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send_stream(["", JSONISH[:2000], "x"])
                assert await ws.recv() == Text(JSONISH[:2000] + "x")
