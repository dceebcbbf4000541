"""The hackney_ws API: start_link, connect, setopts, controlling_process, deliveries."""

import trio

import statews


async def main(url: str) -> None:
    owner, inbox = trio.open_memory_channel[statews.Delivery](16)
    async with trio.open_nursery() as nursery:
        ws: statews.WebSocket = await statews.start_link(nursery, url, active=False, owner=owner)
        print(ws.state)
        await ws.connect(timeout=5)
        address: tuple[str, int] = ws.peername()
        print(address, ws.sockname())
        await ws.setopts(active="once")
        await ws.setopts(active=True)
        handover, deliveries = trio.open_memory_channel[statews.Delivery](0)
        await ws.controlling_process(handover)
        async for delivery in deliveries:
            match delivery:
                case statews.Message(frame=statews.Text(data=text)):
                    print(text.upper())
                case statews.Message(frame=frame):
                    print(frame)
                case statews.Closed(code=code, reason=reason):
                    print(code, reason)
                    break
                case statews.Failed(error=error):
                    raise error
        await ws.setopts(active=False)
        await ws.close(1000, "bye")
    inbox.close()


if __name__ == "__main__":
    trio.run(main, "ws://127.0.0.1:8765/")
