"""One logging setup for every service: a JSON object per line on stderr.

Each line says when, how bad, which service and logger, the message, and, while a
record is being applied or a request served, the ``correlation_id`` and ``event_id``
it concerns (and the trace id when tracing is on), so one conversion can be followed
across services with a log search. ``AFFLUX_LOG_FORMAT=text`` gives plain lines for
a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

_correlation_id: ContextVar[str | None] = ContextVar("afflux_correlation_id", default=None)
_event_id: ContextVar[str | None] = ContextVar("afflux_event_id", default=None)


@contextmanager
def log_context(correlation_id: str | None, event_id: str | None) -> Iterator[None]:
    """Every line logged inside (this task or thread) carries these ids."""
    tokens = (_correlation_id.set(correlation_id), _event_id.set(event_id))
    try:
        yield
    finally:
        _correlation_id.reset(tokens[0])
        _event_id.reset(tokens[1])


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object (keys always present, null when unknown)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": _correlation_id.get(),
            "event_id": _event_id.get(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str) -> None:
    """Root logger: INFO, one JSON line per record on stderr (``AFFLUX_LOG_FORMAT=text``:
    plain lines); aiokafka's chatter at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("AFFLUX_LOG_FORMAT", "json").lower() == "text":
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
