"""OpenTelemetry (statews.otel) with the SDK's in-memory span exporter and metric reader,
against real servers: success, a 403 rejection, a handshake timeout, a protocol error,
trace context propagation, and nothing at all without a provider."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from peers import WsServer, accept_upgrade, serve_raw, server_frame

import statews
from statews.otel import OpenTelemetry

OPTIONS: dict[str, Any] = {"ping_interval": None, "compression": None}


@pytest.fixture
def telemetry() -> tuple[OpenTelemetry, InMemorySpanExporter, InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return otel, exporter, reader


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    if data is None:  # nothing was recorded
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def _only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, spans
    return spans[0]


async def test_a_session_is_one_span_with_its_close(
    ws_server: WsServer, telemetry: tuple[OpenTelemetry, InMemorySpanExporter, Any]
) -> None:
    otel, exporter, reader = telemetry
    with trio.fail_after(5):
        async with statews.open_websocket(
            ws_server.url("/echo?token=s3cret&x=1"), listeners=[otel], **OPTIONS
        ) as ws:
            await ws.send("hello")
            await ws.recv()
            await ws.ping()
    span = _only_span(exporter)
    attributes = dict(span.attributes or {})
    assert span.name == "WebSocket connect"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == ws_server.port
    assert attributes["url.full"] == f"ws://127.0.0.1:{ws_server.port}/echo?token=***&x=1"
    assert attributes["network.protocol.name"] == "websocket"
    assert attributes["http.response.status_code"] == 101
    events = {event.name: dict(event.attributes or {}) for event in span.events}
    assert events["websocket.close"] == {
        "websocket.close.code": 1000,
        "websocket.close.reason": "",
        "websocket.close.initiator": "client",
    }
    assert "websocket.upgraded" in events
    assert span.status.status_code is StatusCode.UNSET
    metrics = _metrics(reader)
    messages = metrics["websocket.client.messages"]
    assert {p.attributes["websocket.direction"]: p.value for p in messages} == {"in": 1, "out": 1}
    assert metrics["websocket.client.handshake.duration"][0].count == 1
    assert metrics["websocket.client.ping.rtt"][0].count == 1
    assert metrics["websocket.client.connections"][0].value == 0  # opened, then closed


async def test_server_close_initiator(
    ws_server: WsServer, telemetry: tuple[OpenTelemetry, InMemorySpanExporter, Any]
) -> None:
    otel, exporter, _ = telemetry
    with trio.fail_after(5):
        async with statews.open_websocket(
            ws_server.url("/close?code=1001&reason=bye"), listeners=[otel], **OPTIONS
        ) as ws:
            with pytest.raises(statews.ConnectionClosedOK):
                await ws.recv()
    events = {e.name: dict(e.attributes or {}) for e in _only_span(exporter).events}
    assert events["websocket.close"]["websocket.close.initiator"] == "server"
    assert events["websocket.close"]["websocket.close.code"] == 1001


async def test_rejection_403_is_an_error_with_its_status(
    nursery: trio.Nursery, telemetry: tuple[OpenTelemetry, InMemorySpanExporter, Any]
) -> None:
    otel, exporter, reader = telemetry

    async def script(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")

    server = await serve_raw(nursery, script)
    with trio.fail_after(5), pytest.raises(statews.HandshakeRejected):
        async with statews.open_websocket(server.url(), listeners=[otel], **OPTIONS):
            pass
    span = _only_span(exporter)
    assert dict(span.attributes or {})["http.response.status_code"] == 403
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert "websocket.client.connections" not in _metrics(reader)


async def test_handshake_timeout_is_an_error(
    nursery: trio.Nursery, telemetry: tuple[OpenTelemetry, InMemorySpanExporter, Any]
) -> None:
    otel, exporter, _ = telemetry

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    server = await serve_raw(nursery, silent)
    with trio.fail_after(5), pytest.raises(statews.ConnectTimeout):
        async with statews.open_websocket(
            server.url(), listeners=[otel], connect_timeout=0.2, **OPTIONS
        ):
            pass
    span = _only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert "ConnectTimeout" in (span.status.description or "")


async def test_protocol_error_is_recorded(
    nursery: trio.Nursery, telemetry: tuple[OpenTelemetry, InMemorySpanExporter, Any]
) -> None:
    otel, exporter, _ = telemetry

    async def script(stream: trio.SocketStream) -> None:
        await accept_upgrade(stream, server_frame(0x3, b""))  # reserved opcode
        await trio.sleep(1)

    server = await serve_raw(nursery, script)
    with trio.fail_after(5):
        async with statews.open_websocket(
            server.url(), listeners=[otel], close_timeout=0.3, **OPTIONS
        ) as ws:
            with pytest.raises(statews.ConnectionClosedError):
                await ws.recv()
    span = _only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert "RemoteProtocolError" in (span.status.description or "")
    close = next(e for e in span.events if e.name == "websocket.close")
    assert dict(close.attributes or {})["websocket.close.initiator"] == "client"


async def test_trace_context_is_propagated_when_asked(ws_server: WsServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = OpenTelemetry(tracer_provider=provider, propagate=True)
    with trio.fail_after(5):
        async with statews.open_websocket(
            ws_server.url("/headers"), listeners=[otel], **OPTIONS
        ) as ws:
            message = await ws.recv()
    assert isinstance(message, statews.Text)
    headers = {k.lower(): v for k, v in json.loads(message.data)}
    span = _only_span(exporter)
    trace_id = format(span.context.trace_id, "032x")
    assert headers["traceparent"].split("-")[1] == trace_id


async def test_without_a_provider_nothing_changes(ws_server: WsServer) -> None:
    otel = OpenTelemetry()  # the API's no-op tracer and meter (no SDK configured)
    with trio.fail_after(5):
        async with statews.open_websocket(
            ws_server.url("/headers"), listeners=[otel], **OPTIONS
        ) as ws:
            message = await ws.recv()
    assert isinstance(message, statews.Text)
    assert "traceparent" not in message.data.lower()
    assert otel._attempts == {}
