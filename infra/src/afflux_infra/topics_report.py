"""What the cluster holds of the Afflux log: each contract topic and its DLQ, with its
partitions, replicas and how many records it has (end offset minus start offset)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from afflux_infra.provision import afflux_topics
from afflux_plumbing.kafka_security import client_security


@dataclass(frozen=True)
class TopicState:
    """One topic as the cluster has it (``partitions`` 0: it does not exist)."""

    name: str
    wanted_partitions: int
    partitions: int
    replicas: int | None
    records: int

    @property
    def exists(self) -> bool:
        return self.partitions > 0

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith(".dlq")


async def topic_states(bootstrap_servers: str) -> list[TopicState]:
    """Every contract topic and DLQ, in contract order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                request_timeout_ms=10_000, **client_security())
    await consumer.start()
    try:
        await consumer.topics()
        wanted = afflux_topics()
        partitions = {name: sorted(consumer.partitions_for_topic(name) or ()) for name, _ in wanted}
        tps = [TopicPartition(name, p) for name, numbers in partitions.items() for p in numbers]
        ends = await consumer.end_offsets(tps) if tps else {}
        starts = await consumer.beginning_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    replicas = await _replicas(bootstrap_servers, [name for name, numbers in partitions.items() if numbers])
    return [
        TopicState(name, count, len(partitions[name]), replicas.get(name),
                   sum(ends[tp] - starts[tp] for tp in tps if tp.topic == name))
        for name, count in wanted
    ]


async def _replicas(bootstrap_servers: str, names: list[str]) -> dict[str, int]:
    """Replicas of each topic's first partition (unknown if the broker cannot describe it)."""
    if not names:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000,
                                **client_security())
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    except Exception:  # a Kafka-API broker without DescribeTopics: say "?" rather than fail
        return {}
    finally:
        await admin.close()
    found = {}
    for topic in described:
        partitions = topic.get("partitions") or []
        if partitions:
            found[str(topic["topic"])] = len(partitions[0].get("replicas") or [])
    return found
