"""``make bench``: a fresh attribution instance on a long partners log (issue 18).

A program's partners log only grows (every offer edit, every relationship set), and a new
attribution instance (a deploy, a scale-out, a replay into a fresh schema) must fold all
of it before it decides a conversion: a decision is made only with the partners view
caught up with its log. Here ``EVENTS`` partners events (``AFFLUX_BENCH_PARTNERS_EVENTS``,
default 200,000: 1,000 offers created and each updated nine times, 40,000 partners,
150,000 relationships set) are put straight on ``afflux.partners.v1`` of a broker of the
module's own, then a click and its conversion report on ``afflux.tracking.v1``, and a
fresh attribution process is started on them. The figure: seconds from the process's
start to the conversion decided (its ``GET /v1/conversions/{id}`` has ``decided_at``),
beside a bare consume+decode of the same partners records, the floor of any fold.
Goal: deciding within 30 s of the start.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from loadgen import bare_consume_decode_rate, load_average

from afflux_contracts import (
    PARTNERS,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    OfferCreated,
    OfferUpdated,
    PartnerCreated,
    PayoutType,
    RelationshipSet,
    Terms,
    encode,
    utc_now,
)
from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.testing import SessionInfrastructure

EVENTS = int(os.environ.get("AFFLUX_BENCH_PARTNERS_EVENTS", "200000"))
OFFERS = 1000
PARTNERS_CREATED = EVENTS // 5
GOAL_SECONDS = 30.0
HOUR_AGO = utc_now() - timedelta(hours=1)
CPA = Terms(type=PayoutType.CPA, amount=Decimal("4.00"))


def program(count: int) -> Iterator[Event]:
    """``count`` partners events in log order: the offers, then each updated nine times,
    the partners, then relationships between them (approved, some with their own payout)."""
    for n in range(OFFERS):
        yield OfferCreated(offer_id=f"o-{n}", name=f"Offer {n}", destination_url="https://shop.example/",
                           currency="USD", payout=CPA)
    for round_ in range(9):
        for n in range(OFFERS):
            yield OfferUpdated(offer_id=f"o-{n}", name=f"Offer {n} v{round_ + 2}",
                               destination_url="https://shop.example/", currency="USD", payout=CPA)
    made = OFFERS * 10
    for n in range(PARTNERS_CREATED):
        yield PartnerCreated(partner_id=f"p-{n}", name=f"Partner {n}", email=f"p{n}@example.com")
    made += PARTNERS_CREATED
    for n in range(count - made):
        custom = Terms(type=PayoutType.CPA, amount=Decimal("5.00")) if n % 3 == 0 else None
        yield RelationshipSet(offer_id=f"o-{n % OFFERS}", partner_id=f"p-{n % PARTNERS_CREATED}",
                              approved=True, payout=custom)


async def produce(bootstrap: str, envelopes: Iterator[Envelope[Any]]) -> int:
    """Every envelope on its topic (batched, acks=all); how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=1024 * 1024, enable_idempotence=False)
    await producer.start()
    sent, pending = 0, []
    try:
        for envelope in envelopes:
            pending.append(await producer.send(envelope.payload.topic.name, encode(envelope),
                                               key=envelope.key.encode()))
            sent += 1
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def wrapped(events: Iterator[Event]) -> Iterator[Envelope[Any]]:
    return (Envelope.wrap(event, producer="bench", occurred_at=HOUR_AGO) for event in events)


@pytest.fixture(scope="module")
def platform(infra: SessionInfrastructure, bootstrap_for_platform: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Attribution alone (not started here) on a broker and database of the module's own."""
    database_url = infra.new_database()
    infrastructure = Infrastructure(database_url=database_url, bootstrap_servers=bootstrap_for_platform,
                                    kind=infra.server.kind)
    ports = {name: free_port() for name in ("partners", "tracking", "attribution")}
    yield Platform(infrastructure, ports=ports,
                   log_dir=tmp_path_factory.mktemp("bench-fresh-logs"),
                   extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"bench-{secrets.token_hex(4)}"})
    infra.retire(database_url)


async def decided_after(platform: Platform, conversion_id: str) -> float:
    """Seconds from the attribution process's start to the conversion decided."""
    attribution = platform.service("attribution")
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    url = f"{platform.url('attribution')}/v1/conversions/{conversion_id}"
    started = time.monotonic()
    attribution.start()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() - started < 300:
                try:
                    answer = await client.get(url, headers=headers)
                    if answer.status_code == 200 and "decided_at" in answer.json():
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass  # not listening yet
                await asyncio.sleep(0.2)
        raise AssertionError(f"not decided within 300 s: {attribution.logs()[-2000:]}")
    finally:
        attribution.stop()


async def test_a_fresh_attribution_instance_decides_soon_on_a_long_partners_log(
        platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap = platform.infrastructure.bootstrap_servers
    produced = await produce(bootstrap, wrapped(program(EVENTS)))
    click = ClickRecorded(transaction_id=f"tx-{secrets.token_hex(6)}", offer_id="o-7", partner_id="p-7",
                          clicked_at=utc_now() - timedelta(minutes=5))
    report = ConversionReported(conversion_id=f"conv-{secrets.token_hex(6)}",
                                transaction_id=click.transaction_id, reported_at=utc_now(), offer_id="o-7")
    await produce(bootstrap, wrapped(iter([click, report])))
    bare = await bare_consume_decode_rate(bootstrap, PARTNERS.name, PARTNERS.partitions, produced)
    seconds = await decided_after(platform, report.conversion_id)

    with capsys.disabled():
        print(f"\nfresh attribution instance on a partners log of {produced:,} events "
              f"({load_average()}):"
              f"\n  start → the first conversion decided  {seconds:6.1f} s  "
              f"({produced / seconds:,.0f} partners events/s folded, start-up included; "
              f"goal ≤ {GOAL_SECONDS:.0f} s: "
              f"{'met' if seconds <= GOAL_SECONDS else 'MISSED'})"
              f"\n  baseline: bare consume+decode         {produced / bare.per_second:6.1f} s  "
              f"({bare.per_second:,.0f} records/s, {bare.cpu_us:.0f} µs CPU each)")
    assert seconds <= GOAL_SECONDS, f"decided {seconds:.1f} s after the start"
