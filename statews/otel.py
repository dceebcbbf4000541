"""OpenTelemetry for statews connections (the ``statews[otel]`` extra: opentelemetry-api).

Pass an :class:`OpenTelemetry` among a connection's listeners::

    otel = statews.otel.OpenTelemetry(propagate=True)
    async with statews.open_websocket(url, listeners=[otel]) as ws: ...

It observes the connection through its declared lifecycle (a python-statemachine
listener) and the frame hooks of :mod:`statews.trio.observe`, so it costs nothing on the
per-message path.

Traces: one span per connection attempt, ``WebSocket connect`` (kind CLIENT), from the
``connect`` transition to ``closed``, so it covers the opening handshake and the session.
Attributes (OpenTelemetry semantic conventions where they exist): ``server.address``,
``server.port``, ``url.full`` (secret query parameters masked, as ``statews check``
masks them), ``url.scheme``, ``network.protocol.name`` (``websocket``),
``network.protocol.version`` (``13``), ``websocket.subprotocol`` and
``websocket.extensions`` once upgraded, ``http.response.status_code`` (101, or the
rejection's status). Events: ``websocket.upgraded``, ``websocket.close`` with
``websocket.close.code``, ``websocket.close.reason`` and ``websocket.close.initiator``
(``client``, ``server`` or ``none`` when the TCP connection ended without a closing
handshake). Errors (a failed handshake, a protocol violation, a lost connection) are
recorded on the span with status ERROR. With ``propagate=True`` the span's trace
context is sent in the handshake request (``traceparent``/``tracestate``, through the
globally configured propagator).

Metrics: ``websocket.client.messages`` and ``websocket.client.bytes`` (counters,
attribute ``websocket.direction`` ``in``/``out``; bytes are payload bytes, added when a
connection closes), ``websocket.client.handshake.duration`` and
``websocket.client.ping.rtt`` (histograms, seconds), ``websocket.client.connections``
(up-down counter of open connections).

Nothing changes when no provider is configured: the API's no-op tracer and meter are
used. Invariants: one span per attempt, always ended (at ``closed``); errors inside this
listener are contained like any listener's; per-connection state is dropped at
``closed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "statews.otel needs OpenTelemetry's API: pip install 'statews[otel]'"
    ) from exc

import trio

from . import __version__
from .core.errors import HandshakeRejected
from .options.model import resolve_options
from .options.redact import mask_query

if TYPE_CHECKING:
    from .lifecycle.machine import Lifecycle
    from .trio.connection import WebSocket

__all__ = ["OpenTelemetry"]

# Which side started the closing handshake, by the event that left ``connected``.
_INITIATOR = {"close_requested": "client", "failed": "client", "close_received": "server"}


class _Attempt:
    """One connection's span and timings."""

    __slots__ = ("initiator", "span", "started", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.span: trace.Span | None = None
        self.started = 0.0
        self.initiator = "none"


class OpenTelemetry:
    """A listener that traces and measures the connections it is given to."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        propagate: bool = False,
    ) -> None:
        self._tracer = trace.get_tracer("statews", __version__, tracer_provider)
        meter = metrics.get_meter("statews", __version__, meter_provider)
        self._messages = meter.create_counter(
            "websocket.client.messages", unit="{message}", description="Messages, by direction."
        )
        self._bytes = meter.create_counter(
            "websocket.client.bytes", unit="By", description="Payload bytes, by direction."
        )
        self._handshake = meter.create_histogram(
            "websocket.client.handshake.duration",
            unit="s",
            description="TCP/TLS connect and the opening handshake.",
        )
        self._rtt = meter.create_histogram(
            "websocket.client.ping.rtt", unit="s", description="Ping round-trip times."
        )
        self._open = meter.create_up_down_counter(
            "websocket.client.connections", unit="{connection}", description="Open connections."
        )
        self._propagate = propagate
        self._attempts: dict[int, _Attempt] = {}  # by id(ws.lifecycle); dropped at closed

    # --- the hooks ------------------------------------------------------------------

    def on_attach(self, ws: WebSocket) -> None:
        """A connection was made with this listener (statews calls it once)."""
        self._attempts[id(ws.lifecycle)] = _Attempt(ws)

    def after_transition(self, event: str, target: Any, machine: Lifecycle) -> None:
        """Every lifecycle transition of the connections observed."""
        attempt = self._attempts.get(id(machine))
        if attempt is None:
            return
        if event == "connect":
            self._start(attempt)
        elif event == "upgraded":
            self._upgraded(attempt)
        elif event in _INITIATOR:
            attempt.initiator = _INITIATOR[event]
        if target.id == "closed":
            self._closed(attempt)

    def on_pong(self, ws: WebSocket, rtt: float) -> None:
        """A ping was answered."""
        self._rtt.record(rtt, {"server.address": ws.options.host})

    # --- the span -------------------------------------------------------------------

    def _start(self, attempt: _Attempt) -> None:
        ws = attempt.ws
        options = ws.options
        attributes: dict[str, Any] = {
            "server.address": options.host,
            "server.port": options.effective_port,
            "url.full": mask_query(options.url),
            "url.scheme": "wss" if options.secure else "ws",
            "network.protocol.name": "websocket",
            "network.protocol.version": "13",
        }
        attempt.span = span = self._tracer.start_span(
            "WebSocket connect", kind=SpanKind.CLIENT, attributes=attributes
        )
        attempt.started = _now()
        if self._propagate:
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            if carrier:
                ws.options = resolve_options(
                    options, headers=(*options.headers, *sorted(carrier.items()))
                )

    def _upgraded(self, attempt: _Attempt) -> None:
        ws = attempt.ws
        span = attempt.span
        self._handshake.record(_now() - attempt.started, {"server.address": ws.options.host})
        self._open.add(1, {"server.address": ws.options.host})
        if span is None:
            return
        span.set_attribute("http.response.status_code", 101)
        if ws.subprotocol is not None:
            span.set_attribute("websocket.subprotocol", ws.subprotocol)
        if ws.extensions:
            span.set_attribute("websocket.extensions", list(ws.extensions))
        span.add_event("websocket.upgraded")

    def _closed(self, attempt: _Attempt) -> None:
        ws = attempt.ws
        self._attempts.pop(id(ws.lifecycle), None)
        span = attempt.span
        host = {"server.address": ws.options.host}
        stats = ws.stats
        connected = "connected" in stats.state_seconds
        if connected:
            self._open.add(-1, host)
            self._messages.add(stats.messages_in, {**host, "websocket.direction": "in"})
            self._messages.add(stats.messages_out, {**host, "websocket.direction": "out"})
            self._bytes.add(stats.payload_bytes_in, {**host, "websocket.direction": "in"})
            self._bytes.add(stats.payload_bytes_out, {**host, "websocket.direction": "out"})
        if span is None:
            return
        error = ws._error
        closed = ws.closed_reason
        if isinstance(error, HandshakeRejected):
            span.set_attribute("http.response.status_code", error.status)
        if connected and closed is not None:
            span.add_event(
                "websocket.close",
                {
                    "websocket.close.code": closed.code,
                    "websocket.close.reason": closed.reason,
                    "websocket.close.initiator": attempt.initiator,
                },
            )
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()


def _now() -> float:
    return trio.current_time()
