"""Dead letters: read a ``<topic>.dlq`` and redrive a record to its source topic.

A dead letter keeps the original record's bytes, key and headers, plus ``dlq.*``
headers saying why and from where. Redriving re-publishes exactly those bytes (so
the same event_id) to the source topic: a consumer that never applied it applies it
once, and one that did (it was redriven before) drops it by event_id.

A keyed dead letter blocks its key in the consumer that sent it (``blocked``): the key's
later records wait behind it on the DLQ. ``redrive_key`` sends back every letter the
consumers hold for a key, in the key's order, one acknowledged before the next is sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata

from afflux_infra import blocked
from afflux_plumbing.kafka_security import client_security

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ, with what its ``dlq.*`` headers say."""

    record: ConsumerRecord[bytes, bytes]

    @property
    def headers(self) -> dict[str, bytes]:
        return dict(self.record.headers)

    @property
    def reason(self) -> str:
        return self.headers.get("dlq.reason", b"").decode(errors="replace")

    @property
    def source(self) -> str:
        """Where it was read: ``topic#partition@offset``."""
        return self.headers.get("dlq.source", b"").decode(errors="replace")

    @property
    def source_topic(self) -> str:
        if "#" in self.source:
            return self.source.rsplit("#", 1)[0]
        return str(self.record.topic).removesuffix(DLQ_SUFFIX)

    @property
    def position(self) -> str:
        return f"{self.record.topic}#{self.record.partition}@{self.record.offset}"


def dlq_topic(topic: str) -> str:
    """``afflux.tracking.v1`` and ``afflux.tracking.v1.dlq`` both name the latter."""
    return topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"


async def dead_letters(bootstrap_servers: str, topic: str, idle_polls: int = 2) -> list[DeadLetter]:
    """Every record on ``topic``'s DLQ, oldest first per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                **client_security())
    await consumer.start()
    try:
        name = dlq_topic(topic)
        if name not in await consumer.topics():  # also loads the cluster's metadata
            raise LookupError(f"no topic {name}")
        numbers = sorted(consumer.partitions_for_topic(name) or [])
        partitions = [TopicPartition(name, p) for p in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[DeadLetter] = []
        idle = 0
        while idle < idle_polls:
            batch = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            found += [DeadLetter(record) for records in batch.values() for record in records]
        return sorted(found, key=lambda d: (d.record.partition, d.record.offset))
    finally:
        await consumer.stop()


async def dead_letter(bootstrap_servers: str, topic: str, partition: int, offset: int) -> DeadLetter:
    """The dead letter at ``partition``/``offset`` of ``topic``'s DLQ."""
    for letter in await dead_letters(bootstrap_servers, topic):
        if (letter.record.partition, letter.record.offset) == (partition, offset):
            return letter
    raise LookupError(f"no record at {dlq_topic(topic)}#{partition}@{offset}")


async def redrive(bootstrap_servers: str, letter: DeadLetter) -> RecordMetadata:
    """Re-publish ``letter``'s original bytes, key and headers to its source topic (acks=all)."""
    [metadata] = await redrive_all(bootstrap_servers, [letter])
    return metadata


async def redrive_all(bootstrap_servers: str, letters: list[DeadLetter]) -> list[RecordMetadata]:
    """Re-publish ``letters`` in order, each acknowledged before the next is sent (so a
    key's letters land on its partition in that order)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=False,
                                **client_security())
    await producer.start()
    try:
        landed: list[RecordMetadata] = []
        for letter in letters:
            headers = [(k, v) for k, v in letter.record.headers if not k.startswith("dlq.")]
            headers.append(("dlq.redriven_from", letter.position.encode()))
            landed.append(await producer.send_and_wait(
                letter.source_topic, value=letter.record.value, key=letter.record.key, headers=headers))
        return landed
    finally:
        await producer.stop()


async def held_for_key(bootstrap_servers: str, database_url: str, topic: str, key: bytes) -> list[DeadLetter]:
    """The letters the consumers hold for ``key`` of ``topic``, one per record, in the key's
    order; a LookupError if none is held or one of them is no longer on the DLQ (then
    nothing may be sent: the ones after it would overtake it)."""
    # The database read on a worker thread: the console awaits this inside its event loop.
    held = blocked.in_key_order(await asyncio.to_thread(
        blocked.held_letters, database_url, topic.removesuffix(DLQ_SUFFIX), key))
    if not held:
        raise LookupError(f"no consumer holds a dead letter of key {key.decode(errors='replace')!r} "
                          f"of {topic.removesuffix(DLQ_SUFFIX)}")
    on_the_dlq = {letter.position: letter for letter in await dead_letters(bootstrap_servers, topic)}
    missing = [h.dead_letter for h in held if h.dead_letter not in on_the_dlq]
    if missing:
        raise LookupError(f"held letters no longer on the DLQ: {', '.join(missing)}")
    return [on_the_dlq[h.dead_letter] for h in held]
