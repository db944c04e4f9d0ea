"""Observability shared by every service: JSON log lines with the ids of the record
being applied, trace context carried through the log (and through an outbox, by
correlation id), and consumer lag per partition as a Prometheus gauge."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from tally import Tally, partner_created
from test_consumer import consumer_for, running

from afflux_contracts import encode, headers
from afflux_infra.testing import eventually
from afflux_plumbing.logs import JsonFormatter, log_context
from afflux_plumbing.publish import Publisher
from afflux_plumbing.tracing import TRACER, applying, trace_headers

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """The SDK with an in-memory exporter (a process has one global provider: it stays)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    yield EXPORTER


def json_line(message: str) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("attribution"))
    logger = logging.getLogger("test.observability")
    logger.addHandler(handler)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
    line: dict[str, object] = json.loads(stream.getvalue())
    return line


def test_a_log_line_is_json_with_the_service_and_the_ids_of_the_record_being_applied() -> None:
    with log_context("tid-42", "0190-event"):
        inside = json_line("applied")
    outside = json_line("idle")
    assert {k: inside[k] for k in ("level", "service", "message", "correlation_id", "event_id")} == {
        "level": "WARNING", "service": "attribution", "message": "applied",
        "correlation_id": "tid-42", "event_id": "0190-event"}
    assert (outside["correlation_id"], outside["event_id"]) == (None, None)


def test_a_consumer_span_continues_the_trace_in_the_record_headers_and_an_outbox_send_goes_on_with_it(
) -> None:
    envelope = partner_created("Traced", correlation_id="tx-1")
    with TRACER.start_as_current_span("GET /postback") as request:
        record_headers = headers(envelope) + trace_headers()
    assert any(key == "traceparent" for key, _ in record_headers)
    with applying(record_headers, envelope, "afflux.partners.v1"):
        pass
    relayed = dict(trace_headers("tx-1"))  # later, outside any span, as a relay publishes
    trace_id = request.get_span_context().trace_id
    applied = [s for s in EXPORTER.get_finished_spans() if s.name == "apply PartnerCreated"][-1]
    assert applied.context.trace_id == trace_id
    assert applied.parent is not None and applied.parent.span_id == request.get_span_context().span_id
    assert relayed["traceparent"].decode().split("-")[1] == format(trace_id, "032x")


async def test_consumer_spans_and_lag_gauge_over_the_real_broker(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher, group_prefix: str,
) -> None:
    with TRACER.start_as_current_span("POST /v1/partners") as request:
        for name in ("Ann", "Bo", "Cy"):
            envelope = partner_created(name)
            await publisher.send_raw(topic, encode(envelope), name.encode(),
                                     headers(envelope) + trace_headers())
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: tally.stored_offset(topic, 0) == 2)
        lag = REGISTRY.get_sample_value("afflux_consumer_lag",
                                        {"group": group_prefix, "topic": topic, "partition": "0"})
    assert lag == 0
    trace_id = request.get_span_context().trace_id
    traced = [s for s in EXPORTER.get_finished_spans()
              if s.name == "apply PartnerCreated" and s.context.trace_id == trace_id]
    assert len(traced) == 3
    assert {(s.attributes or {}).get("messaging.destination.name") for s in traced} == {topic}
