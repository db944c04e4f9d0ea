"""Create the Afflux topics (and their dead-letter topics) on a Kafka-API broker.

Topics get the replication the deployment asks for (``AFFLUX_REPLICATION_FACTOR``,
3 unless set; the launcher sets 1 for a broker it starts itself), with
``min.insync.replicas`` = min(2, replication): only then does a producer's
``acks=all`` mean that a record survives the loss of a broker. A cluster with fewer
brokers than asked is refused up front rather than given under-replicated topics.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from afflux_contracts import ALL_TOPICS
from afflux_plumbing.kafka_security import client_security

TOPIC_ALREADY_EXISTS = 36
REPLICATION_ENV = "AFFLUX_REPLICATION_FACTOR"
DEFAULT_REPLICATION_FACTOR = 3


class NotEnoughBrokers(RuntimeError):
    """The cluster cannot hold as many replicas as the topics are asked to have."""


def afflux_topics() -> list[tuple[str, int]]:
    """Every contract topic and its DLQ, with partition counts."""
    return [(name, t.partitions) for t in ALL_TOPICS for name in (t.name, t.dlq)]


def replication_factor() -> int:
    """The replication asked for in the environment (3 when unset: a real cluster)."""
    value = os.environ.get(REPLICATION_ENV, "").strip()
    factor = int(value) if value else DEFAULT_REPLICATION_FACTOR
    if factor < 1:
        raise ValueError(f"{REPLICATION_ENV} must be at least 1, not {factor}")
    return factor


def topic_configs(factor: int) -> dict[str, str]:
    """Keep events forever; an acknowledged write is on min(2, replicas) brokers."""
    return {"retention.ms": "-1", "min.insync.replicas": str(min(2, factor))}


async def ensure_topics(bootstrap_servers: str, topics: Iterable[tuple[str, int]] | None = None,
                        timeout: float = 30.0, replication: int | None = None) -> None:
    """Create what is missing, with ``replication`` (default: ``replication_factor()``)."""
    wanted = list(topics if topics is not None else afflux_topics())
    factor = replication if replication is not None else replication_factor()
    admin = await _started_admin(bootstrap_servers, timeout)
    try:
        await _check_brokers(admin, factor, bootstrap_servers)
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=factor,
                     topic_configs=topic_configs(factor))
            for name, partitions in wanted if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, message in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {name}: {code} {message}")
    finally:
        await admin.close()


async def _started_admin(bootstrap_servers: str, timeout: float) -> AIOKafkaAdminClient:
    """An admin client, waiting up to ``timeout`` for a broker that is still starting."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000,
                                **client_security())
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            return admin
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _check_brokers(admin: AIOKafkaAdminClient, factor: int, bootstrap_servers: str) -> None:
    brokers = len((await admin.describe_cluster())["brokers"])
    if brokers < factor:
        raise NotEnoughBrokers(
            f"{REPLICATION_ENV}={factor} but the cluster at {bootstrap_servers} has {brokers} "
            f"broker(s): add brokers, or set {REPLICATION_ENV} to at most {brokers} "
            "(1 only for a throwaway single-broker setup)"
        )
