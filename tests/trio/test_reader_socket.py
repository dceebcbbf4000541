"""The reader's direct read of a plain socket raises what trio's receive_some raises."""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from statews.trio.reader import _read


async def test_data_then_nothing_yet_then_the_end() -> None:
    a, b = trio.socket.socketpair()
    with a, b:
        await b.send(b"hello")
        assert _read(a, 100) == b"hello"
        assert _read(a, 100) is None  # would block: the reader waits for the socket
        b.close()
        assert _read(a, 100) == b""


async def test_a_closed_socket_is_never_read() -> None:
    a, b = trio.socket.socketpair()
    with b:
        a.close()
        with pytest.raises(trio.ClosedResourceError):
            _read(a, 100)


async def test_a_reset_connection_is_broken() -> None:
    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = trio.socket.socket()
        with client:
            await client.connect(listener.getsockname())
            server, _ = await listener.accept()
            # SO_LINGER 0: close sends a RST, and the client's next read fails.
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            server.close()
            await trio.lowlevel.wait_readable(client)
            with pytest.raises(trio.BrokenResourceError) as caught:
                _read(client, 100)
            assert isinstance(caught.value.__cause__, ConnectionResetError)
