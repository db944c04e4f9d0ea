"""Reading the log itself, the source of truth the cross-service tests check against."""

from __future__ import annotations

from afflux_contracts import Envelope, Event, Topic
from afflux_infra.testing import read_envelopes


async def envelopes_on(bootstrap_servers: str, topic: Topic) -> list[Envelope[Event]]:
    """Every envelope on ``topic`` from offset 0 to now, across its partitions (records
    that are not envelopes, which other tests put on a shared broker, are skipped)."""
    return [envelope for _, envelope in await read_envelopes(bootstrap_servers, topic.name, topic.partitions)]
