"""The benchmark's echo servers in Python, for machines without Node: websockets + asyncio.

Run by ``bench/run.py`` as a subprocess when ``node`` or ``node_modules/ws`` is missing
(or with ``--server python``). Same contract as ``echo.js``: listens on 127.0.0.1,
ephemeral ports, prints one JSON line ``{"ws", "ws_deflate", "tcp", "pid"}`` once all
three listen, and exits when its stdin closes.

- ``ws`` / ``ws_deflate``: the ``websockets`` asyncio echo server, permessage-deflate off / on.
- ``tcp``: length-prefixed echo: a 2-byte big-endian length, or 0xFFFF and a 4-byte length;
  each whole message is sent back with its prefix.

This server is much slower than Node's: check the server CPU share in the results (near
1.0 means it, not the client, was measured).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from websockets.asyncio.server import ServerConnection, serve

MAX_PAYLOAD = 64 * 1024 * 1024


async def ws_echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readexactly(2)
            length = int.from_bytes(head, "big")
            if length == 0xFFFF:
                extended = await reader.readexactly(4)
                head += extended
                length = int.from_bytes(extended, "big")
            payload = await reader.readexactly(length)
            writer.write(head + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def wait_stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


async def main() -> None:
    common = {"max_size": MAX_PAYLOAD, "ping_interval": None, "max_queue": None}
    async with (
        serve(ws_echo, "127.0.0.1", 0, compression=None, **common) as plain,  # type: ignore[arg-type]
        serve(ws_echo, "127.0.0.1", 0, compression="deflate", **common) as deflate,  # type: ignore[arg-type]
    ):
        tcp = await asyncio.start_server(tcp_echo, "127.0.0.1", 0, limit=MAX_PAYLOAD)
        ports = {
            "ws": plain.sockets[0].getsockname()[1],
            "ws_deflate": deflate.sockets[0].getsockname()[1],
            "tcp": tcp.sockets[0].getsockname()[1],
            "pid": os.getpid(),
        }
        print(json.dumps(ports), flush=True)
        await wait_stdin_closed()
        tcp.close()


if __name__ == "__main__":
    asyncio.run(main())
