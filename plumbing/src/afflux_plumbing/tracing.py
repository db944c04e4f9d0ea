"""OpenTelemetry traces across the log: from a tracking request to the balance.

Exported with the standard settings (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, OTLP over HTTP/protobuf, plus
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` ...). With
no endpoint set (or ``OTEL_SDK_DISABLED=true``) nothing is recorded or exported, and
the trace context a record carries is still passed on.

How the context travels:
- an HTTP request is a server span (FastAPI's own OpenTelemetry support starts it
  as soon as a tracer provider is set, continuing a caller's ``traceparent``);
- a record is published with the current context in its headers (W3C
  ``traceparent``/``tracestate``);
- a consumer applies each record in a span that continues the record's context;
- an outbox relay publishes later, outside that span: it takes the context of the
  last record applied with the same ``correlation_id`` in this process (a decision
  shares its conversion's correlation id), so the trace goes on through the outbox.
  When another instance of the service made the decision, or after a restart in
  between, the relayed record starts a trace of its own.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from afflux_contracts import Envelope

TRACER = trace.get_tracer("afflux")
RECENT_LIMIT = 10_000
"""Contexts remembered by correlation id, for relays (oldest forgotten first)."""

_recent: OrderedDict[str, Context] = OrderedDict()
_state = {"enabled": False}


def configure_tracing(service: str) -> bool:
    """Install the SDK with an OTLP exporter when the environment names an endpoint;
    return whether spans are now recorded."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not any(os.environ.get(name) for name in endpoints):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or f"afflux-{service}"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["enabled"] = True
    return True


def _remember(correlation_id: str | None, context: Context) -> None:
    if not correlation_id:
        return
    _recent[correlation_id] = context
    _recent.move_to_end(correlation_id)
    while len(_recent) > RECENT_LIMIT:
        _recent.popitem(last=False)


def trace_headers(correlation_id: str | None = None) -> list[tuple[str, bytes]]:
    """The current trace context as record headers; outside any span, the context of
    the last record applied with ``correlation_id`` (see the module's docstring)."""
    context: Context | None = None
    if not trace.get_current_span().get_span_context().is_valid and correlation_id:
        context = _recent.get(correlation_id)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(key, value.encode()) for key, value in carrier.items()]


def _from_headers(headers: Any) -> Context:
    carrier = {key: value.decode(errors="replace") for key, value in headers or ()
               if key in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


@contextmanager
def applying(headers: Any, envelope: Envelope[Any], topic: str) -> Iterator[None]:
    """A consumer span around applying one record, continuing the record's context.
    Its context is remembered under the envelope's correlation id and, for events of a
    click (whose envelopes tracking publishes without one), under the transaction_id,
    which is the correlation id of what attribution decides on it."""
    parent = _from_headers(headers)
    with TRACER.start_as_current_span(
        f"apply {envelope.event_type}", context=parent, kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                    "messaging.message.id": str(envelope.event_id),
                    "afflux.correlation_id": envelope.correlation_id or ""},
    ) as span:
        context = trace.set_span_in_context(span)
        _remember(envelope.correlation_id, context)
        _remember(getattr(envelope.payload, "transaction_id", None), context)
        yield


@contextmanager
def applying_run(records: Sequence[tuple[Any, Envelope[Any]]], topic: str) -> Iterator[None]:
    """``applying`` for a run handled in one call: one consumer span per record (each
    continuing its own record's context, all open while the run is handled), so every
    record's trace goes on through this service as if it had been applied alone. With
    tracing off, only the contexts the records carry are remembered for the relays."""
    if not _recording():
        for headers, envelope in records:
            if any(key == "traceparent" for key, _ in headers or ()):
                parent = _from_headers(headers)
                _remember(envelope.correlation_id, parent)
                _remember(getattr(envelope.payload, "transaction_id", None), parent)
        yield
        return
    with ExitStack() as spans:
        for headers, envelope in records:
            spans.enter_context(_span(headers, envelope, topic))
        yield


def _recording() -> bool:
    """Whether spans are recorded (configured here, or a provider installed by a test)."""
    return _state["enabled"] or not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@contextmanager
def _span(headers: Any, envelope: Envelope[Any], topic: str) -> Iterator[None]:
    """One record's consumer span, not made current (a run holds several at once)."""
    span = TRACER.start_span(
        f"apply {envelope.event_type}", context=_from_headers(headers), kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                    "messaging.message.id": str(envelope.event_id),
                    "afflux.correlation_id": envelope.correlation_id or ""})
    context = trace.set_span_in_context(span)
    _remember(envelope.correlation_id, context)
    _remember(getattr(envelope.payload, "transaction_id", None), context)
    try:
        yield
    finally:
        span.end()
