"""Reconnecting: connect_forever with its policy arguments and the Attempts it yields."""

import trio

import statews
from statews.trio.reconnect import RETRY_CODES, is_transient


def retry(error: BaseException) -> bool:
    return is_transient(error) or isinstance(error, statews.HandshakeRejected)


async def main(url: str) -> None:
    async with statews.connect_forever(
        url,
        backoff_initial=0.1,
        backoff_max=5,
        jitter=0.2,
        max_attempts=10,
        retry_if=retry,
        retry_codes={*RETRY_CODES, 4000},
        active=False,
    ) as attempts:
        async for ws in attempts:
            try:
                while True:
                    print(await ws.recv())
            except statews.ConnectionClosed as closed:
                print(closed.code)
                continue
    count: int = attempts.attempts
    last: BaseException | None = attempts.last_error
    print(count, last, sorted(attempts.retry_codes))


if __name__ == "__main__":
    trio.run(main, "ws://127.0.0.1:8765/")
