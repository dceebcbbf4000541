"""statews: a WebSocket client for trio, with hackney_ws semantics and a declared lifecycle.

async with statews.open_websocket("ws://127.0.0.1:8765/") as ws:
    await ws.send("hello")
    print(await ws.recv())  # Text(data='hello')
"""

from .core.errors import (
    ActiveModeError,
    CloseCode,
    ConnectError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
    HandshakeRejected,
    InvalidHandshake,
    InvalidStateError,
    LocalProtocolError,
    OptionsError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    RecvTimeout,
    RedirectError,
    RemoteProtocolError,
    TLSError,
    WebSocketError,
)
from .core.events import Binary, Close, Fragment, Frame, HackneyFrame, Ping, Pong, Sendable, Text
from .lifecycle.machine import Lifecycle, StateName
from .options.config import ConfigError, check_config, dump_options, load_config, load_configs
from .options.model import Options
from .trio.client import open_websocket, start_link
from .trio.connection import WebSocket
from .trio.delivery import Active, Closed, Delivery, Failed, Message, parse_active
from .trio.reconnect import Attempts, Backoff, connect_forever

__version__ = "0.1.0"

__all__ = [
    "Active",
    "ActiveModeError",
    "Attempts",
    "Backoff",
    "Binary",
    "Close",
    "CloseCode",
    "Closed",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Delivery",
    "Failed",
    "Fragment",
    "Frame",
    "HackneyFrame",
    "HandshakeError",
    "HandshakeRejected",
    "InvalidHandshake",
    "InvalidStateError",
    "Lifecycle",
    "LocalProtocolError",
    "Message",
    "Options",
    "OptionsError",
    "PayloadTooBig",
    "Ping",
    "Pong",
    "ProtocolError",
    "ProxyError",
    "RecvTimeout",
    "RedirectError",
    "RemoteProtocolError",
    "Sendable",
    "StateName",
    "TLSError",
    "Text",
    "WebSocket",
    "WebSocketError",
    "check_config",
    "connect_forever",
    "dump_options",
    "load_config",
    "load_configs",
    "open_websocket",
    "parse_active",
    "start_link",
]
