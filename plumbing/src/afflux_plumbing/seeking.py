"""Where a consumer starts reading each partition it is assigned: its stored position + 1.

Kafka's committed offset is only a hint; the position that counts is the one
stored in PostgreSQL with the changes it caused. Seeking is also where a log that
is not the one those positions came from is first noticed (``logcheck``).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from afflux_plumbing.logcheck import REMEDY, PositionBeyondLogEnd, check_stored_position
from afflux_plumbing.outage import OUTAGES, Backoff, Health
from afflux_plumbing.store import TrackedApplication

log = logging.getLogger(__name__)


class SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seeks each newly assigned partition to its stored position, and remembers which
    partitions are sought (``assigned``) and the offset each may deliver next
    (``expected``), so the consumer can tell a rewind from normal progress."""

    def __init__(self, consumer: AIOKafkaConsumer, store: TrackedApplication, bootstrap_servers: str,
                 health: Health) -> None:
        """``health`` is the consumer's: a failing seek makes it not-ready."""
        self.consumer = consumer
        self.store = store
        self.bootstrap_servers = bootstrap_servers
        self.health = health
        self.error: Exception | None = None
        self.assigned: set[TopicPartition] = set()
        self.expected: dict[TopicPartition, int] = {}
        """Per sought partition, the lowest offset that may arrive next."""
        self.seeks: dict[TopicPartition, int] = {}
        """How often each partition was sought: a consumer that applied a batch while a
        rebalance re-sought its partition must not move ``expected`` past the new seek."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.assigned -= set(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek each partition to its stored position before any of its records is applied.

        aiokafka starts fetching a new assignment (from the group's committed offset)
        while this callback runs, so the partitions stay paused until they are sought,
        and each is marked ready the moment its seek is done: a record fetched from a
        sought partition is never mistaken for one fetched before the seek. A failure
        must never leave partitions silently unconsumed: an outage of the broker or the
        database is retried with backoff (not-ready meanwhile), anything else stops the
        consumer with the error."""
        partitions = sorted(assigned)
        self.consumer.pause(*partitions)
        backoff = Backoff(first=0.5)
        while True:
            try:
                await self._seek_to_stored_positions([tp for tp in partitions if tp not in self.assigned])
                self.consumer.resume(*partitions)
                self.health.recovered()
                return
            except OUTAGES as error:
                self.health.failed(f"seeking {partitions}", error)
                await backoff.wait()
            except Exception as error:
                self.error = error
                return

    async def _seek_to_stored_positions(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        beginnings = await self.consumer.beginning_offsets(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            stored = await asyncio.to_thread(self.store.stored_offset, tp.topic, tp.partition)
            if stored is None:
                self.consumer.seek(tp, beginnings[tp])
                self.expected[tp] = beginnings[tp]
            elif stored + 1 > ends[tp] and not await self._still_on_the_log(tp, stored):
                raise PositionBeyondLogEnd(
                    f"stored position {tp.topic}#{tp.partition}@{stored} of "
                    f"{self.store.name} is beyond the log end ({ends[tp]}): the log was "
                    f"reset or truncated. {REMEDY}"
                )
            else:
                check_stored_position(tp, stored, beginnings[tp], self.store.name)
                self.consumer.seek(tp, stored + 1)
                self.expected[tp] = stored + 1
            self.seeks[tp] = self.seeks.get(tp, 0) + 1
            self.assigned.add(tp)

    async def _still_on_the_log(self, tp: TopicPartition, offset: int) -> bool:
        """Whether the record at ``offset`` can still be read.

        The reported end offset is not enough on its own: some Kafka-API brokers (Tansu
        0.x) report the base offset of the last batch + 1 as the end, short of the records
        later in that batch. Reading the record itself settles it."""
        probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                 auto_offset_reset="none")
        await probe.start()
        try:
            probe.assign([tp])
            probe.seek(tp, offset)
            batch = await probe.getmany(tp, timeout_ms=10_000)
            return any(record.offset == offset for record in batch.get(tp, []))
        except OffsetOutOfRangeError:
            return False
        finally:
            await probe.stop()
