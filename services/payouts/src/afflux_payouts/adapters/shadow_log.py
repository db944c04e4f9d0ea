"""Reading a bounded stretch of the log for a shadow fold (``application/shadows.py``'s
``LogReader``, on Kafka).

A replay reads each partition from a start offset up to a last offset (the live
projection's stored position, so that the shadow holds exactly what the live one
folded), outside any consumer group, and yields the records in fetch-sized
batches. ``known_by`` ends a partition at its first record appended after that
moment (the record timestamp), so the fold sees the log as it stood then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux_payouts.application.shadows import LogShorterThanPositions, Stretch
from afflux_plumbing.blocking import LogRecord

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class KafkaLog:
    """``LogReader`` on the brokers at ``bootstrap_servers``."""

    def __init__(self, bootstrap_servers: str, *, max_records: int = 5000,
                 idle_timeout: float = 30.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.max_records = max_records
        self.idle_timeout = idle_timeout

    async def read(self, stretches: Sequence[Stretch], *, known_by: datetime | None = None
                   ) -> AsyncIterator[tuple[tuple[str, int], Sequence[LogRecord]]]:
        """Each partition's records of its stretch, in offset order, batch by batch; a
        stretch ends early at its first record timestamped after ``known_by``."""
        wanted = {TopicPartition(s.topic, s.partition): s for s in stretches if s.size > 0}
        if not wanted:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="none", max_poll_records=self.max_records, fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        limit_ms = None if known_by is None else int(known_by.timestamp() * 1000)
        try:
            consumer.assign(list(wanted))
            for tp, stretch in wanted.items():
                consumer.seek(tp, stretch.first)
            loop = asyncio.get_running_loop()
            last_progress = loop.time()
            while wanted:
                batches = await consumer.getmany(*wanted, timeout_ms=500, max_records=self.max_records)
                if batches:
                    last_progress = loop.time()
                elif loop.time() - last_progress > self.idle_timeout:
                    raise LogShorterThanPositions(
                        "the log ends before the live projection's positions: "
                        + ", ".join(f"{tp.topic}#{tp.partition} up to {s.last}" for tp, s in wanted.items()))
                for tp, records in batches.items():
                    if tp not in wanted:
                        continue
                    kept, ended = _within(records, wanted[tp].last, limit_ms)
                    if ended:
                        del wanted[tp]
                        consumer.pause(tp)
                    if kept:
                        yield (tp.topic, tp.partition), kept
        finally:
            await consumer.stop()


def _within(records: Sequence[Record], last: int, limit_ms: int | None) -> tuple[list[Record], bool]:
    """The records up to offset ``last`` and timestamp ``limit_ms``; and whether the
    stretch ends in this batch."""
    kept: list[Record] = []
    for record in records:
        if record.offset > last or (limit_ms is not None and record.timestamp > limit_ms):
            return kept, True
        kept.append(record)
    return kept, bool(kept) and kept[-1].offset >= last
