"""Wrong arguments to the connection's operations and to connect_forever."""

import trio

import statews


async def main(url: str) -> None:
    async with statews.open_websocket(url) as ws:
        await ws.setopts(active="twice")  # E: [arg-type]
        await ws.recv(timeout="5")  # E: [arg-type]
        channel, _ = trio.open_memory_channel[int](1)
        await ws.controlling_process(channel)  # E: [arg-type]
        name: int = ws.peername()  # E: [assignment]
        print(name)
    async with statews.connect_forever(url, retry_codes="1001"):  # E: [arg-type]
        pass
