"""Consumer lag per partition as a Prometheus gauge, from inside each consumer.

After each fetch a consumer knows the partition's high watermark (the broker's end
offset, sent with the records) and the next offset it will apply; the difference is
its lag. ``afflux lag`` gives the same figure from outside, from the positions in
PostgreSQL.
"""

from __future__ import annotations

from prometheus_client import Gauge

CONSUMER_LAG = Gauge(
    "afflux_consumer_lag", "Records on the log this consumer has not applied yet",
    ["group", "topic", "partition"],
)


def record_lag(group: str, topic: str, partition: int, highwater: int | None, next_offset: int) -> None:
    """Set the gauge (a partition whose high watermark is not known yet is left alone)."""
    if highwater is None:
        return
    CONSUMER_LAG.labels(group, topic, str(partition)).set(max(0, highwater - next_offset))
