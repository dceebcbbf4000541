"""Sending data without wrapping it, the typed state, the mailbox, iterating messages."""

from typing import Literal

import trio

import statews

State = Literal["idle", "upgrading", "connected", "closing", "closed"]


async def main(url: str) -> None:
    async with statews.open_websocket(url) as ws:
        await ws.send("a text message")
        await ws.send(b"a binary message")
        await ws.send(bytearray(b"binary too"))
        await ws.send(memoryview(b"and this"))
        state: State = ws.state
        if ws.state == "connected":
            print(state)
        await ws.setopts(active="once")
        delivery: statews.Delivery = await ws.mailbox.receive()
        print(delivery)
        await ws.setopts(active=False)
        async for message in ws:
            print(message)


if __name__ == "__main__":
    trio.run(main, "ws://127.0.0.1:8765/")
