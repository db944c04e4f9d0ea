"""The one way to put records on the Afflux log: wait for the broker's ack (acks=all).

No idempotent producer and no transactions (not every Kafka-API broker has
them): a resend can duplicate a record, and consumers drop it by event_id.

A record's partition is Kafka's default for its key (murmur2, as the Java client and
aiokafka compute it), so a click and the conversion that names its transaction_id meet
on one partition whoever produced them; ``murmur2`` here computes the same hash a word
at a time instead of a byte at a time (14 → 9 µs for a click's key, measured in
docs/decisions/click-path.md).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from afflux_contracts import Envelope, encode, headers
from afflux_plumbing.actors import current_actor
from afflux_plumbing.kafka_security import client_security
from afflux_plumbing.metrics import PUBLISHED
from afflux_plumbing.tracing import trace_headers


class Publisher:
    """An acks=all producer; ``publish`` returns only once the broker has the record."""

    def __init__(self, bootstrap_servers: str, client_id: str, request_timeout_ms: int = 15_000) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=0,
            partitioner=key_partition,
            request_timeout_ms=request_timeout_ms,
            **client_security(),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, envelope: Envelope[Any]) -> RecordMetadata:
        """Put one envelope on its topic, keyed by its partition key, and await the ack.
        Published while a request is served, it carries the request's actor (``actors``)."""
        envelope = _with_actor(envelope)
        topic = envelope.payload.topic.name
        metadata = await self._producer.send_and_wait(
            topic, value=encode(envelope), key=envelope.key.encode(), headers=_headers(envelope)
        )
        _published(topic).inc()
        return metadata

    async def publish_all(self, envelopes: Sequence[Envelope[Any]]) -> list[RecordMetadata]:
        """Send a batch in order and await every ack (per-key order is kept); each envelope
        carries the request's actor, if any (``actors``)."""
        envelopes = [_with_actor(envelope) for envelope in envelopes]
        futures = []
        for envelope in envelopes:
            futures.append(
                await self._producer.send(
                    envelope.payload.topic.name,
                    value=encode(envelope),
                    key=envelope.key.encode(),
                    headers=_headers(envelope),
                )
            )
        results = list(await asyncio.gather(*futures))
        for envelope in envelopes:
            _published(envelope.payload.topic.name).inc()
        return results

    async def send_raw(
        self, topic: str, value: bytes | None, key: bytes | None, record_headers: list[tuple[str, bytes]]
    ) -> RecordMetadata:
        """Put arbitrary bytes on a topic (the dead-letter path keeps the original bytes)."""
        return await self._producer.send_and_wait(topic, value=value, key=key, headers=record_headers)


def _with_actor(envelope: Envelope[Any]) -> Envelope[Any]:
    """``envelope``, with the current request's actor if it names none."""
    actor = current_actor() if envelope.actor is None else None
    return envelope if actor is None else envelope.model_copy(update={"actor": actor})


def _headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    """The contract's headers, plus the trace context (W3C ``traceparent``) when there is one."""
    return headers(envelope) + trace_headers(envelope.correlation_id)


@lru_cache(maxsize=64)
def _published(topic: str) -> Any:
    """The topic's labelled counter, looked up once (``labels()`` costs microseconds)."""
    return PUBLISHED.labels(topic=topic)


_WORDS = struct.Struct("<I")
_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's key hash (``org.apache.kafka.common.utils.Utils.murmur2``, aiokafka's
    ``partitioner.murmur2``): the same value, read a little-endian word at a time."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:whole]):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partition of a key (aiokafka's ``DefaultPartitioner``: a keyless
    record goes to any available partition)."""
    if key is None:
        return _DEFAULT_PARTITIONER(key, all_partitions, available)  # type: ignore[no-any-return]
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


_DEFAULT_PARTITIONER = DefaultPartitioner()
