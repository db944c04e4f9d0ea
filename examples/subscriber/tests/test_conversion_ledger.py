"""The example subscriber applies each event once, with faststream's in-memory test
broker and against the real broker, and keeps what it applied across restarts."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaProducer
from faststream.kafka import TestKafkaBroker
from ledger_events import attributed, reversed_

from afflux_contracts import ATTRIBUTION, Envelope, Event, encode, headers
from conversion_ledger.app import Subscriber, build
from conversion_ledger.ledger import Earnings


async def _publish(subscriber: Subscriber, *envelopes: Envelope[Event]) -> None:
    for envelope in envelopes:
        await subscriber.broker.publish(encode(envelope), ATTRIBUTION.name, key=envelope.key.encode(),
                                        headers={k: v.decode() for k, v in headers(envelope)})


async def test_a_redelivered_event_is_applied_once(tmp_path: Path) -> None:
    subscriber = build("localhost:9092", str(tmp_path / "ledger.sqlite3"))
    first, second = attributed("p-1", "9.60"), attributed("p-1", "0.45")
    async with TestKafkaBroker(subscriber.broker):
        await _publish(subscriber, first, second, first)
    assert subscriber.ledger.earnings("p-1") == [Earnings("p-1", "USD", 2, Decimal("10.05"))]


async def test_a_reversal_takes_the_conversion_out_of_the_earnings(tmp_path: Path) -> None:
    subscriber = build("localhost:9092", str(tmp_path / "ledger.sqlite3"))
    kept, refunded = attributed("p-2", "5.00", "EUR"), attributed("p-2", "7.00", "EUR")
    async with TestKafkaBroker(subscriber.broker):
        await _publish(subscriber, kept, refunded, reversed_(refunded.payload))
    assert subscriber.ledger.earnings("p-2") == [Earnings("p-2", "EUR", 1, Decimal("5.00"))]


async def test_records_it_cannot_read_are_skipped_not_fatal(tmp_path: Path) -> None:
    subscriber = build("localhost:9092", str(tmp_path / "ledger.sqlite3"))
    good = attributed("p-3", "1.10")
    async with TestKafkaBroker(subscriber.broker):
        await subscriber.broker.publish(b"{not json", ATTRIBUTION.name)
        await subscriber.broker.publish(b'{"event_type": "AddedInAFutureVersion"}', ATTRIBUTION.name)
        await _publish(subscriber, good)
    assert subscriber.ledger.earnings("p-3") == [Earnings("p-3", "USD", 1, Decimal("1.10"))]


async def test_what_was_applied_survives_a_restart(tmp_path: Path) -> None:
    database = str(tmp_path / "ledger.sqlite3")
    event = attributed("p-4", "3.33")
    before = build("localhost:9092", database)
    async with TestKafkaBroker(before.broker):
        await _publish(before, event)
    before.ledger.close()
    after = build("localhost:9092", database)
    async with TestKafkaBroker(after.broker):
        await _publish(after, event)
    assert after.ledger.earnings("p-4") == [Earnings("p-4", "USD", 1, Decimal("3.33"))]


async def test_on_the_real_broker_every_conversion_counts_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Published the way Afflux publishes (acks=all, keyed by partner), one of them twice;
    read by a fresh consumer group from the start of the shared log. The last one comes
    after the duplicate on the same partition: once it counts, the duplicate was seen."""
    partner = f"p-{secrets.token_hex(4)}"
    events = [attributed(partner, "2.50") for _ in range(6)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in [*events[:5], events[2], events[5]]:
            await producer.send_and_wait(ATTRIBUTION.name, encode(envelope), key=envelope.key.encode(),
                                         headers=headers(envelope))
    finally:
        await producer.stop()
    subscriber = build(kafka_bootstrap, str(tmp_path / "ledger.sqlite3"), group_id=f"ledger-{partner}")
    await subscriber.broker.start()
    try:
        expected = [Earnings(partner, "USD", 6, Decimal("15.00"))]
        for _ in range(600):
            if subscriber.ledger.earnings(partner) == expected:
                break
            await asyncio.sleep(0.1)
        assert subscriber.ledger.earnings(partner) == expected
    finally:
        await subscriber.broker.stop()
