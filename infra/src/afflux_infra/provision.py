"""Create the Afflux topics (and their dead-letter topics) on a Kafka-API broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from afflux_contracts import ALL_TOPICS

TOPIC_ALREADY_EXISTS = 36


def afflux_topics() -> list[tuple[str, int]]:
    """Every contract topic and its DLQ, with partition counts."""
    return [(name, t.partitions) for t in ALL_TOPICS for name in (t.name, t.dlq)]


async def ensure_topics(bootstrap_servers: str, topics: Iterable[tuple[str, int]] | None = None,
                        timeout: float = 30.0) -> None:
    """Create what is missing; topics keep events forever (the log is every replay's source)."""
    wanted = list(topics if topics is not None else afflux_topics())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=1,
                     topic_configs={"retention.ms": "-1"})
            for name, partitions in wanted if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, message in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {name}: {code} {message}")
    finally:
        await admin.close()
