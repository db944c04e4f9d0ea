"""Prometheus metrics shared by every service (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("afflux_published_total", "Records acknowledged by the broker", ["topic"])
CONSUMED = Counter(
    "afflux_consumed_total", "Records a consumer finished with", ["topic", "outcome"]
)
DEAD_LETTERED = Counter("afflux_dead_lettered_total", "Records sent to a DLQ", ["topic"])
HELD_BEHIND = Counter(
    "afflux_held_behind_total", "Records sent to a DLQ behind an earlier dead letter of their key", ["topic"]
)
BLOCKED_KEYS = Gauge(
    "afflux_blocked_keys", "Keys whose records wait behind a dead letter, per consumer", ["group", "topic"]
)
APPLY_SECONDS = Histogram(
    "afflux_apply_seconds", "Time to apply one consumed record", ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
RELAYED = Counter("afflux_relayed_total", "Outbox events published by the relay")
RELAY_POSITION = Gauge("afflux_relay_position", "Last notification id the relay published")
HTTP_REQUESTS = Counter(
    "afflux_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram("afflux_http_request_seconds", "HTTP request latency", ["route"])
