"""``make bench``: consume + decode through faststream's Kafka subscriber, beside a bare
aiokafka loop over the same records in the same run (issue 17, item 3; the verdict and
its reasons are in ``docs/decisions/consumer-framework.md``).

| figure | baseline |
|---|---|
| faststream batch subscriber: ``batch=True``, ``max_records=500``, | bare aiokafka ``getmany`` loop, |
| our ``decode`` as its decoder, one manual commit per batch | ``afflux_contracts.decode`` per record |
| faststream one-message subscriber: the same decoder, a typed | into the fetch's run, one commit per fetch |
| handler, a commit every 500 records | |
| (each: records/s and CPU µs per record) | (records/s and CPU µs per record) |

Setup: ``AFFLUX_BENCH_FRAMEWORK_RECORDS`` (default 200,000) ClickRecorded envelopes, each
encoded with ``afflux_contracts.encode``, on a topic of ``PARTITIONS`` partitions of a
broker of the bench's own. A *slice* is one variant reading from the start of the topic
with a fresh consumer group (every record for the baseline and the batch subscriber; the
first ``AFFLUX_BENCH_FRAMEWORK_ONE_BY_ONE`` records, default 20,000, for the one-message
subscriber, which is an order of magnitude slower). The variants take turns slice by slice,
``AFFLUX_BENCH_FRAMEWORK_ROUNDS`` rounds (default 3) with the order rotated each round, so
the machine's other load falls on all of them; each slice prints the load average at its
end. The clock runs from the first fetched record to the last one handled (joining the
group is not counted); CPU is this process's ``time.process_time`` over the same span (the
broker is another process). Every variant runs with the same consumer settings
(``max_poll_records=500``, ``fetch_max_wait_ms=25``, no auto-commit). The baseline keeps
each fetch's decoded envelopes until the next fetch, as a consumer keeps the run it applies
(and as faststream keeps its batch): a loop that dropped each envelope as soon as it was
decoded would never wake the garbage collector, and make the framework look dearer than it is.

faststream is set up as a service would run it, and as fast as it goes: an ``async``
decoder (a plain function would be run in a worker thread per call), the per-message
"Received/Processed" lines at DEBUG (below the logger's level), and the handler's batch
annotated ``list[Envelope]``: a parametrised ``Envelope[Any]`` or ``Envelope[Event]``
makes faststream's dependency injection build every envelope again (about 6 µs and 3 µs
each).

The rule it informs: faststream may cost at most 10% of a consumer's throughput (judged by
CPU per record, see ``_summary``). The figures are printed either way; the bench fails only
if a variant delivers a wrong set of records (a duplicate, or a record missing from a full
read).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, RecordMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaMessage as KafkaStreamMessage

from afflux_contracts import ClickOutcome, ClickRecorded, Envelope, Event, decode, encode, utc_now
from afflux_infra.embedded import EmbeddedBroker
from afflux_infra.provision import ensure_topics
from afflux_infra.testing import SessionInfrastructure, broker_of_its_own

RECORDS = int(os.environ.get("AFFLUX_BENCH_FRAMEWORK_RECORDS", "200000"))
ONE_BY_ONE = min(RECORDS, int(os.environ.get("AFFLUX_BENCH_FRAMEWORK_ONE_BY_ONE", "20000")))
ROUNDS = int(os.environ.get("AFFLUX_BENCH_FRAMEWORK_ROUNDS", "3"))
PARTITIONS = 4
FETCH = 500
"""Records per fetch and per faststream batch: ``consume.py``'s ``max_poll_records``."""
BUDGET = 0.10
"""The most of a consumer's throughput the framework may cost (issue 17, item 3)."""
SLICE_TIMEOUT = 900.0
CONSUMER_SETTINGS: dict[str, Any] = {"auto_offset_reset": "earliest", "max_poll_records": FETCH,
                                     "fetch_max_wait_ms": 25}
"""What every variant's consumer is given (``consume.py``'s fetch wait; each slice's group
is new, so it reads from the start)."""

QUIET = logging.getLogger("afflux.bench.faststream")
"""faststream's logger here: its warnings and errors only (its per-message lines are at
DEBUG, its start, assignment and stop lines at INFO)."""
QUIET.setLevel(logging.WARNING)

pytestmark = pytest.mark.timeout(7200)

Position = tuple[int, int]
"""(partition, offset) of a record on the bench's one topic."""


@dataclass
class Clock:
    """Wall and CPU time from the first fetched record to the last one handled."""

    started: float | None = None
    cpu_started: float = 0.0
    stopped: float = 0.0
    cpu_stopped: float = 0.0

    def start(self) -> None:
        if self.started is None:
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.stopped, self.cpu_stopped = time.perf_counter(), time.process_time()


@dataclass
class Slice:
    """One variant's read of the topic."""

    variant: str
    seen: list[Position]
    clock: Clock
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def seconds(self) -> float:
        assert self.clock.started is not None, f"{self.variant} handled no record"
        return self.clock.stopped - self.clock.started

    @property
    def rate(self) -> float:
        return len(self.seen) / self.seconds

    @property
    def cpu_us(self) -> float:
        return (self.clock.cpu_stopped - self.clock.cpu_started) / len(self.seen) * 1e6


def _group() -> str:
    return f"bench-framework-{secrets.token_hex(4)}"


async def bare_getmany(bootstrap: str, topic: str, want: int) -> Slice:
    """The baseline: aiokafka's ``getmany``, ``decode`` per record into the fetch's list of
    envelopes (held until the next fetch, as a consumer holds the run it applies), a commit
    per fetch."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=_group(),
                                enable_auto_commit=False, **CONSUMER_SETTINGS)
    clock = Clock()
    seen: list[Position] = []
    await consumer.start()
    try:
        while len(seen) < want:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            clock.start()
            fetched = [record for records in batches.values() for record in records][:want - len(seen)]
            run = [(record, decode(record.value)) for record in fetched]  # consume.py's Decoded
            seen.extend((record.partition, record.offset) for record, _ in run)
            await consumer.commit()
        clock.stop()
    finally:
        await consumer.stop()
    return Slice("bare aiokafka getmany + decode", seen, clock)


async def faststream_batches(bootstrap: str, topic: str, want: int) -> Slice:
    """faststream's batch subscriber: our decode as its decoder, one manual commit per batch."""
    broker = KafkaBroker(bootstrap, logger=QUIET, log_level=logging.DEBUG)
    clock, done = Clock(), asyncio.Event()
    seen: list[Position] = []

    async def decode_batch(message: KafkaStreamMessage) -> list[Envelope[Event]]:
        clock.start()
        return [decode(record.value) for record in message.raw_message]

    async def on_batch(envelopes: list[Envelope], message: KafkaMessage) -> None:  # type: ignore[type-arg]
        records = message.raw_message[:want - len(seen)]
        seen.extend((record.partition, record.offset) for record in records)
        await message.ack()
        if len(seen) >= want and not done.is_set():
            clock.stop()
            done.set()

    broker.subscriber(topic, group_id=_group(), batch=True, max_records=FETCH, ack_policy=AckPolicy.MANUAL,
                      decoder=decode_batch, **CONSUMER_SETTINGS)(on_batch)
    return await _run(broker, done, Slice("faststream batch subscriber", seen, clock))


async def faststream_one_by_one(bootstrap: str, topic: str, want: int) -> Slice:
    """faststream's one-message subscriber: the same decoder, a commit every ``FETCH``."""
    broker = KafkaBroker(bootstrap, logger=QUIET, log_level=logging.DEBUG)
    clock, done = Clock(), asyncio.Event()
    seen: list[Position] = []

    async def decode_one(message: KafkaStreamMessage) -> Envelope[Event]:
        clock.start()
        return decode(cast(ConsumerRecord[bytes, bytes], message.raw_message).value)

    async def on_record(envelope: Envelope, message: KafkaMessage) -> None:  # type: ignore[type-arg]
        if len(seen) >= want:
            return
        record = cast(ConsumerRecord[bytes, bytes], message.raw_message)
        seen.append((record.partition, record.offset))
        if len(seen) % FETCH == 0 or len(seen) == want:
            await message.ack()
        if len(seen) == want:
            clock.stop()
            done.set()

    broker.subscriber(topic, group_id=_group(), ack_policy=AckPolicy.MANUAL, decoder=decode_one,
                      **CONSUMER_SETTINGS)(on_record)
    return await _run(broker, done, Slice("faststream one-message subscriber", seen, clock))


async def _run(broker: KafkaBroker, done: asyncio.Event, result: Slice) -> Slice:
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), SLICE_TIMEOUT)
    finally:
        await broker.stop()
    result.load = os.getloadavg()[0]
    return result


Variant = Callable[[str, str, int], Awaitable[Slice]]
VARIANTS: list[tuple[Variant, int]] = [(bare_getmany, RECORDS), (faststream_batches, RECORDS),
                                       (faststream_one_by_one, ONE_BY_ONE)]


async def produce(bootstrap: str, topic: str, count: int) -> set[Position]:
    """``count`` distinct ClickRecorded envelopes; the positions the broker acknowledged
    (some brokers report end offsets short of a batch's last records)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=1024 * 1024, enable_idempotence=False)
    await producer.start()
    clicked = utc_now()
    positions: set[Position] = set()
    try:
        pending = []
        for n in range(count):
            click = ClickRecorded(transaction_id=f"bench-tx-{n:08d}", offer_id=f"bench-offer-{n % 50}",
                                  partner_id=f"bench-partner-{n % 1000:04d}", clicked_at=clicked,
                                  outcome=ClickOutcome.VALID, redirect_url="https://shop.example/landing",
                                  sub1=f"s{n % 7}", ip="203.0.113.7", user_agent="Mozilla/5.0 (bench)")
            envelope = Envelope.wrap(click, producer="bench")
            pending.append(await producer.send(topic, encode(envelope), key=envelope.key.encode()))
            if len(pending) >= 20000:
                positions.update(_positions(await asyncio.gather(*pending)))
                pending = []
        positions.update(_positions(await asyncio.gather(*pending)))
    finally:
        await producer.stop()
    return positions


def _positions(acknowledged: list[RecordMetadata]) -> Iterator[Position]:
    return ((metadata.partition, metadata.offset) for metadata in acknowledged)


@pytest.fixture(scope="module")
def bootstrap(infra: SessionInfrastructure) -> Iterator[str]:
    with broker_of_its_own(infra) as servers:
        yield servers


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           check=False)
    return found.stdout.strip() or "unknown"


async def test_faststream_subscriber_throughput_beside_a_bare_aiokafka_loop(bootstrap: str) -> None:
    topic = f"afflux.bench.framework.{secrets.token_hex(3)}"
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    await ensure_topics(bootstrap, [(topic, PARTITIONS)],
                        replication=None if external else EmbeddedBroker.replication_factor)
    started = time.perf_counter()
    positions = await produce(bootstrap, topic, RECORDS)
    assert len(positions) == RECORDS
    print(f"\nconsumer framework bench ({time.strftime('%Y-%m-%d')}, commit {_commit()}, faststream "
          f"{version('faststream')}, aiokafka {version('aiokafka')}): {RECORDS:,} ClickRecorded on "
          f"{PARTITIONS} partitions, produced in {time.perf_counter() - started:.1f}s; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    slices: dict[str, list[Slice]] = {}
    for round_ in range(ROUNDS):
        shift = round_ % len(VARIANTS)
        for variant, want in VARIANTS[shift:] + VARIANTS[:shift]:
            result = await variant(bootstrap, topic, want)
            assert len(result.seen) == len(set(result.seen)) == want, f"{result.variant}: duplicates"
            if want == RECORDS:
                assert set(result.seen) == positions, f"{result.variant} missed records"
            slices.setdefault(result.variant, []).append(result)
            print(f"  round {round_ + 1}  {result.variant:<34} {result.rate:>9,.0f} records/s  "
                  f"{result.cpu_us:6.1f} µs CPU/record  ({len(result.seen):,} in {result.seconds:.2f}s, "
                  f"load {result.load:.2f})")
    _summary(slices)


def _summary(slices: dict[str, list[Slice]]) -> None:
    """Each variant's median over the rounds, and its median same-round ratios to the
    baseline (slices of one round ran closest together, under the most similar load).

    The verdict goes by CPU per record: a slice's wall-clock rate depends on what else the
    machine runs meanwhile, its CPU per record much less, and a consumer at its limit is
    bound by its CPU, so its throughput falls as 1 / (CPU per record)."""
    baseline, *others = slices
    base = slices[baseline]
    print(f"  baseline  {baseline:<34} {statistics.median(s.rate for s in base):>9,.0f} records/s  "
          f"{statistics.median(s.cpu_us for s in base):6.1f} µs CPU/record (median of {len(base)})")
    for name in others:
        mine = slices[name]
        ratio = statistics.median(s.rate / b.rate for s, b in zip(mine, base, strict=True))
        cpu = statistics.median(s.cpu_us / b.cpu_us for s, b in zip(mine, base, strict=True))
        cost = 1 - 1 / cpu
        print(f"  framework {name:<34} {statistics.median(s.rate for s in mine):>9,.0f} records/s  "
              f"{statistics.median(s.cpu_us for s in mine):6.1f} µs CPU/record: {ratio:.2f}x the baseline's "
              f"records/s, {cpu:.2f}x its CPU per record = {cost:.0%} of a CPU-bound consumer's "
              f"throughput ({'within' if cost <= BUDGET else 'OVER'} the {BUDGET:.0%} budget)")
