"""``make bench``: attribution's own speed, each figure beside a baseline measured in the
same run against the same PostgreSQL.

| figure | baseline |
|---|---|
| conversions decided/s, every rule on (1) | bare one-row PostgreSQL commits/s |
| click-index ingest, clicks/s (2) | bare one-row inserts/s, committed in runs of the same size |
| the same ingest | bare multi-row inserts/s (one ``executemany`` per run, pipelined) |

(1) events, duplicates, coupon register, partner status, fraud checks, tiers, hard and
soft caps with their tallies locked. (2) indexed, and priced when the offer is CPC.

Both are measured where the consumer spends its time: ``Attribution.apply_run``, runs of
``RUN_LIMIT`` records committed as one transaction with the inbox and the position,
exactly as the tracking consumer applies what it fetched (the broker's own cost is
``bench_platform``'s). Targets (issue 8): 3,000 decisions/s and 30,000 clicks/s; the
figures are printed, then a missed target fails the bench; the decisions are checked (the
cap pays exactly its limit), so a fast wrong answer fails.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from afflux_attribution.adapters.postgres import AttributionStore
from afflux_attribution.application.attribution import Attribution
from afflux_contracts import (
    Cap,
    CapMetric,
    CapPeriod,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    FraudSettings,
    OfferCreated,
    OfferEvent,
    PartnerCreated,
    PayoutType,
    RelationshipEvent,
    RelationshipSet,
    Terms,
    Tier,
    utc_now,
)
from afflux_plumbing.consume import RUN_LIMIT
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Record, record_of

DECISIONS = 3000
CLICKS = 20000
COMMITS = 2000
HARD_CAP = DECISIONS - 500
DECISIONS_TARGET = 3000.0
CLICKS_TARGET = 30000.0
ROUNDS = 4
HOUR_AGO = utc_now() - timedelta(hours=1)
offsets = itertools.count()


def cpa(amount: str) -> Terms:
    return Terms(type=PayoutType.CPA, amount=Decimal(amount))


def envelope(event: Event, at: Any = None) -> Envelope[Any]:
    return Envelope.wrap(event, producer="bench", occurred_at=at)


def program(offer_id: str, partner_id: str) -> list[Envelope[Any]]:
    """An offer using every rule: two events, tiers, hard and soft caps (offer and partner),
    fraud checks, coupon precedence, and a relationship with custom event payouts and a cap."""
    caps = (Cap(metric=CapMetric.CONVERSIONS, period=CapPeriod.DAY, limit=Decimal(HARD_CAP)),
            Cap(metric=CapMetric.PAYOUT, period=CapPeriod.MONTH, limit=Decimal(10**9), per_partner=True),
            Cap(metric=CapMetric.REVENUE, period=CapPeriod.WEEK, limit=Decimal(100), hard=False))
    offer = OfferCreated(
        offer_id=offer_id, name="bench", destination_url="https://shop.example/", currency="USD",
        payout=cpa("5.00"), revenue=cpa("6.00"), coupon_precedence="coupon_first",
        events=(OfferEvent(name="conversion", payout=cpa("5.00"), revenue=cpa("6.00")),
                OfferEvent(name="sale", payout=Terms(type=PayoutType.CPS, percent=Decimal(10)))),
        caps=caps, tiers=(Tier(min_conversions=100, payout=cpa("6.00")),),
        fraud=FraudSettings(min_seconds_to_convert=1, max_conversions_per_ip_per_day=10**6,
                            blocked_ips=("192.0.2.0/24",), blocked_sub1=("incent",)))
    relationship = RelationshipSet(
        offer_id=offer_id, partner_id=partner_id, approved=True, coupon_codes=("BENCH10",),
        events=(RelationshipEvent(name="sale", payout=Terms(type=PayoutType.CPS, percent=Decimal(12))),),
        caps=(Cap(metric=CapMetric.CONVERSIONS, period=CapPeriod.LIFETIME, limit=Decimal(10**9)),))
    return [envelope(PartnerCreated(partner_id=partner_id, name="p", email="p@example.com"), HOUR_AGO),
            envelope(offer, HOUR_AGO), envelope(relationship, HOUR_AGO)]


def runs(store: Attribution, messages: list[Envelope[Any]]) -> list[list[Record[Any]]]:
    records = [record_of(m, Position(m.payload.topic.name, 0, next(offsets))) for m in messages]
    return [records[i:i + RUN_LIMIT] for i in range(0, len(records), RUN_LIMIT)]


def applied_seconds(store: Attribution, messages: list[Envelope[Any]]) -> float:
    prepared = runs(store, messages)
    started = time.perf_counter()
    for run in prepared:
        store.apply_run(run)
    return time.perf_counter() - started


def clicks(offer_id: str, partner_id: str, count: int) -> list[Envelope[Any]]:
    at = utc_now() - timedelta(minutes=10)
    return [envelope(ClickRecorded(transaction_id=f"{offer_id}-tx-{n}", offer_id=offer_id,
                                   partner_id=partner_id, clicked_at=at, sub1="newsletter",
                                   ip="198.51.100.7"), at)
            for n in range(count)]


BARE_TABLES = (
    "CREATE TABLE IF NOT EXISTS bench_commits (id bigint PRIMARY KEY, at timestamptz)",
    "CREATE TABLE IF NOT EXISTS bench_clicks (transaction_id text PRIMARY KEY, "
    "offer_id text, partner_id text, clicked_at timestamptz, outcome text)",
    "CREATE TABLE IF NOT EXISTS bench_clicks_many (transaction_id text PRIMARY KEY, "
    "offer_id text, partner_id text, clicked_at timestamptz, outcome text)",
)


def bare_commits(conn: psycopg.Connection[Any], numbers: range) -> float:
    """One-row INSERT + COMMIT per number (autocommit): PostgreSQL's commit rate here."""
    started = time.perf_counter()
    for n in numbers:
        conn.execute("INSERT INTO bench_commits VALUES (%s, now())", (n,))
    return time.perf_counter() - started


def bare_inserts_in_runs(conn: psycopg.Connection[Any], numbers: range) -> float:
    """One-row INSERTs committed in runs of ``RUN_LIMIT``: the click index's old floor."""
    started = time.perf_counter()
    for start in range(numbers.start, numbers.stop, RUN_LIMIT):
        with conn.transaction():
            for n in range(start, min(start + RUN_LIMIT, numbers.stop)):
                conn.execute("INSERT INTO bench_clicks VALUES (%s, 'o', 'p', now(), 'valid')", (f"tx-{n}",))
    return time.perf_counter() - started


def bare_executemany_in_runs(conn: psycopg.Connection[Any], numbers: range) -> float:
    """The same rows, one ``executemany`` per run of ``RUN_LIMIT`` (pipelined): the floor
    of a multi-row write, what the click index's runs now do."""
    started = time.perf_counter()
    for start in range(numbers.start, numbers.stop, RUN_LIMIT):
        with conn.transaction(), conn.cursor() as curs:
            curs.executemany("INSERT INTO bench_clicks_many VALUES (%s, 'o', 'p', now(), 'valid')",
                             [(f"tx-{n}",) for n in range(start, min(start + RUN_LIMIT, numbers.stop))])
    return time.perf_counter() - started


def chunks(items: list[Any], rounds: int) -> list[list[Any]]:
    size = -(-len(items) // rounds)
    return [items[i:i + size] for i in range(0, len(items), size)]


def ranges(count: int, rounds: int) -> list[range]:
    size = -(-count // rounds)
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


def line(name: str, value: float, baseline: float, baseline_name: str, target: float) -> str:
    verdict = "ok" if value >= target else f"MISSED (target ≥ {target:,.0f}/s)"
    return (f"  {name:<44} {value:>9,.0f}/s   {baseline_name} {baseline:>9,.0f}/s "
            f"({value / baseline:.0%})   {verdict}")


@pytest.fixture
def store(database_url: str) -> Any:
    app = open_store(AttributionStore, database_url, "attribution")
    yield app
    app.close()


def test_decisions_and_click_ingest_per_second(store: Attribution, database_url: str) -> None:
    """Each figure and its baselines are measured in ``ROUNDS`` alternating slices, so a
    burst of the machine's other load falls on both sides alike."""
    for run in runs(store, program("bench-offer", "bench-partner")):
        store.apply_run(run)
    indexed = clicks("bench-offer", "bench-partner", DECISIONS)
    every_click = indexed + clicks("bench-idx", "bench-partner", CLICKS - DECISIONS)
    reports = [envelope(ConversionReported(
        conversion_id=f"bench-conv-{n}", transaction_id=c.payload.transaction_id, order_id=f"order-{n}",
        reported_at=utc_now(), ip="198.51.100.7", offer_id="bench-offer")) for n, c in enumerate(indexed)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for ddl in BARE_TABLES:
            conn.execute(ddl)
        seconds = {"clicks": 0.0, "inserts": 0.0, "many": 0.0, "decisions": 0.0, "commits": 0.0}
        for part, numbers in zip(chunks(every_click, ROUNDS), ranges(CLICKS, ROUNDS), strict=True):
            seconds["clicks"] += applied_seconds(store, part)
            seconds["inserts"] += bare_inserts_in_runs(conn, numbers)
            seconds["many"] += bare_executemany_in_runs(conn, numbers)
        for part, numbers in zip(chunks(reports, ROUNDS), ranges(COMMITS, ROUNDS), strict=True):
            seconds["decisions"] += applied_seconds(store, part)
            seconds["commits"] += bare_commits(conn, numbers)
    rate = {name: (CLICKS if name in ("clicks", "inserts", "many") else
                   DECISIONS if name == "decisions" else COMMITS) / elapsed
            for name, elapsed in seconds.items()}

    print("\nattribution (store.apply_run, runs of", RUN_LIMIT, "records; load average",
          " ".join(f"{load:.1f}" for load in os.getloadavg()) + "):")
    print(line("conversions decided, every rule on", rate["decisions"], rate["commits"], "bare commits",
               DECISIONS_TARGET))
    print(line("click-index ingest", rate["clicks"], rate["inserts"], "bare inserts", CLICKS_TARGET))
    print(line("click-index ingest", rate["clicks"], rate["many"], "bare multi-row", CLICKS_TARGET))

    statuses = [store.conversion(f"bench-conv-{n}") for n in range(DECISIONS)]
    paid = sum(1 for row in statuses if row is not None and row["status"] == "approved")
    over = sum(1 for row in statuses if row is not None and row["reason"] == "over_cap")
    assert (paid, over) == (HARD_CAP, DECISIONS - HARD_CAP)
    missed = {name: f"{rate[name]:,.0f}/s" for name, target in
              (("decisions", DECISIONS_TARGET), ("clicks", CLICKS_TARGET)) if rate[name] < target}
    assert not missed, f"goals missed: {missed}"
