"""A misspelt state: ws.state is a Literal, so --strict-equality rejects the comparison."""

import statews


async def main(url: str) -> None:
    async with statews.open_websocket(url) as ws:
        if ws.state == "conected":  # E: Non-overlapping equality check
            print("never")
        if ws.state != "open":  # E: Non-overlapping equality check
            print("always")
