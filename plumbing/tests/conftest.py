from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer

from afflux_infra.provision import ensure_topics
from afflux_plumbing.eventstore import ensure_schema, postgres_env
from afflux_plumbing.publish import Publisher

from tally import Tally


@pytest.fixture
def tally(database_url: str) -> Iterator[Tally]:
    ensure_schema(database_url, "tally")
    app = Tally(env=postgres_env(database_url, "tally"))
    yield app
    app.close()


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """A test topic of its own (and its DLQ), so offsets start at 0."""
    name = f"test.plumbing.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(name, 1), (f"{name}.dlq", 1)])
    return name


@pytest.fixture
async def raw_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[Publisher]:
    pub = Publisher(kafka_bootstrap, client_id="test")
    await pub.start()
    yield pub
    await pub.stop()


async def eventually(check, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``check`` (sync, run in a thread) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
