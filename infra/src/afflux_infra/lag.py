"""Consumer lag from the only positions that count: the ones in PostgreSQL.

Every Afflux consumer stores its position (the last offset it applied, per topic and
partition) in its service's schema, in eventsourcing's ``<store>_tracking`` table
(``application_name`` = ``topic#partition``, ``notification_id`` = offset), in the
same transaction as the changes. Kafka's committed group offsets are only a hint,
so lag here is the broker's end offset minus the stored position + 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql

from afflux_plumbing.kafka_security import client_security

FIND_TRACKING_TABLES = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_name LIKE '%\\_tracking' AND table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY table_schema, table_name
"""


@dataclass(frozen=True)
class PartitionLag:
    """How far one consumer (a service's store) is behind on one partition."""

    consumer: str
    """``schema.store``: the service schema and the store whose tracking table holds it."""
    topic: str
    partition: int
    applied: int | None
    """Last offset applied (None: nothing yet)."""
    end: int
    """The broker's end offset (the next offset to be written)."""

    @property
    def lag(self) -> int:
        """Records on the log not applied yet (never negative: some brokers report an end
        offset a little short of the last batch)."""
        return max(0, self.end - (0 if self.applied is None else self.applied + 1))


StoredPositions = dict[tuple[str, str], dict[int, int]]
"""(consumer, topic) -> partition -> last applied offset."""


def stored_positions(database_url: str) -> StoredPositions:
    """Every consumer position in the database, from every service schema."""
    found: StoredPositions = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema, table in conn.execute(FIND_TRACKING_TABLES).fetchall():
            rows = conn.execute(sql.SQL(
                "SELECT application_name, max(notification_id) FROM {} GROUP BY application_name"
            ).format(sql.Identifier(schema, table))).fetchall()
            consumer = f"{schema}.{table.removesuffix('_tracking')}"
            for name, offset in rows:
                topic, _, partition = str(name).rpartition("#")
                if topic and partition.isdigit() and offset is not None:
                    found.setdefault((consumer, topic), {})[int(partition)] = int(offset)
    return found


async def end_offsets(bootstrap_servers: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics`` that exists."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                request_timeout_ms=10_000, **client_security())
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for topic in sorted(set(topics))
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return {}
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


def lag_report(positions: StoredPositions, ends: dict[TopicPartition, int]) -> list[PartitionLag]:
    """One row per (consumer, topic, partition): every partition of a topic the consumer
    reads, including those it has applied nothing from yet."""
    rows = []
    for (consumer, topic), applied in sorted(positions.items()):
        partitions = sorted({tp.partition for tp in ends if tp.topic == topic} | set(applied))
        for partition in partitions:
            end = ends.get(TopicPartition(topic, partition), 0)
            rows.append(PartitionLag(consumer, topic, partition, applied.get(partition), end))
    return rows


async def measure(database_url: str, bootstrap_servers: str) -> list[PartitionLag]:
    """Positions from PostgreSQL, end offsets from the broker, joined."""
    positions = stored_positions(database_url)
    ends = await end_offsets(bootstrap_servers, {topic for _, topic in positions})
    return lag_report(positions, ends)
