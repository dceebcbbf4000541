"""Run statews against the Autobahn|Testsuite fuzzing server (the standard client suite).

    ../shared/autobahn/setup.sh          # once per machine
    python compliance/run.py             # starts the server, runs this client, summarises

or by hand, with a fuzzing server already listening::

    python compliance/autobahn_client.py --url ws://127.0.0.1:9001 --agent statews

The loop is the usual one: ``/getCaseCount``, then every ``/runCase?case=N`` echoing each
message until the server closes, then ``/updateReports``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from urllib.parse import quote

import trio

import statews


async def run_case(url: str, case_timeout: float) -> None:
    with trio.move_on_after(case_timeout) as scope:
        try:
            async with statews.open_websocket(
                url, max_message_size=None, max_frame_size=None, connect_timeout=30
            ) as ws:
                while True:
                    message = await ws.recv()
                    await ws.send(message)
        except statews.WebSocketError:
            pass
    if scope.cancelled_caught:
        print(f"{url}: timed out after {case_timeout} s", flush=True)


async def main(url: str, agent: str, case_timeout: float, cases: list[int] | None) -> None:
    async with statews.open_websocket(f"{url}/getCaseCount") as ws:
        message = await ws.recv()
        assert isinstance(message, statews.Text)
        count = int(message.data)
    print(f"{count} cases", flush=True)
    started = time.monotonic()
    for case in cases or range(1, count + 1):
        await run_case(f"{url}/runCase?case={case}&agent={quote(agent)}", case_timeout)
    print(f"ran in {time.monotonic() - started:.1f} s", flush=True)
    async with statews.open_websocket(
        f"{url}/updateReports?agent={quote(agent)}", close_timeout=300
    ) as ws:
        with contextlib.suppress(statews.ConnectionClosed):
            await ws.recv(timeout=300)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="statews")
    parser.add_argument("--case-timeout", type=float, default=120)
    parser.add_argument("--cases", type=int, nargs="*", help="case numbers (default all)")
    args = parser.parse_args()
    trio.run(main, args.url, args.agent, args.case_timeout, args.cases)
    sys.exit(0)
