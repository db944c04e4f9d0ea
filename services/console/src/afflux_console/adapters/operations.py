"""What the operations page shows: consumer lag and dead letters, through the ``afflux``
CLI's own code (``afflux_infra.lag`` and ``afflux_infra.dlq``), so the console and
``afflux lag`` / ``afflux dlq`` can never disagree.

Lag is read from the positions every consumer stores in PostgreSQL (the tracking
tables of every service schema the console's database user can read: all of them when
the services share a database, as ``make run`` does) against the broker's end offsets.
A dead-letter topic is read only when its end offset says it holds something, so the
page costs one metadata round trip when there are none (the usual case).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from afflux_infra import dlq, lag
from afflux_infra.provision import afflux_topics


@dataclass(frozen=True)
class Letter:
    """One dead letter, as the page lists it."""

    topic: str
    """The topic it was read from (``afflux.x.v1``): where a redrive sends it back."""
    partition: int
    offset: int
    source: str
    reason: str
    event_type: str | None
    event_id: str | None


class Operations:
    def __init__(self, database_url: str, bootstrap_servers: str) -> None:
        self.database_url = database_url
        self.bootstrap = bootstrap_servers

    async def lag(self) -> list[lag.PartitionLag]:
        positions = await asyncio.to_thread(lag.stored_positions, self.database_url)
        ends = await lag.end_offsets(self.bootstrap, {topic for _, topic in positions})
        return lag.lag_report(positions, ends)

    async def dead_letters(self, limit: int = 200) -> list[Letter]:
        topics = [name for name, _ in afflux_topics() if name.endswith(dlq.DLQ_SUFFIX)]
        ends = await lag.end_offsets(self.bootstrap, topics)
        holding = sorted({tp.topic for tp, end in ends.items() if end > 0})
        letters: list[Letter] = []
        for name in holding:
            source = name.removesuffix(dlq.DLQ_SUFFIX)
            letters += [
                _letter(source, one) for one in await dlq.dead_letters(self.bootstrap, source, idle_polls=1)
            ]
        return letters[:limit]

    async def redrive(self, topic: str, partition: int, offset: int) -> tuple[str, int, int]:
        """Send the dead letter at ``partition``/``offset`` of ``topic``'s DLQ back to its
        source topic: where it landed."""
        letter = await dlq.dead_letter(self.bootstrap, topic, partition, offset)
        landed = await dlq.redrive(self.bootstrap, letter)
        return landed.topic, landed.partition, landed.offset


def _letter(topic: str, letter: dlq.DeadLetter) -> Letter:
    event_type = event_id = None
    try:
        document = json.loads(letter.record.value or b"")
        if isinstance(document, dict):
            event_type = str(document.get("event_type")) if document.get("event_type") else None
            event_id = str(document.get("event_id")) if document.get("event_id") else None
    except (ValueError, UnicodeDecodeError):
        pass
    return Letter(
        topic,
        letter.record.partition,
        letter.record.offset,
        letter.source,
        letter.reason,
        event_type,
        event_id,
    )
