"""Position-tracked consumption: effectively-once application of a topic to a store.

The consumer's position lives in the service's PostgreSQL schema, written in
the same transaction as the changes a record caused; Kafka's committed offset
is only a hint for lag tools. On (re)assignment each partition is sought to
its stored position + 1, so a restart resumes exactly where the store is.

Records of a partition are applied in order. The records of one fetch go in runs
of up to ``RUN_LIMIT`` (a lone record is a run of one), each committed as one
transaction with its last position
(one commit per record would cap the consumer at the database's commit rate). A
run that fails in any way commits nothing, and its records are then applied one
at a time, each with its own retries, parking and dead-lettering: a failure never
lets a later offset be recorded past an earlier one that was not applied.

A dead-lettered record blocks its key (``blocking``): the key's later records go to the
DLQ behind it, in order, until its redriven copy is applied, and the runs are cut
around them, so a key's order is never broken and other keys never wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError
from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import IntegrityError

from afflux_contracts import ATTRIBUTION, TRACKING, DecodeError, Envelope, Event, decode
from afflux_plumbing.blocking import BEHIND, HEAD, Held, KeyBlocks, verdict
from afflux_plumbing.consumer_lag import record_lag
from afflux_plumbing.kafka_security import client_security
from afflux_plumbing.logcheck import (
    REMEDY,
    PositionBeyondLogEnd,
    check_record_offset,
    cluster_id,
    remember_cluster,
)
from afflux_plumbing.logs import log_context
from afflux_plumbing.metrics import APPLY_SECONDS, CONSUMED, DEAD_LETTERED, HELD_BEHIND
from afflux_plumbing.outage import DATABASE_OUTAGES, Health, retrying
from afflux_plumbing.parking import Parked, Parking
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import Handlers, Record, RetryLater, Unprocessable
from afflux_plumbing.seeking import SeekToStoredPositions
from afflux_plumbing.settings import GROUP_SESSION_MS
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tracing import applying_run

__all__ = ["RUN_LIMIT", "RetryLater", "TrackedConsumer", "Unprocessable"]

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = DATABASE_OUTAGES
MAX_ATTEMPTS = 3
RUN_LIMIT = 100
"""Most records committed in one transaction: bounds how long a run holds the event
store's insert lock and how much work a failed run repeats one record at a time."""

QUICK_TOPICS = frozenset({TRACKING.name, ATTRIBUTION.name})
"""The log hops on a conversion's way from postback to balance (tracking → attribution →
payouts): their consumers fetch with a short wait. Some Kafka-API brokers (Tansu) answer
a fetch only when its wait is over, not when a record arrives, so the wait is both the
hop's latency (up to it, about half on average) and how often an idle consumer asks."""
QUICK_FETCH_WAIT_MS = 25
FETCH_WAIT_MS = 250
"""Every other topic (partners, payouts, postbacks, notifications: what changes a few
times a second at most). Measured (docs/decisions/click-path.md): five idle consumers
cost 10% of a core in the client and 12-17% in the broker at 25 ms, 2% each at 250 ms;
a platform has about twenty consumers."""

T = TypeVar("T")
Decoded = tuple[ConsumerRecord[bytes, bytes], Envelope[Event]]


class TrackedConsumer:
    """Applies ``topics`` to ``store`` through its run handlers, effectively once."""

    def __init__(
        self,
        *,
        store: TrackedApplication,
        topics: Sequence[str],
        bootstrap_servers: str,
        group_id: str,
        dead_letters: Publisher,
        retry_delay: float = 0.2,
        fetch_max_wait_ms: int | None = None,
        retry_later_limit: float = 300.0,
        every_partition: bool = False,
        handlers: Handlers | None = None,
        session_timeout_ms: int = GROUP_SESSION_MS,
    ) -> None:
        """``handlers``: the run handlers (default: the store's ``@handles`` methods).
        ``every_partition``: read every partition of ``topics`` in this process, outside
        any consumer group (a replica of a view, such as tracking's routing view: each
        instance needs all of it, and a restarted instance must not wait for the group to
        expire its predecessor's membership). ``group_id`` then only names the consumer.
        ``fetch_max_wait_ms``: default ``QUICK_FETCH_WAIT_MS`` for a topic on a conversion's
        way to the balance (``QUICK_TOPICS``), else ``FETCH_WAIT_MS``."""
        self.store = store
        self.topics = list(topics)
        self.handlers = handlers if handlers is not None else store.handlers
        self.group_id = group_id
        self.dead_letters = dead_letters
        self.retry_delay = retry_delay
        self.bootstrap_servers = bootstrap_servers
        self.every_partition = every_partition
        self.health = Health()
        self.parking = Parking(limit=retry_later_limit, first_delay=retry_delay)
        self.blocks = KeyBlocks(store, group_id, self.topics)
        self._blocks_loaded_at_seeks = -1
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None if every_partition else group_id,
            client_id=group_id,
            enable_auto_commit=False,
            # Never rewind or skip on our own: every partition is sought to its stored
            # position, and an offset the log no longer has is a LogMismatch.
            auto_offset_reset="none",
            max_poll_records=500,
            fetch_max_wait_ms=fetch_max_wait_ms if fetch_max_wait_ms is not None else fetch_wait_ms(topics),
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(session_timeout_ms // 4, 100),
            **client_security(),
        )
        self._listener = SeekToStoredPositions(self._consumer, store, bootstrap_servers, self.health)

    def stored_offset(self, topic: str, partition: int) -> int | None:
        """The last offset of ``topic#partition`` this consumer has applied and committed,
        from memory (``None``: not sought yet, or nothing applied). Catching up with the
        log (``LogCatchUp``) reads it instead of asking the database on every poll.

        A partition the group gave another instance of the service is applied by that
        one to the same schema: its committed position is then read from the store."""
        tp = TopicPartition(topic, partition)
        if tp not in self._listener.assigned and not self.every_partition and self.assigned:
            return self.store.stored_offset(topic, partition)
        if tp not in self._listener.assigned or tp not in self._listener.expected:
            return None
        applied = self._listener.expected[tp] - 1
        return applied if applied >= 0 else None

    @property
    def positions_in_memory(self) -> bool:
        """Every partition is this process's (``every_partition``): ``stored_offset`` never
        asks the database, so a catch-up may read it on the event loop."""
        return self.every_partition

    @property
    def assigned(self) -> bool:
        return bool(self._listener.assigned)

    @property
    def ready(self) -> bool:
        """Assigned partitions, and the database and broker answering its last attempts."""
        return self.assigned and self.health.ok

    async def run(self) -> None:
        """Consume until cancelled; raise a ``LogMismatch`` if the log is not the one our
        positions came from (another cluster, reset, truncated, or rewound under us). A
        broker that is not there yet is waited for (not-ready meanwhile)."""
        await retrying(self._consumer.start, self.health, "connecting to the broker", (KafkaError,))
        try:
            seen = await retrying(lambda: cluster_id(self.bootstrap_servers), self.health, "cluster id")
            await self._db("checking the cluster id", remember_cluster, self.store, seen)
            if self.every_partition:
                await self._assign_every_partition()
            else:
                self._consumer.subscribe(self.topics, listener=self._listener)
            while True:
                self._resume_due()
                batches = await self._fetch()
                if self._listener.error is not None:
                    raise self._listener.error
                await self._load_blocks_if_reassigned()
                for tp, records in batches.items():
                    if tp not in self._listener.assigned:
                        # Fetched from the group's offset before the listener sought the
                        # stored position; that seek makes the consumer fetch them again.
                        continue
                    check_record_offset(tp, records[0].offset, self._listener.expected[tp], self.store.name)
                    seeks = self._listener.seeks[tp]
                    try:
                        await self._consume_in_runs(records)
                    except Parked as parked:
                        self._pause_at(tp, parked)
                        continue
                    if self._listener.seeks[tp] == seeks:  # else a rebalance re-sought it meanwhile
                        self._listener.expected[tp] = records[-1].offset + 1
                        record_lag(self.group_id, tp.topic, tp.partition, self._consumer.highwater(tp),
                                   self._listener.expected[tp])
                if batches and not self.every_partition:
                    await self._commit_hint()
        finally:
            with suppress(KafkaError):
                await self._consumer.stop()

    async def _assign_every_partition(self) -> None:
        """Assign all partitions the topics have now, sought to their stored positions
        (partitions added later are read from the next start)."""
        partitions = await retrying(self._partitions, self.health, "reading the topics' partitions",
                                    (KafkaError,))
        self._consumer.assign(partitions)
        await self._listener.on_partitions_assigned(set(partitions))

    async def _partitions(self) -> list[TopicPartition]:
        await self._consumer.topics()  # metadata of every topic, ours included
        found = [TopicPartition(topic, partition) for topic in self.topics
                 for partition in sorted(self._consumer.partitions_for_topic(topic) or ())]
        if not found:
            raise KafkaError(f"no partitions known yet for {self.topics}")
        return found

    async def _load_blocks_if_reassigned(self) -> None:
        """Read the blocked keys again after any (re)assignment: a partition now ours may
        have had keys blocked by the instance that had it before."""
        seeks = sum(self._listener.seeks.values())
        if seeks != self._blocks_loaded_at_seeks:
            await self._db("loading the blocked keys", self.blocks.load)
            self._blocks_loaded_at_seeks = seeks

    def _pause_at(self, tp: TopicPartition, parked: Parked) -> None:
        """Hold ``tp`` back at its parked record (re-read from the log when due)."""
        log.debug("%s", parked)
        self._consumer.pause(tp)
        self._consumer.seek(tp, parked.position.offset)
        self._listener.expected[tp] = parked.position.offset

    def _resume_due(self) -> None:
        for tp in self.parking.take_due():
            if tp in self._listener.assigned:
                self._consumer.resume(tp)

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """The next records; an offset out of range on a sought partition is a
        ``PositionBeyondLogEnd`` (with ``auto_offset_reset="none"`` aiokafka reports it
        rather than rewinding). Before its seek a partition has no position of ours yet,
        so errors about the group's offset for it are moot: the seek replaces it."""
        try:
            batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = (
                await self._consumer.getmany(timeout_ms=500))
            return batches
        except NoOffsetForPartitionError:
            return {}
        except OffsetOutOfRangeError as error:
            sought = self._listener.assigned
            out_of_range = {tp: offset for tp, offset in error.args[0].items() if tp in sought}
            if not out_of_range:
                return {}
            raise PositionBeyondLogEnd(
                f"{self.store.name} reads {out_of_range}, which the log no longer has: the log "
                f"was reset or truncated. {REMEDY}"
            ) from error

    async def _commit_hint(self) -> None:
        with suppress(CommitFailedError, KafkaError):
            await self._consumer.commit()

    async def _consume_in_runs(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply one partition's fetched records in order: decodable ones in runs, each
        undecodable one, and each of a blocked key, dead-lettered between the runs before
        and after it."""
        run: list[Decoded] = []
        for record in records:
            if self.blocks.may_block(record):
                await self._apply_run(run)
                run = []
                await self._consume_blocked(record)
                continue
            try:
                run.append((record, decode(record.value)))
            except DecodeError as error:
                await self._apply_run(run)
                run = []
                await self._dead_letter(record, _position(record), str(error))
                continue
            if len(run) == RUN_LIMIT:
                await self._apply_run(run)
                run = []
        await self._apply_run(run)

    async def _apply_run(self, run: Sequence[Decoded]) -> None:
        """Commit ``run`` as one transaction; if anything fails, apply its records one by one."""
        if not run:
            return
        started = time.perf_counter()
        items = [Record(envelope, _position(record)) for record, envelope in run]
        try:
            applied = await asyncio.to_thread(self._commit_run, run, items)
        except Exception as error:
            level = logging.INFO if isinstance(error, RetryLater) else logging.WARNING
            log.log(level, "a run of %d records from %s did not commit (%r); applying them one by one",
                    len(run), _position(run[0][0]), error)
            for record, envelope in run:
                if self.blocks.may_block(record):  # blocked by a record before it in the run
                    await self._consume_blocked(record)
                else:
                    await self._consume(record, envelope)
            return
        per_record = (time.perf_counter() - started) / len(run)
        topic = run[0][0].topic
        seconds = _apply_seconds(topic)
        for fresh in applied:
            _consumed(topic, "applied" if fresh else "duplicate").inc()
            seconds.observe(per_record)

    def _commit_run(self, run: Sequence[Decoded], items: Sequence[Record[Event]],
                    also: Sequence[Write] = ()) -> list[bool]:
        """The store's ``apply_run`` (in a worker thread), inside a span per record that
        continues each record's trace context."""
        first = run[0][1]
        with log_context(first.correlation_id, str(first.event_id) if len(run) == 1 else None), \
                applying_run([(record.headers, envelope) for record, envelope in run], run[0][0].topic):
            return self.store.apply_run(items, self.handlers, also)

    async def _consume_blocked(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A record of a key that may be blocked (``blocking``): the copy of the key's head
        letter is applied, settling it; any other record goes to the DLQ behind the head,
        unless it changes nothing here (no handler) or the key was freed meanwhile."""
        position = _position(record)
        assert record.key is not None
        held = await self._db(f"reading the held letters of {position}'s key", self.blocks.held,
                              record.topic, record.key)
        envelope, problem = _decoded(record)
        handled = envelope is None or type(envelope.payload) in self.handlers.types
        found = verdict(held, record.value, handled)
        if found == HEAD:
            await self._retry_head(record, envelope, problem, held)
            return
        if found == BEHIND:
            await self._dead_letter(record, position, f"behind {held[0].source}", "held_behind")
            HELD_BEHIND.labels(topic=record.topic).inc()
            return
        if not held:
            self.blocks.free(record.topic, record.key)
        if envelope is None:
            await self._dead_letter(record, position, problem)
        else:
            await self._consume(record, envelope)

    async def _retry_head(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Event] | None,
                          problem: str, held: list[Held]) -> None:
        """The redriven copy of a key's head letter: applied with its row settled in the same
        transaction (the key is free after its last one); failing again, it goes back to
        the DLQ and stays the head."""
        if envelope is None:
            await self._dead_letter(record, _position(record), problem)
            return
        outcome = await self._consume(record, envelope, settles=held[0])
        if outcome in ("applied", "duplicate") and len(held) == 1:
            assert record.key is not None
            self.blocks.free(record.topic, record.key)

    async def _consume(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Event],
                       settles: Held | None = None) -> str:
        """Apply one record in a transaction of its own, with retries, parking and the DLQ;
        ``settles``: the held letter it is a copy of, settled in the same transaction."""
        position = _position(record)
        started = time.perf_counter()
        also = [self.blocks.settling(settles)] if settles is not None else []
        if await self._db(f"checking {envelope.event_id} at {position}", self.store.has_applied,
                          envelope.event_id):
            await self._db(f"recording {position}", self.store.record_position, position, also)
            _consumed(record.topic, "duplicate").inc()
            return "duplicate"
        outcome = await self._apply_with_retries(record, position, envelope, also)
        self.parking.settled(position)
        _consumed(record.topic, outcome).inc()
        _apply_seconds(record.topic).observe(time.perf_counter() - started)
        return outcome

    async def _apply_with_retries(
        self, record: ConsumerRecord[bytes, bytes], position: Position, envelope: Envelope[Event],
        also: Sequence[Write] = (),
    ) -> str:
        failures = 0
        while True:
            try:
                applied = await asyncio.to_thread(self._apply_alone, record, envelope, position, also)
                self.health.recovered()
                return "applied" if applied else "duplicate"
            except RetryLater as wait:
                if not self.parking.expired(position):
                    log.info("parking %s at %s: %s", envelope.event_type, position, wait)
                    raise self.parking.park(position, f"{envelope.event_type}: {wait}") from wait
                await self._dead_letter(
                    record, position, f"retry later: still waiting after {self.parking.limit:g}s: {wait}")
                return "dead_lettered"
            except Unprocessable as error:
                await self._dead_letter(record, position, f"unprocessable: {error}")
                return "dead_lettered"
            except IntegrityError as error:
                if await self._db(f"checking {position}", self.store.tracked_recorder.has_tracking_id,
                                  position.tracking_name, position.offset):
                    return "duplicate"
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    await self._dead_letter(record, position, f"constraint violated: {error}")
                    return "dead_lettered"
            except TRANSIENT_ERRORS as error:
                self.health.failed(f"applying {position}", error)
                await asyncio.sleep(1.0)
            except Exception as error:
                failures += 1
                log.exception("applying %s at %s failed (attempt %d)",
                              envelope.event_type, position, failures)
                if failures >= MAX_ATTEMPTS:
                    await self._dead_letter(record, position, f"handler failed: {error!r}")
                    return "dead_lettered"
                await asyncio.sleep(self.retry_delay)

    def _apply_alone(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Event],
                     position: Position, also: Sequence[Write] = ()) -> bool:
        """One record as a run of one, through the same handlers as every run."""
        return self._commit_run([(record, envelope)], [Record(envelope, position)], also)[0]

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], position: Position, reason: str,
        outcome: str = "dead_lettered",
    ) -> None:
        """Keep the original bytes on ``<topic>.dlq`` with the reason, then move past it; a
        keyed record is held with the position, blocking its key (``blocking``)."""
        log.error("dead-lettering %s: %s", position, reason)
        record_headers = [*record.headers, ("dlq.reason", reason.encode()),
                          ("dlq.source", str(position).encode()),
                          ("dlq.consumer", self.group_id.encode())]
        dlq, value, key = f"{record.topic}.dlq", record.value, record.key
        landed = await retrying(lambda: self.dead_letters.send_raw(dlq, value, key, record_headers),
                                self.health, f"dead-lettering {position}")
        letter = f"{landed.topic}#{landed.partition}@{landed.offset}"
        held = [self.blocks.holding(record, letter, reason)] if record.key is not None else []
        await self._db(f"recording {position}", self.store.record_position, position, held)
        if record.key is not None:
            self.blocks.block(record.topic, record.key)
        DEAD_LETTERED.labels(topic=record.topic).inc()
        _consumed(record.topic, outcome).inc()


    async def _db(self, what: str, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` in a worker thread, retried with backoff while the database is away."""
        return await retrying(lambda: asyncio.to_thread(call, *args), self.health, what, DATABASE_OUTAGES)


def fetch_wait_ms(topics: Sequence[str]) -> int:
    """How long a consumer of ``topics`` lets the broker hold an empty fetch (``QUICK_TOPICS``)."""
    return QUICK_FETCH_WAIT_MS if QUICK_TOPICS.intersection(topics) else FETCH_WAIT_MS


@lru_cache(maxsize=256)
def _consumed(topic: str, outcome: str) -> Any:
    """The labelled counter child, looked up once: ``labels()`` costs microseconds, and a
    run of clicks counts hundreds of records."""
    return CONSUMED.labels(topic=topic, outcome=outcome)


@lru_cache(maxsize=64)
def _apply_seconds(topic: str) -> Any:
    return APPLY_SECONDS.labels(topic=topic)


def _decoded(record: ConsumerRecord[bytes, bytes]) -> tuple[Envelope[Event] | None, str]:
    """The record's envelope, or None and why it cannot be decoded."""
    try:
        return decode(record.value), ""
    except DecodeError as error:
        return None, str(error)


def _position(record: ConsumerRecord[bytes, bytes]) -> Position:
    return Position(record.topic, record.partition, record.offset)
