"""The tracked consumer against a real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from conftest import eventually
from tally import Tally, partner_created

from afflux_contracts import encode
from afflux_plumbing.consume import PositionBeyondLogEnd, TrackedConsumer
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


def consumer_for(tally: Tally, topic: str, bootstrap: str, publisher: Publisher, group: str) -> TrackedConsumer:
    return TrackedConsumer(store=tally, topics=[topic], handler=tally.handle,
                           bootstrap_servers=bootstrap, group_id=group, dead_letters=publisher)


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
    await send(raw_producer, topic, b"{not json")
    await send(raw_producer, topic, b'{"event_type": "PartnerCreated", "payload": {}}')
    await send(raw_producer, topic, encode(partner_created("fay")))
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
