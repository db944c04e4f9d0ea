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
figures are printed whether or not they are met, and the decisions are checked (the
cap pays exactly its limit), so a fast wrong answer fails.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import (
    TRACKING,
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
from afflux_plumbing.store import RunItem

DECISIONS = 3000
CLICKS = 20000
COMMITS = 2000
HARD_CAP = DECISIONS - 500
DECISIONS_TARGET = 3000.0
CLICKS_TARGET = 30000.0
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


def runs(store: Attribution, messages: list[Envelope[Any]]) -> list[list[RunItem]]:
    def item(message: Envelope[Any]) -> RunItem:
        topic = message.payload.topic.name
        handler = store.apply_tracking_event if topic == TRACKING.name else store.apply_partners_event
        return RunItem(Position(topic, 0, next(offsets)), message.event_id, lambda: handler(message))
    items = [item(m) for m in messages]
    return [items[i:i + RUN_LIMIT] for i in range(0, len(items), RUN_LIMIT)]


def applied_rate(store: Attribution, messages: list[Envelope[Any]]) -> float:
    prepared = runs(store, messages)
    started = time.perf_counter()
    for run in prepared:
        store.apply_run(run)
    return len(messages) / (time.perf_counter() - started)


def clicks(offer_id: str, partner_id: str, count: int) -> list[Envelope[Any]]:
    at = utc_now() - timedelta(minutes=10)
    return [envelope(ClickRecorded(transaction_id=f"{offer_id}-tx-{n}", offer_id=offer_id,
                                   partner_id=partner_id, clicked_at=at, sub1="newsletter",
                                   ip="198.51.100.7"), at)
            for n in range(count)]


def bare_commits(database_url: str, count: int) -> float:
    """One-row INSERT + COMMIT, ``count`` times: PostgreSQL's commit rate here."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commits (id bigint PRIMARY KEY, at timestamptz)")
        started = time.perf_counter()
        for n in range(count):
            conn.execute("INSERT INTO bench_commits VALUES (%s, now())", (n,))
        return count / (time.perf_counter() - started)


def bare_inserts_in_runs(database_url: str, count: int) -> float:
    """One-row INSERTs committed in runs of ``RUN_LIMIT``: the click index's floor."""
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_clicks (transaction_id text PRIMARY KEY, "
                     "offer_id text, partner_id text, clicked_at timestamptz, outcome text)")
        conn.commit()
        started = time.perf_counter()
        for start in range(0, count, RUN_LIMIT):
            with conn.transaction():
                for n in range(start, min(start + RUN_LIMIT, count)):
                    conn.execute("INSERT INTO bench_clicks VALUES (%s, 'o', 'p', now(), 'valid')",
                                 (f"tx-{n}",))
        return count / (time.perf_counter() - started)


def bare_executemany_in_runs(database_url: str, count: int) -> float:
    """The same rows, one ``executemany`` per run of ``RUN_LIMIT`` (pipelined): the floor
    of a multi-row write, what the click index's runs now do."""
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_clicks_many (transaction_id text PRIMARY KEY, "
                     "offer_id text, partner_id text, clicked_at timestamptz, outcome text)")
        conn.commit()
        started = time.perf_counter()
        for start in range(0, count, RUN_LIMIT):
            with conn.transaction(), conn.cursor() as curs:
                curs.executemany("INSERT INTO bench_clicks_many VALUES (%s, 'o', 'p', now(), 'valid')",
                                 [(f"tx-{n}",) for n in range(start, min(start + RUN_LIMIT, count))])
        return count / (time.perf_counter() - started)


def line(name: str, value: float, baseline: float, baseline_name: str, target: float) -> str:
    verdict = "ok" if value >= target else f"MISSED (target ≥ {target:,.0f}/s)"
    return (f"  {name:<44} {value:>9,.0f}/s   {baseline_name} {baseline:>9,.0f}/s "
            f"({value / baseline:.0%})   {verdict}")


@pytest.fixture
def store(database_url: str) -> Any:
    app = open_store(Attribution, database_url, "attribution")
    yield app
    app.close()


def test_decisions_and_click_ingest_per_second(store: Attribution, database_url: str) -> None:
    for run in runs(store, program("bench-offer", "bench-partner")):
        store.apply_run(run)
    indexed = clicks("bench-offer", "bench-partner", DECISIONS)
    store_click_rate = applied_rate(store, indexed + clicks("bench-idx", "bench-partner", CLICKS - DECISIONS))
    reports = [envelope(ConversionReported(
        conversion_id=f"bench-conv-{n}", transaction_id=c.payload.transaction_id, order_id=f"order-{n}",
        reported_at=utc_now(), ip="198.51.100.7", offer_id="bench-offer")) for n, c in enumerate(indexed)]
    decision_rate = applied_rate(store, reports)
    commit_rate = bare_commits(database_url, COMMITS)
    insert_rate = bare_inserts_in_runs(database_url, CLICKS)
    many_rate = bare_executemany_in_runs(database_url, CLICKS)

    print("\nattribution (store.apply_run, runs of", RUN_LIMIT, "records):")
    print(line("conversions decided, every rule on", decision_rate, commit_rate, "bare commits",
               DECISIONS_TARGET))
    print(line("click-index ingest", store_click_rate, insert_rate, "bare inserts", CLICKS_TARGET))
    print(line("click-index ingest", store_click_rate, many_rate, "bare multi-row", CLICKS_TARGET))

    statuses = [store.conversion(f"bench-conv-{n}") for n in range(DECISIONS)]
    paid = sum(1 for row in statuses if row is not None and row["status"] == "approved")
    over = sum(1 for row in statuses if row is not None and row["reason"] == "over_cap")
    assert (paid, over) == (HARD_CAP, DECISIONS - HARD_CAP)
