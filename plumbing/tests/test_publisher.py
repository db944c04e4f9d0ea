"""Publishing waits for the broker's acknowledgement."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from tally import partner_created

from afflux_contracts import PARTNERS, decode
from afflux_plumbing.publish import Publisher


async def test_publish_returns_after_the_broker_acknowledged_and_the_record_is_readable(
    publisher: Publisher, kafka_bootstrap: str
) -> None:
    envelope = partner_created("hal")
    metadata = await publisher.publish(envelope)
    assert metadata.topic == PARTNERS.name and metadata.offset >= 0

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(PARTNERS.name, metadata.partition)
        consumer.assign([tp])
        consumer.seek(tp, metadata.offset)
        records = (await consumer.getmany(tp, timeout_ms=5000))[tp]
    finally:
        await consumer.stop()
    assert decode(records[0].value) == envelope
    assert records[0].key == envelope.key.encode()
