"""Configuration files: load_config and open_websocket(config=...), with str or Path."""

from pathlib import Path

import trio

import statews


async def main(config: Path) -> None:
    options: statews.Options = statews.load_config(config, "feed")
    print(options.url)
    try:
        statews.load_config("missing.yaml")
    except statews.ConfigError as error:
        print(error.file, error.option)
    async with statews.open_websocket(config=config, name="feed") as ws:
        print(await ws.recv())
    async with statews.open_websocket(config="conn.toml"):
        pass


if __name__ == "__main__":
    trio.run(main, Path("conn.toml"))
