"""Reading the dead-letter topics (``<topic>.dlq``) to count what arrives there.

A dead letter keeps its original bytes, which may be exactly what could not be
decoded; so the DLQs are not consumed as events (the plumbing's consumer decodes, keeps
an inbox by event_id and dead-letters what it cannot decode: on a DLQ, that would be
wrong three ways). This reader only reads each record's ``dlq.reason`` header and its
timestamp. Like the plumbing's replica mode, it reads every partition outside any
consumer group from positions kept in PostgreSQL, and counts a batch in the same
transaction that moves its partition's position: a compare-and-set, so when several
instances of the service read the DLQs, each record is counted once
(``NotificationsStore.count_dead_letters``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from afflux_notifications.adapters.store import DeadLetterBatch
from afflux_notifications.domain.digests import reason_of
from afflux_plumbing.kafka_security import client_security
from afflux_plumbing.outage import DATABASE_OUTAGES, Health, retrying

log = logging.getLogger(__name__)

DISCOVER_EVERY = 60.0
"""Seconds between looks for DLQ partitions that did not exist at start."""


class DeadLetterCounts(Protocol):
    def dead_letter_positions(self) -> dict[tuple[str, int], int]: ...

    def count_dead_letters(self, batches: Sequence[DeadLetterBatch]) -> list[DeadLetterBatch]: ...


class DeadLetterReader:
    """Counts the records of ``topics`` (DLQ names) into ``store``."""

    def __init__(self, store: DeadLetterCounts, topics: Sequence[str], bootstrap_servers: str,
                 client_id: str, on_counted: Callable[[], None] = lambda: None) -> None:
        """``on_counted``: called after each batch counted (a digest may be due)."""
        self.store = store
        self.on_counted = on_counted
        self.topics = list(topics)
        self.health = Health()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                                          client_id=client_id, enable_auto_commit=False,
                                          auto_offset_reset="earliest", fetch_max_wait_ms=500,
                                          **client_security())
        self._assigned: set[TopicPartition] = set()

    async def run(self) -> None:
        await retrying(self._consumer.start, self.health, "connecting to the broker", (KafkaError,))
        try:
            discovered_at = float("-inf")
            while True:
                now = asyncio.get_running_loop().time()
                if now >= discovered_at + DISCOVER_EVERY:
                    await self._assign()
                    discovered_at = now
                if not self._assigned:
                    await asyncio.sleep(1.0)
                    continue
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
                counted = [batch for tp, records in batches.items() if records
                           for batch in [_batch(tp, records)]]
                if counted:
                    await self._count(counted)
                self.health.recovered()
        finally:
            with suppress(KafkaError):
                await self._consumer.stop()

    async def _count(self, counted: list[DeadLetterBatch]) -> None:
        stale = await retrying(lambda: asyncio.to_thread(self.store.count_dead_letters, counted), self.health,
                               "counting dead letters", DATABASE_OUTAGES)
        if stale:
            await self._seek_stored({TopicPartition(b.topic, b.partition) for b in stale})
        if len(stale) < len(counted):
            self.on_counted()

    async def _assign(self) -> None:
        """Every partition of the DLQs that exist, sought to its stored position."""
        with suppress(KafkaError):
            await self._consumer.topics()
        found = {TopicPartition(topic, partition) for topic in self.topics
                 for partition in self._consumer.partitions_for_topic(topic) or ()}
        if found and found != self._assigned:
            self._consumer.assign(sorted(found))
            self._assigned = found
            await self._seek_stored(found)

    async def _seek_stored(self, partitions: set[TopicPartition]) -> None:
        stored = await retrying(lambda: asyncio.to_thread(self.store.dead_letter_positions), self.health,
                                "reading dead-letter positions", DATABASE_OUTAGES)
        for tp in partitions:
            self._consumer.seek(tp, stored.get((tp.topic, tp.partition), 0))

    @property
    def ready(self) -> bool:
        return self.health.ok


def _batch(tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> DeadLetterBatch:
    reasons = tuple(reason_of(dict(record.headers).get("dlq.reason", b"").decode(errors="replace"))
                    for record in records)
    times = [_time(record) for record in records]
    return DeadLetterBatch(tp.topic, tp.partition, records[0].offset, records[-1].offset + 1, reasons,
                           min(times), max(times))


def _time(record: ConsumerRecord[bytes, bytes]) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp else datetime.now(UTC)
