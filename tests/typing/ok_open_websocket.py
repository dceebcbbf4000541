"""Passive use of open_websocket: every frame kind and hackney's tuples, recv, narrowing."""

import trio

import statews
from statews import Binary, Close, Ping, Pong, Text


async def main(url: str) -> None:
    async with statews.open_websocket(url, protocols=["chat"], connect_timeout=5) as ws:
        await ws.send(Text("hello"))
        await ws.send(Binary(b"\x00\x01"))
        await ws.send(Ping(b"are you there"))
        await ws.send(Pong())
        await ws.send(("text", "hi"))
        await ws.send(("binary", b"\x02"))
        await ws.send("ping")
        latency: float = await ws.ping()
        print(f"{latency * 1000:.1f} ms", ws.subprotocol)
        frame = await ws.recv(timeout=5)
        match frame:
            case Text(data=text):
                print(text.upper())
            case Binary(data=data):
                print(data.hex())
            case _:
                print(frame)
        try:
            await ws.recv(timeout=0.1)
        except statews.RecvTimeout:
            pass
        except statews.ConnectionClosed as closed:
            code: int = closed.code
            print(code, closed.reason, closed.rcvd, closed.sent)
        await ws.send(Close(1000, "bye"))
    reason: statews.ConnectionClosed | None = ws.closed_reason
    if isinstance(reason, statews.ConnectionClosedOK):
        print("clean", reason.code)


async def with_options() -> None:
    options = statews.Options(host="127.0.0.1", port=8765, active=False, max_queue=32)
    async with statews.open_websocket(options) as ws:
        await ws.close(1000, "done")
    async with statews.open_websocket({"url": "ws://127.0.0.1:8765/", "compression": None}):
        pass


if __name__ == "__main__":
    trio.run(main, "ws://127.0.0.1:8765/")
