"""The tracked consumer against a real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from psycopg import sql
from tally import Tally, partner_created

from afflux_contracts import encode
from afflux_infra.provision import ensure_topics
from afflux_infra.testing import eventually
from afflux_plumbing.consume import PositionBeyondLogEnd, TrackedConsumer
from afflux_plumbing.eventstore import ensure_schema, postgres_env
from afflux_plumbing.logcheck import (
    ClusterChanged,
    LogMismatch,
    LogStartPastPosition,
    RecordBehindPosition,
    check_stored_position,
    cluster_id,
    remember_cluster,
)
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.store import Changes


@contextlib.asynccontextmanager
async def running(consumer: TrackedConsumer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def consumer_for(
    tally: Tally, topic: str, bootstrap: str, publisher: Publisher, group: str
) -> TrackedConsumer:
    return TrackedConsumer(store=tally, topics=[topic],
                           bootstrap_servers=bootstrap, group_id=group, dead_letters=publisher)


def consumed(topic: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("afflux_consumed_total", {"topic": topic, "outcome": outcome}) or 0.0


async def send(producer: AIOKafkaProducer, topic: str, value: bytes | None, key: bytes = b"k") -> int:
    metadata = await producer.send_and_wait(topic, value=value, key=key)
    return int(metadata.offset)


async def test_position_commits_with_the_projection_and_restart_resumes_from_it(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    for name in ("ann", "bob"):
        await send(raw_producer, topic, encode(partner_created(name)))
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-a")):
        await eventually(lambda: tally.stored_offset(topic, 0) == 1)
    assert tally.counts() == {"ann": 1, "bob": 1}
    assert sorted(tally.note_texts()) == ["ann", "bob"]

    await send(raw_producer, topic, encode(partner_created("cy")))
    # A new group has no committed offsets: only the stored position says where to resume.
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-b")):
        await eventually(lambda: tally.stored_offset(topic, 0) == 2)
    assert tally.counts() == {"ann": 1, "bob": 1, "cy": 1}
    # Resumed means resumed: the earlier records were not even read again.
    assert consumed(topic, "duplicate") == 0
    assert consumed(topic, "applied") == 3


async def test_event_id_already_applied_under_another_offset_is_ignored(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    envelope = encode(partner_created("dee"))
    for _ in range(3):  # a relay that crashed before recording its position re-sends
        await send(raw_producer, topic, envelope)
    await send(raw_producer, topic, encode(partner_created("eve")))
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: tally.stored_offset(topic, 0) == 3)
    assert tally.counts() == {"dee": 1, "eve": 1}
    assert sorted(tally.note_texts()) == ["dee", "eve"]


async def test_undecodable_record_goes_to_the_dlq_with_its_reason_and_consumption_goes_on(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    # Each of its own key: a dead letter holds back its key's later records (test_blocking).
    await send(raw_producer, topic, b"{not json", key=b"k1")
    await send(raw_producer, topic, b'{"event_type": "PartnerCreated", "payload": {}}', key=b"k2")
    await send(raw_producer, topic, encode(partner_created("fay")), key=b"k3")
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: tally.stored_offset(topic, 0) == 2)
    assert tally.counts() == {"fay": 1}

    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)
    await dlq.start()
    try:
        records = (await dlq.getmany(timeout_ms=5000)).get(TopicPartition(f"{topic}.dlq", 0), [])
        while len(records) < 2:
            more = await dlq.getmany(timeout_ms=5000)
            assert more, "dead letters did not arrive"
            records += next(iter(more.values()))
    finally:
        await dlq.stop()
    assert records[0].value == b"{not json"
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in records]
    assert "not JSON" in reasons[0]
    assert "violates its schema" in reasons[1]
    assert dict(records[1].headers)["dlq.source"] == f"{topic}#0@1".encode()


async def test_deeply_nested_json_is_dead_lettered_instead_of_crashing_the_consumer(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    await send(raw_producer, topic, b"[" * 100_000 + b"]" * 100_000, key=b"nested")
    await send(raw_producer, topic, encode(partner_created("hal")))
    consumer = consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)
    async with running(consumer) as task:
        await eventually(lambda: task.done() or tally.stored_offset(topic, 0) == 1)
        assert not task.done(), task.exception()
    assert tally.counts() == {"hal": 1}
    assert consumed(topic, "dead_lettered") == 1


async def test_stored_position_beyond_the_log_end_stops_the_consumer_with_a_clear_error(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    await send(raw_producer, topic, encode(partner_created("gus")))
    # The store says it applied offset 41 of a partition whose log holds one record.
    tally.apply(Changes(), Position(topic, 0, 41), event_id=None)
    consumer = consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)
    with pytest.raises(PositionBeyondLogEnd, match=r"beyond the log end"):
        await asyncio.wait_for(consumer.run(), timeout=30)
    assert tally.counts() == {}


async def test_position_at_the_end_of_a_multi_record_batch_resumes_instead_of_stopping(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    # One produce request, one batch of five records: some brokers report the end of
    # this log as 1 (the batch's base offset + 1) although offsets 0..4 are readable.
    sent = [await raw_producer.send(topic, encode(partner_created(f"b{n}")), key=b"k") for n in range(5)]
    for delivery in sent:
        await delivery
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-a")):
        await eventually(lambda: tally.stored_offset(topic, 0) == 4)
    restarted = consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-b")
    async with running(restarted) as task:
        await eventually(lambda: task.done() or restarted.assigned)
        await send(raw_producer, topic, encode(partner_created("after")))
        await eventually(lambda: task.done() or tally.stored_offset(topic, 0) == 5)
        assert not task.done(), task.exception()
    assert sum(tally.counts().values()) == 6


class SlowToLookUp(Tally):
    """A store whose stored position of partition 1 takes a while to read, as a slow
    database or a probe of the log would: partition 0 is sought long before 1 is."""

    def stored_offset(self, topic: str, partition: int) -> int | None:
        if partition == 1:
            time.sleep(2.0)
        return super().stored_offset(topic, partition)


def stored(store: Tally, topic: str) -> tuple[int | None, int | None]:
    """Both partitions' stored positions, read without the slow lookup."""
    return Tally.stored_offset(store, topic, 0), Tally.stored_offset(store, topic, 1)


async def test_partition_sought_early_is_consumed_while_others_are_still_being_sought(
    database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    topic = f"test.plumbing.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(topic, 2), (f"{topic}.dlq", 2)])
    ensure_schema(database_url, "tally")
    store = SlowToLookUp(env=postgres_env(database_url, "tally"))
    try:
        for name, partition in (("p0-a", 0), ("p0-b", 0), ("p1-a", 1)):
            await raw_producer.send_and_wait(topic, encode(partner_created(name)), partition=partition)
        async with running(consumer_for(store, topic, kafka_bootstrap, publisher, f"{group_prefix}-a")):
            await eventually(lambda: stored(store, topic) == (1, 0), timeout=30)

        for name in ("p0-c", "p0-d", "p0-e"):
            await raw_producer.send_and_wait(topic, encode(partner_created(name)), partition=0)
        # A new group: the records after the stored position of partition 0 are fetched as
        # soon as it is sought, while partition 1's position is still being read.
        async with running(consumer_for(store, topic, kafka_bootstrap, publisher, f"{group_prefix}-b")):
            await eventually(lambda: stored(store, topic) == (4, 0), timeout=30)
        assert store.counts() == {name: 1 for name in ("p0-a", "p0-b", "p0-c", "p0-d", "p0-e", "p1-a")}
    finally:
        store.close()


async def test_consumer_that_finds_another_cluster_than_its_positions_came_from_stops(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    await send(raw_producer, topic, encode(partner_created("ida")))
    async with running(consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-a")):
        await eventually(lambda: tally.stored_offset(topic, 0) == 0)
    # The cluster this store consumed from is remembered beside its positions ...
    remember_cluster(tally, await cluster_id(kafka_bootstrap))
    with pytest.raises(ClusterChanged):
        remember_cluster(tally, "another-cluster")
    # ... and a store whose positions came from another cluster refuses this one.
    tally.query(sql.SQL("UPDATE {} SET cluster_id = 'old-cluster' RETURNING 1").format(
        tally.table("log_cluster")))
    await send(raw_producer, topic, encode(partner_created("jo")))
    consumer = consumer_for(tally, topic, kafka_bootstrap, publisher, f"{group_prefix}-b")
    with pytest.raises(LogMismatch, match="old-cluster"):
        await asyncio.wait_for(consumer.run(), timeout=30)
    assert tally.counts() == {"ida": 1}


async def test_records_behind_the_stored_position_after_a_rewind_stop_the_consumer(
    tally: Tally, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    for name in ("kim", "lou", "max"):
        await send(raw_producer, topic, encode(partner_created(name)))
    consumer = consumer_for(tally, topic, kafka_bootstrap, publisher, group_prefix)
    task = asyncio.create_task(consumer.run())
    await eventually(lambda: tally.stored_offset(topic, 0) == 2)
    # What a client does on its own after a log reset when allowed to: rewind.
    consumer._consumer.seek(TopicPartition(topic, 0), 0)
    with pytest.raises(RecordBehindPosition):
        await asyncio.wait_for(task, timeout=30)
    assert consumed(topic, "duplicate") == 0
    assert tally.counts() == {"kim": 1, "lou": 1, "max": 1}


def test_log_starting_past_the_next_record_needed_is_a_log_mismatch() -> None:
    tp = TopicPartition("afflux.tracking.v1", 0)
    check_stored_position(tp, stored=9, beginning=10, store="Tally")  # nothing we need is gone
    with pytest.raises(LogStartPastPosition, match=r"now starts at 11, but Tally needs 10"):
        check_stored_position(tp, stored=9, beginning=11, store="Tally")
    assert issubclass(PositionBeyondLogEnd, LogMismatch)


async def test_replica_consumers_each_read_every_partition_side_by_side(
    tally: Tally, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    """``every_partition``: no group, so two replicas under the same name do not split the
    partitions between them (each keeps a whole view, as every tracking instance must)."""
    topic = f"test.plumbing.replica.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(topic, 3), (f"{topic}.dlq", 1)])
    names = ("ann", "bob", "cy", "dee", "eve", "fay")
    for name in names:
        await send(raw_producer, topic, encode(partner_created(name)), key=name.encode())

    def replica(store: Tally) -> TrackedConsumer:
        return TrackedConsumer(store=store, topics=[topic],
                               bootstrap_servers=kafka_bootstrap, group_id=f"{group_prefix}-replica",
                               dead_letters=publisher, every_partition=True)

    ensure_schema(database_url, "tally_replica")
    other = Tally(env=postgres_env(database_url, "tally_replica"))
    try:
        async with running(replica(tally)), running(replica(other)):
            await eventually(lambda: sum(tally.counts().values()) == sum(other.counts().values()) == 6)
        assert tally.counts() == other.counts() == dict.fromkeys(names, 1)
    finally:
        other.close()
