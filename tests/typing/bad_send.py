"""What send() does not take."""

import statews


async def main(url: str) -> None:
    async with statews.open_websocket(url) as ws:
        await ws.send(123)  # E: [arg-type]
        await ws.send(None)  # E: [arg-type]
        await ws.send(["text", "hi"])  # E: [arg-type]
