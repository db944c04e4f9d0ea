"""Position-tracked consumption: effectively-once application of a topic to a store.

The consumer's position lives in the service's PostgreSQL schema, written in
the same transaction as the changes a record caused; Kafka's committed offset
is only a hint for lag tools. On (re)assignment each partition is sought to
its stored position + 1, so a restart resumes exactly where the store is.
Records are applied one at a time per partition: a failure never lets a later
offset be recorded past an earlier one that was not applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from afflux_contracts import DecodeError, Envelope, Event, decode
from afflux_plumbing.metrics import APPLY_SECONDS, CONSUMED, DEAD_LETTERED
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.store import Changes, TrackedApplication

log = logging.getLogger(__name__)

Handler = Callable[[Envelope[Event]], Changes]
"""Turns one envelope into the changes it causes. Runs in a worker thread; may read views."""

TRANSIENT_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError)
MAX_ATTEMPTS = 3


class RetryLater(Exception):
    """A fact this record depends on has not arrived yet (e.g. an offer from another
    topic); the record is parked and retried, never skipped."""


class Unprocessable(Exception):
    """The record is well-formed but can never be applied; it goes to the DLQ."""


class PositionBeyondLogEnd(RuntimeError):
    """The stored position is past the end of the log: the log was reset or truncated.

    Consuming on would either skip records or re-read old ones into a store that
    already has them, so the consumer stops and an operator decides."""


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AIOKafkaConsumer, store: TrackedApplication) -> None:
        self.consumer = consumer
        self.store = store
        self.error: PositionBeyondLogEnd | None = None
        self.assigned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.assigned -= set(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = sorted(assigned)
        if not partitions:
            return
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            stored = await asyncio.to_thread(self.store.stored_offset, tp.topic, tp.partition)
            if stored is None:
                await self.consumer.seek_to_beginning(tp)
            elif stored + 1 > ends[tp]:
                self.error = PositionBeyondLogEnd(
                    f"stored position {tp.topic}#{tp.partition}@{stored} of "
                    f"{self.store.name} is beyond the log end ({ends[tp]}): the log was "
                    "reset or truncated; refusing to skip or re-read. Rebuild the store "
                    "or restore the log before restarting."
                )
                self.consumer.pause(*partitions)
                return
            else:
                self.consumer.seek(tp, stored + 1)
        self.assigned |= assigned


class TrackedConsumer:
    """Applies ``topics`` to ``store`` through ``handler``, effectively once."""

    def __init__(
        self,
        *,
        store: TrackedApplication,
        topics: Sequence[str],
        handler: Handler,
        bootstrap_servers: str,
        group_id: str,
        dead_letters: Publisher,
        retry_delay: float = 0.2,
    ) -> None:
        self.store = store
        self.topics = list(topics)
        self.handler = handler
        self.group_id = group_id
        self.dead_letters = dead_letters
        self.retry_delay = retry_delay
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
        )
        self._listener = _SeekToStoredPositions(self._consumer, store)

    @property
    def assigned(self) -> bool:
        return bool(self._listener.assigned)

    async def run(self) -> None:
        """Consume until cancelled; raise ``PositionBeyondLogEnd`` if the log is behind us."""
        await self._consumer.start()
        try:
            self._consumer.subscribe(self.topics, listener=self._listener)
            while True:
                batches = await self._consumer.getmany(timeout_ms=500)
                if self._listener.error is not None:
                    raise self._listener.error
                for records in batches.values():
                    for record in records:
                        await self._consume(record)
                if batches:
                    await self._commit_hint()
        finally:
            with suppress(KafkaError):
                await self._consumer.stop()

    async def _commit_hint(self) -> None:
        with suppress(CommitFailedError, KafkaError):
            await self._consumer.commit()

    async def _consume(self, record: ConsumerRecord[bytes, bytes]) -> None:
        position = Position(record.topic, record.partition, record.offset)
        started = time.perf_counter()
        try:
            envelope = decode(record.value)
        except DecodeError as error:
            await self._dead_letter(record, position, str(error))
            return
        if await asyncio.to_thread(self.store.has_applied, envelope.event_id):
            await asyncio.to_thread(self.store.record_position, position)
            CONSUMED.labels(topic=record.topic, outcome="duplicate").inc()
            return
        outcome = await self._apply_with_retries(record, position, envelope)
        CONSUMED.labels(topic=record.topic, outcome=outcome).inc()
        APPLY_SECONDS.labels(topic=record.topic).observe(time.perf_counter() - started)

    async def _apply_with_retries(
        self, record: ConsumerRecord[bytes, bytes], position: Position, envelope: Envelope[Event]
    ) -> str:
        failures = 0
        while True:
            try:
                changes = await asyncio.to_thread(self.handler, envelope)
                applied = await asyncio.to_thread(self.store.apply, changes, position, envelope.event_id)
                return "applied" if applied else "duplicate"
            except RetryLater as wait:
                log.info("parking %s at %s: %s", envelope.event_type, position, wait)
                await asyncio.sleep(min(5.0, self.retry_delay * 2 ** min(failures, 5)))
                failures += 1
            except Unprocessable as error:
                await self._dead_letter(record, position, f"unprocessable: {error}")
                return "dead_lettered"
            except IntegrityError as error:
                if await asyncio.to_thread(
                    self.store.tracked_recorder.has_tracking_id, position.tracking_name, position.offset
                ):
                    return "duplicate"
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    await self._dead_letter(record, position, f"constraint violated: {error}")
                    return "dead_lettered"
            except TRANSIENT_ERRORS as error:
                log.warning("database unavailable at %s, retrying: %s", position, error)
                await asyncio.sleep(1.0)
            except Exception as error:
                failures += 1
                log.exception("applying %s at %s failed (attempt %d)", envelope.event_type, position, failures)
                if failures >= MAX_ATTEMPTS:
                    await self._dead_letter(record, position, f"handler failed: {error!r}")
                    return "dead_lettered"
                await asyncio.sleep(self.retry_delay)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], position: Position, reason: str
    ) -> None:
        """Keep the original bytes on ``<topic>.dlq`` with the reason, then move past it."""
        log.error("dead-lettering %s: %s", position, reason)
        record_headers = [*record.headers, ("dlq.reason", reason.encode()),
                          ("dlq.source", str(position).encode()),
                          ("dlq.consumer", self.group_id.encode())]
        await self.dead_letters.send_raw(f"{record.topic}.dlq", record.value, record.key, record_headers)
        await asyncio.to_thread(self.store.record_position, position)
        DEAD_LETTERED.labels(topic=record.topic).inc()
        CONSUMED.labels(topic=record.topic, outcome="dead_lettered").inc()
