from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from tally import Roster, Tally

from afflux_infra.provision import ensure_topics
from afflux_plumbing.eventstore import ensure_schema, postgres_env
from afflux_plumbing.publish import Publisher

T = TypeVar("T", bound=Tally)


def opened(store_type: type[T], database_url: str, schema: str) -> Iterator[T]:
    ensure_schema(database_url, schema)
    store = store_type(env=postgres_env(database_url, schema))
    yield store
    store.close()


@pytest.fixture
def tally(database_url: str) -> Iterator[Tally]:
    yield from opened(Tally, database_url, "tally")


@pytest.fixture
def roster(database_url: str) -> Iterator[Roster]:
    yield from opened(Roster, database_url, "roster")


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
