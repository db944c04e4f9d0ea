"""A broker or database outage never ends a worker: it retries, is not-ready meanwhile,
and resumes. Two relays never both publish for long, and neither dies of the other."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from psycopg import sql
from tally import Note, Tally, partner_created
from test_consumer import consumer_for, send
from test_service_and_relay import note_to_envelope

from afflux_contracts import PARTNERS, Envelope, PartnerCreated, decode, encode
from afflux_infra.embedded import EmbeddedBroker, free_port
from afflux_infra.provision import ensure_topics
from afflux_infra.testing import SessionInfrastructure, eventually, read_envelopes
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.relay import RELAY_TRACKING_NAME, LockLost, OutboxRelay
from afflux_plumbing.store import Changes


def write_notes(tally: Tally, *names: str) -> None:
    offset = tally.stored_offset("seed", 0)
    tally.apply(Changes(aggregates=[Note(name) for name in names]),
                Position("seed", 0, 0 if offset is None else offset + 1), None)


def relayed_up_to(tally: Tally) -> int | None:
    position: int | None = tally.tracked_recorder.max_tracking_id(RELAY_TRACKING_NAME)
    return position


def last_notification(tally: Tally) -> int:
    return int(tally.tracked_recorder.max_notification_id() or 0)


@contextlib.asynccontextmanager
async def stopped_when_done(*tasks: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_relay_rides_out_a_broker_outage_longer_than_the_producer_timeout(
    tally: Tally, database_url: str,
) -> None:
    broker = EmbeddedBroker().start()
    await ensure_topics(broker.bootstrap_servers, replication=1)
    publisher = Recording(broker.bootstrap_servers, client_id="outage", request_timeout_ms=2000)
    await publisher.start()
    relay = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url)
    task = asyncio.create_task(relay.run())
    try:
        async with stopped_when_done(task):
            write_notes(tally, "ann")
            await eventually(lambda: relayed_up_to(tally) == 1)
            with broker_frozen(broker):  # it answers nothing, and keeps its log
                write_notes(tally, "bob")
                await eventually(lambda: task.done() or not relay.health.ok, timeout=30)
                await asyncio.sleep(3.0)  # well past the producer's timeout, several retries
                assert not task.done(), task.exception()
                assert not relay.health.ok
            await eventually(lambda: task.done() or (relayed_up_to(tally) == 2 and relay.health.ok),
                             timeout=60)
            assert not task.done(), task.exception()
        [acked] = publisher.acked[-1]  # bob, acknowledged once the broker answered again
        assert await name_at(broker.bootstrap_servers, acked) == "bob"
    finally:
        await publisher.stop()
        broker.stop()


@contextlib.contextmanager
def broker_frozen(broker: EmbeddedBroker) -> Iterator[None]:
    """A broker outage: the process is stopped (SIGSTOP) until the block ends."""
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)


class Recording(Publisher):
    """Keeps the broker's acknowledgement of every batch it published."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked: list[list[RecordMetadata]] = []

    async def publish_all(self, envelopes: Sequence[Envelope[Any]]) -> list[RecordMetadata]:
        self.acked.append(await super().publish_all(envelopes))
        return self.acked[-1]


async def name_at(bootstrap: str, acked: RecordMetadata) -> str:
    """The partner name in the record the broker acknowledged as ``acked``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([acked.topic_partition])
        consumer.seek(acked.topic_partition, acked.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
        return str(decode(record.value).payload.name)  # type: ignore[attr-defined]
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def database_outage(server_url: str, database_url: str) -> AsyncIterator[None]:
    """No connection to the test's database succeeds until the block ends."""
    name = urlsplit(database_url).path.lstrip("/")
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        await admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            yield
        finally:
            await admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                sql.Identifier(name)))


async def test_consumer_rides_out_a_database_outage_and_applies_what_arrived_meanwhile(
    infra: SessionInfrastructure, tally: Tally, database_url: str, topic: str, kafka_bootstrap: str,
    publisher: Publisher, raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    consumer = consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)
    task = asyncio.create_task(consumer.run())
    async with stopped_when_done(task):
        await eventually(lambda: task.done() or consumer.ready, timeout=30)
        async with database_outage(infra.server.database_url, database_url):
            await send(raw_producer, topic, encode(partner_created("ann")))
            await eventually(lambda: task.done() or not consumer.ready, timeout=60)
            await asyncio.sleep(2.0)
            assert not task.done(), task.exception()
            assert not consumer.ready
        await eventually(lambda: task.done() or (tally.stored_offset(topic, 0) == 0 and consumer.ready),
                         timeout=60)
        assert not task.done(), task.exception()
    assert tally.counts() == {"ann": 1}


async def terminate_lock_holder(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_locks "
                           "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()")


async def test_relay_whose_lock_connection_dies_steps_back_and_neither_relay_dies(
    tally: Tally, database_url: str, publisher: Publisher, kafka_bootstrap: str,
) -> None:
    first = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url,
                        batch_size=1, idle_delay=0.01, lock_poll=2.0)
    second = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url,
                         batch_size=1, idle_delay=0.01, lock_poll=0.05)
    tasks = [asyncio.create_task(first.run())]
    async with stopped_when_done(*tasks):
        await eventually(lambda: first.holds_lock)
        tasks.append(asyncio.create_task(second.run()))
        async with stopped_when_done(tasks[1]):  # the first one's block stops only the first
            write_notes(tally, *(f"n{i}" for i in range(40)))
            await eventually(lambda: (relayed_up_to(tally) or 0) >= 5)
            await terminate_lock_holder(database_url)  # the first relay's lock is gone ...
            await eventually(lambda: second.holds_lock)  # ... and the second takes over
            write_notes(tally, *(f"m{i}" for i in range(40)))
            await eventually(lambda: any(t.done() for t in tasks)
                             or relayed_up_to(tally) == last_notification(tally), timeout=60)
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
            assert not first.holds_lock  # it stepped back, and waits for the lock again
            published = await read_envelopes(kafka_bootstrap, PARTNERS.name, PARTNERS.partitions)
            # the session's broker: other tests' partners events are on the topic too
            names = {e.payload.name for _, e in published if isinstance(e.payload, PartnerCreated)}
            assert {f"n{i}" for i in range(40)} | {f"m{i}" for i in range(40)} <= names
            assert first.health.ok and second.health.ok


class Interleaving(Publisher):
    """Publishes a batch only after ``meanwhile`` ran: another relay's whole batch
    happens between this relay's read of the outbox and its position insert."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="interleaving")
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def publish_all(self, envelopes: Sequence[Envelope[Any]]) -> list[RecordMetadata]:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await super().publish_all(envelopes)


async def test_relay_that_finds_its_position_recorded_by_another_steps_back_instead_of_dying(
    tally: Tally, database_url: str, publisher: Publisher, kafka_bootstrap: str,
) -> None:
    slow_publisher = Interleaving(kafka_bootstrap)
    await slow_publisher.start()
    slow = OutboxRelay(tally, slow_publisher, note_to_envelope, database_url=database_url, lock_poll=0.05)
    fast = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url)
    write_notes(tally, "ann", "bob")
    slow_publisher.meanwhile = fast.relay_once
    try:
        with pytest.raises(LockLost, match="another relay already recorded position 2"):
            await slow.relay_once()
        task = asyncio.create_task(slow.run())  # and run() takes that in its stride
        async with stopped_when_done(task):
            write_notes(tally, "cy")
            slow_publisher.meanwhile = fast.relay_once
            await eventually(lambda: task.done() or relayed_up_to(tally) == 3)
            await asyncio.sleep(0.5)
            assert not task.done(), task.exception()
    finally:
        await slow_publisher.stop()


async def test_consumer_started_before_its_broker_waits_for_it_instead_of_dying(
    tally: Tally, publisher: Publisher, group_prefix: str,
) -> None:
    topic = "test.plumbing.late-broker"
    broker = EmbeddedBroker(port=free_port())  # not started yet: nothing listens there
    consumer = consumer_for(tally, topic, broker.bootstrap_servers, publisher, group_prefix)
    task = asyncio.create_task(consumer.run())
    try:
        async with stopped_when_done(task):
            await eventually(lambda: task.done() or not consumer.health.ok, timeout=30)
            assert not task.done(), task.exception()
            assert not consumer.ready
            broker.start()
            await ensure_topics(broker.bootstrap_servers, [(topic, 1)], replication=1)
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
            await producer.start()
            try:
                await send(producer, topic, encode(partner_created("ann")))
            finally:
                await producer.stop()
            await eventually(lambda: task.done() or tally.stored_offset(topic, 0) == 0, timeout=60)
            assert not task.done(), task.exception()
            assert consumer.ready
        assert tally.counts() == {"ann": 1}
    finally:
        broker.stop()
