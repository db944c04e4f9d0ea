"""``make bench``: replaying the payouts projection from the log, beside a baseline from the
same run on the same broker.

| figure | baseline |
|---|---|
| replay rate: records folded/s into a scratch schema | bare consume + decode of the same |
| (``fold_log``: the service's own consumers, runs of ``REPLAY_RUN_LIMIT``) | topic stretch, records/s |
| ``afflux replay payouts --verify`` of N attribution events, s | target: 1,000,000 in < 60 s |
| (``verify``: snapshot of the live tables, fold, row-by-row diff) | |

Setup: N ConversionAttributed (``AFFLUX_BENCH_REPLAY_EVENTS``, default 100,000: at
today's fold rate a million takes some six minutes to build and verify; set it to
1000000 for the real figure, else the million is extrapolated and said to be) are
produced straight onto ``afflux.attribution.v1`` from one encoded template (1,000
partners), and the "live" projection is built by the same fold (``fold_log`` into the
``payouts`` schema, as the service's consumer would hold it). Targets (issue 12): the
replay at least 0.5x the bare consume+decode rate; the verify under 60 s. The figures
are printed, then a missed target fails the bench; the verify must find the projection equal
(a fast wrong answer fails).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from afflux_contracts import ATTRIBUTION, ConversionAttributed, Envelope, Money, decode, encode, utc_now
from afflux_infra.testing import SessionInfrastructure
from afflux_payouts.application.replay import ReplayOptions, fold_log, verify
from afflux_payouts.application.shadows import Stretch
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings

EVENTS = int(os.environ.get("AFFLUX_BENCH_REPLAY_EVENTS", "100000"))
FULL = 1_000_000
PARTNERS = 1000
WORKERS = int(os.environ.get("AFFLUX_BENCH_REPLAY_WORKERS", "4"))
RATIO_TARGET = 0.5
VERIFY_TARGET_SECONDS = 60.0
TEMPLATE_ID = UUID("00000000-0000-7000-8000-00000000beef")
CONVERTED = utc_now() - timedelta(days=1)

pytestmark = pytest.mark.timeout(7200)


SEQUENCE_SLOT = "%SEQUENCE%"
PARTNER_SLOT = "%PARTNER%"
"""Slots in the one encoded envelope that ``produce`` fills per record with bytes
replacement: encoding a million envelopes would make the producer the bottleneck."""


def template() -> bytes:
    decision = ConversionAttributed(
        conversion_id=f"bench-conv-{SEQUENCE_SLOT}", transaction_id=f"bench-tx-{SEQUENCE_SLOT}",
        partner_id=f"bench-partner-{PARTNER_SLOT}", offer_id="bench-offer", event="sale",
        payout=Money(amount=Decimal("4.80"), currency="USD"), clicked_at=CONVERTED, converted_at=CONVERTED)
    return encode(Envelope.wrap(decision, producer="bench", event_id=TEMPLATE_ID))


async def produce(bootstrap: str, count: int) -> tuple[float, dict[str, int]]:
    """``count`` distinct decisions on the attribution topic; returns records/s produced and
    the last offset of each partition (from the broker's acknowledgements: some brokers
    report end offsets short of a batch's last records)."""
    shape = template()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=1024 * 1024, enable_idempotence=False)
    await producer.start()
    started = time.perf_counter()
    last: dict[str, int] = {}
    try:
        pending = []
        base = int(time.time() * 1000) << 64
        for n in range(count):
            partner = f"{n % PARTNERS:04d}".encode()
            value = (shape.replace(str(TEMPLATE_ID).encode(), str(UUID(int=base + n)).encode())
                     .replace(SEQUENCE_SLOT.encode(), f"{n:010d}".encode())
                     .replace(PARTNER_SLOT.encode(), partner))
            pending.append(await producer.send(ATTRIBUTION.name, value, key=b"bench-partner-" + partner))
            if len(pending) >= 20000:
                _note(last, await asyncio.gather(*pending))
                pending = []
        _note(last, await asyncio.gather(*pending))
    finally:
        await producer.stop()
    return count / (time.perf_counter() - started), last


def _note(last: dict[str, int], acknowledged: list[RecordMetadata]) -> None:
    for metadata in acknowledged:
        name = f"{metadata.topic}#{metadata.partition}"
        last[name] = max(last.get(name, -1), metadata.offset)


async def bare_consume_and_decode(settings: PayoutsSettings, positions: dict[str, int]) -> tuple[int, float]:
    """The baseline: read the same stretch and decode every record, nothing else."""
    plan = [Stretch(name.rpartition("#")[0], int(name.rpartition("#")[2]), 0, last)
            for name, last in positions.items()]
    count = 0
    started = time.perf_counter()
    async for _, records in replaying(settings).log.read(plan):
        for record in records:
            decode(record.value)
        count += len(records)
    return count, time.perf_counter() - started


@pytest.fixture
async def settings(infra: SessionInfrastructure) -> AsyncIterator[PayoutsSettings]:
    yield PayoutsSettings(DATABASE_URL=infra.new_database(), KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap_servers,
                          port=0)


async def test_replay_rate_and_a_verified_replay_of_a_million_events(settings: PayoutsSettings) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    produced_rate, positions = await produce(bootstrap, EVENTS)
    on_log = sum(last + 1 for last in positions.values())
    print(f"\nreplay bench: {EVENTS:,} decisions produced at {produced_rate:,.0f}/s; "
          f"{on_log:,} records on {ATTRIBUTION.name}")

    count, bare_seconds = await bare_consume_and_decode(settings, positions)
    bare_rate = count / bare_seconds

    factory = service_folds(settings, build)
    live = await asyncio.to_thread(factory, settings.db_schema)  # the "live" projection, same fold
    try:
        started = time.perf_counter()
        report = await fold_log(live.folds, replaying(settings), positions, ReplayOptions(), workers=WORKERS)
        fold_seconds = time.perf_counter() - started
    finally:
        await asyncio.to_thread(live.close)
    fold_rate = report.read / fold_seconds

    found = await verify(replaying(settings), settings.db_schema, service_folds(settings, build))
    ratio = fold_rate / bare_rate
    print(f"  baseline  bare consume+decode        {bare_rate:>10,.0f} records/s "
          f"({count:,} in {bare_seconds:.1f}s)")
    print(f"  replay    fold into a scratch schema {fold_rate:>10,.0f} records/s ({report.read:,} in "
          f"{fold_seconds:.1f}s) = {ratio:.2f}x the baseline (target >= {RATIO_TARGET}x: "
          f"{'met' if ratio >= RATIO_TARGET else 'MISSED'})")
    million = found.seconds * FULL / max(found.report.read, 1)
    measured = found.report.read >= FULL
    print(f"  verify    {found.report.read:,} records replayed and compared in {found.seconds:.1f}s "
          f"({', '.join(f'{k} {v:.1f}s' for k, v in found.phases.items())}); "
          f"{FULL:,} {'in' if measured else 'extrapolated to'} {million:.0f}s (target < "
          f"{VERIFY_TARGET_SECONDS:.0f}s: {'met' if million < VERIFY_TARGET_SECONDS else 'MISSED'})")
    assert found.mismatched == 0
    assert report.applied >= EVENTS
    assert ratio >= RATIO_TARGET, f"replay at {ratio:.2f}x the bare consume+decode"
    assert million < VERIFY_TARGET_SECONDS, f"a million events verified in {million:.0f}s"
