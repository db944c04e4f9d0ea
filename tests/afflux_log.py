"""Reading the log itself, the source of truth the cross-service tests check against."""

from __future__ import annotations

from afflux_contracts import Envelope, Event, Topic, decode
from afflux_infra.testing import read_topic


async def envelopes_on(bootstrap_servers: str, topic: Topic) -> list[Envelope[Event]]:
    """Every envelope on ``topic`` from offset 0 to now, across its partitions."""
    records = await read_topic(bootstrap_servers, topic.name, topic.partitions)
    return [decode(record.value) for record in records]
