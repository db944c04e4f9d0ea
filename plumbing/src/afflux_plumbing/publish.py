"""The one way to put records on the Afflux log: wait for the broker's ack (acks=all).

No idempotent producer and no transactions (not every Kafka-API broker has
them): a resend can duplicate a record, and consumers drop it by event_id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
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
        PUBLISHED.labels(topic=topic).inc()
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
            PUBLISHED.labels(topic=envelope.payload.topic.name).inc()
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
