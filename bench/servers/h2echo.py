"""hypercorn serving WebSocket echo over HTTP/2 (RFC 8441) and HTTP/1.1, for bench/h2bench.py.

Runs in its own process (trio worker). TLS with a throw-away trustme certificate for
localhost, ALPN ``h2`` and ``http/1.1``, so one server answers both kinds of client; up to
10,000 concurrent streams per connection (hypercorn's default is 100), so that every
WebSocket of a run can share one HTTP/2 connection. Prints one JSON line ``{"port",
"cafile", "pid", "version"}`` once it listens, and exits when its stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import trio
import trustme
from hypercorn.config import Config
from hypercorn.trio import serve


async def echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def main() -> None:
    ca = trustme.CA()
    folder = Path(tempfile.mkdtemp(prefix="h2echo-"))
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.certfile, config.keyfile = str(folder / "cert.pem"), str(folder / "key.pem")
    config.alpn_protocols = ["h2", "http/1.1"]
    config.h2_max_concurrent_streams = 10_000
    config.keep_alive_max_requests = 10**9
    config.backlog = 4096
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, echo, config, shutdown_trigger=stop.wait))
        info = {
            "port": int(binds[0].rsplit(":", 1)[1]),
            "cafile": str(folder / "ca.pem"),
            "pid": os.getpid(),
            "version": f"hypercorn {metadata.version('hypercorn')}",
        }
        print(json.dumps(info), flush=True)
        await trio.to_thread.run_sync(sys.stdin.buffer.read)
        stop.set()


if __name__ == "__main__":
    trio.run(main)
