"""Paid traffic as the tracking consumer applies it, against real PostgreSQL: one visitor
earns once however many clicks or impressions it sends, limits and caps are exact when
two appliers judge one offer's traffic at once, refused clicks stay indexed with why,
and a log applied in runs leaves the same tables as one record at a time."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import store_runs
from attribution_fixtures import cpa, fresh_id
from psycopg import sql
from store_runs import deliver, one_by_one

from afflux_attribution.adapters.postgres import AttributionStore
from afflux_attribution.application.attribution import Attribution
from afflux_attribution.domain.priced import PricedClick, PricedImpressions
from afflux_contracts import (
    Cap,
    CapMetric,
    CapPeriod,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    FraudSettings,
    ImpressionRecorded,
    OfferEvent,
    PayoutType,
    Terms,
    utc_now,
)
from afflux_plumbing.eventstore import open_store

E = TypeVar("E", bound=Event)
HOUR_AGO = utc_now() - timedelta(hours=1)
QUARTER = Terms(type=PayoutType.CPC, amount=Decimal("0.25"))
FIVE_PER_THOUSAND = Terms(type=PayoutType.CPM, amount=Decimal("5.00"))
CURL = "curl/8.5.0"


def envelope(event: E, occurred_at: datetime | None = None) -> Envelope[E]:
    return Envelope.wrap(event, producer="test", occurred_at=occurred_at)



def program(offer_id: str, partner_id: str, **offer: Any) -> list[Envelope[Any]]:
    """A CPC offer (unless ``offer`` says otherwise) and its approved partner."""
    made: list[Envelope[Any]] = store_runs.program(offer_id, partner_id, **{"payout": QUARTER, **offer})
    return made


def clicks(offer_id: str, partner_id: str, count: int, **fields: Any) -> list[Envelope[ClickRecorded]]:
    """``count`` clicks of one client (curl from one address), unless ``fields`` vary it."""
    fields = {"ip": "198.51.100.7", "user_agent": CURL, **fields}
    return [envelope(ClickRecorded(transaction_id=fresh_id("tx"), offer_id=offer_id, partner_id=partner_id,
                                   clicked_at=utc_now() - timedelta(minutes=1), **fields))
            for _ in range(count)]


def visitors(offer_id: str, partner_id: str, count: int, ip: str = "198.51.100.7") -> list[Envelope[Any]]:
    """One click of each of ``count`` visitors (browsers) behind ``ip``."""
    return [click for n in range(count)
            for click in clicks(offer_id, partner_id, 1, ip=ip, user_agent=f"b-{n}")]


def impressions(offer_id: str, partner_id: str, count: int, **fields: Any) -> list[Envelope[Any]]:
    fields = {"ip": "198.51.100.7", "user_agent": CURL, **fields}
    at = utc_now() - timedelta(minutes=1)
    return [envelope(ImpressionRecorded(impression_id=fresh_id("imp"), offer_id=offer_id,
                                        partner_id=partner_id, impressed_at=at, **fields))
            for _ in range(count)]


def in_runs(store: Attribution, messages: list[Envelope[Any]], partition: int = 0) -> None:
    for start in range(0, len(messages), 100):
        deliver(store, *messages[start:start + 100], partition=partition)


def two_appliers(store: Attribution, messages: list[Envelope[Any]]) -> None:
    """Half the records on each of two partitions, applied in runs by two threads at once."""
    threads = [threading.Thread(target=in_runs, args=(store, messages[p::2], p)) for p in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def priced_clicks(store: Attribution, sent: list[Envelope[ClickRecorded]]) -> list[Decimal]:
    ids = [PricedClick.create_id(c.payload.transaction_id) for c in sent]
    return [store.repository.get(i).payout for i in ids if i in store.repository]


def outcomes(store: Attribution, offer_id: str) -> dict[tuple[str, str], int]:
    return {(r["kind"], r["outcome"]): int(r["n"]) for r in store.views.traffic(offer_id)}


def test_a_thousand_clicks_of_one_client_applied_by_two_appliers_pay_one_click(store: Attribution) -> None:
    deliver(store, *program("offer-loop", "partner-loop"))
    loop = clicks("offer-loop", "partner-loop", 1000)

    two_appliers(store, loop)

    assert priced_clicks(store, loop) == [Decimal("0.25")]
    assert outcomes(store, "offer-loop") == {("click", "earned"): 1, ("click", "not_unique"): 999}


def test_a_click_delivered_again_is_indexed_and_paid_once_without_an_inbox_row(store: Attribution) -> None:
    """Clicks are kept by their transaction_id (``idempotent`` for the plumbing, so their
    event_ids are never claimed in the inbox): the same record twice in a run, again in a
    later run, and again one at a time, indexes one click and pays it once."""
    deliver(store, *program("offer-again", "partner-again"))
    [click] = clicks("offer-again", "partner-again", 1)

    assert deliver(store, click, click) == [True, True]
    deliver(store, click)
    one_by_one(store, click)

    assert priced_clicks(store, [click]) == [Decimal("0.25")]
    assert outcomes(store, "offer-again") == {("click", "earned"): 1}
    assert store.click(click.payload.transaction_id) is not None
    assert not store.has_applied(click.event_id)


def test_a_refused_click_is_indexed_with_why(store: Attribution) -> None:
    deliver(store, *program("offer-why", "partner-why"))
    first, again = clicks("offer-why", "partner-why", 2)
    deliver(store, first, again)

    rows = store.query(sql.SQL("SELECT transaction_id, pricing FROM {} WHERE offer_id = 'offer-why'").format(
        store.table("clicks")))
    assert {r["transaction_id"]: r["pricing"] for r in rows} == {
        first.payload.transaction_id: "earned", again.payload.transaction_id: "not_unique"}
    assert store.click(again.payload.transaction_id) is not None


def test_the_daily_ip_limit_is_exact_when_two_appliers_judge_one_address(store: Attribution) -> None:
    deliver(store, *program("offer-ip", "partner-ip", fraud=FraudSettings(max_clicks_per_ip_per_day=5)))
    behind_one_address = visitors("offer-ip", "partner-ip", 20)

    two_appliers(store, behind_one_address)

    assert len(priced_clicks(store, behind_one_address)) == 5
    assert outcomes(store, "offer-ip") == {("click", "earned"): 5, ("click", "fraud_click_ip_limit"): 15}


def test_a_hard_payout_cap_is_shared_by_clicks_and_conversions_exactly(store: Attribution) -> None:
    cap = Cap(metric=CapMetric.PAYOUT, period=CapPeriod.DAY, limit=Decimal("1.00"))
    events = (OfferEvent(name="conversion", payout=QUARTER), OfferEvent(name="sale", payout=cpa("0.50")))
    deliver(store, *program("offer-cap", "partner-cap", caps=(cap,), events=events))
    many = [c for n in range(40) for c in visitors("offer-cap", "partner-cap", 1, ip=f"203.0.113.{n}")]

    two_appliers(store, many)
    sale = envelope(ConversionReported(conversion_id=fresh_id("conv"), event="sale", reported_at=utc_now(),
                                       transaction_id=many[0].payload.transaction_id))
    deliver(store, sale)

    assert priced_clicks(store, many) == [Decimal("0.25")] * 4
    decided = store.conversion(sale.payload.conversion_id)
    assert decided is not None and (decided["status"], decided["reason"]) == ("rejected", "over_cap")


def test_the_impressions_of_one_client_count_once_toward_a_thousand(store: Attribution) -> None:
    deliver(store, *program("offer-cpm", "partner-cpm", payout=FIVE_PER_THOUSAND))
    loop = impressions("offer-cpm", "partner-cpm", 2000)
    others = [i for n in range(999) for i in impressions("offer-cpm", "partner-cpm", 1, user_agent=f"b-{n}")]

    two_appliers(store, loop)
    assert PricedImpressions.create_id("offer-cpm", "partner-cpm", 1) not in store.repository
    in_runs(store, others)

    first_thousand = PricedImpressions.create_id("offer-cpm", "partner-cpm", 1)
    assert store.repository.get(first_thousand).payout == Decimal("5.00")
    assert outcomes(store, "offer-cpm") == {("impression", "earned"): 1000,
                                            ("impression", "not_unique"): 1999}


def test_a_log_applied_in_runs_leaves_the_tables_of_one_record_at_a_time(
    store: Attribution, database_url: str,
) -> None:
    """Every view table and every stored event, run boundaries or not (clicks, impressions,
    limits, caps, reports credited and refused; the thousands are priced elsewhere)."""
    fraud = FraudSettings(max_clicks_per_ip_per_day=3, blocked_subs={"sub2": ("spam",)})
    cap = Cap(metric=CapMetric.PAYOUT, period=CapPeriod.DAY, limit=Decimal("2.00"))
    log = [*program("offer-s", "partner-s", fraud=fraud, caps=(cap,)),
           *program("offer-m", "partner-s", payout=FIVE_PER_THOUSAND)]
    sent = [*clicks("offer-s", "partner-s", 3), *visitors("offer-s", "partner-s", 6),
            *clicks("offer-s", "partner-s", 2, sub2="spam", user_agent="x"),
            *[c for n in range(12) for c in visitors("offer-s", "partner-s", 1, ip=f"203.0.113.{n}")],
            *[i for n in range(30) for i in impressions("offer-m", "partner-s", 1, user_agent=f"b-{n % 20}")]]
    reports = [envelope(ConversionReported(conversion_id=fresh_id("conv"), reported_at=utc_now(),
                                           transaction_id=c.payload.transaction_id, order_id=f"o-{n % 3}"))
               for n, c in enumerate(sent[:8])]
    log += [*sent, *reports]
    in_runs(store, log)
    single = open_store(AttributionStore, database_url, "attribution_single")
    try:
        one_by_one(single, *log)
        assert tables(single) == tables(store)
    finally:
        single.close()
    assert len(tables(store)["unique_visits"]) > 0


def tables(store: Attribution) -> dict[str, list[tuple[Any, ...]]]:
    """Every view table's rows (but times of recording), and the stored events' ids and
    topics, in a stable order."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in ("offer_terms", "relationship_terms", "partners", "coupons", "clicks", "credited_orders",
                  "converted_events", "program_counts", "ip_counts", "impression_counts", "unique_visits",
                  "traffic_counters", "traffic_outcomes", "held_reports"):
        rows = store.query(sql.SQL("SELECT * FROM {}").format(store.table(table)))
        found[table] = sorted(tuple(str(v) for v in row.values()) for row in rows)
    judged = "SELECT conversion_id, status, reason, payout, partner_id, trace FROM {}"
    conversions = store.query(sql.SQL(judged).format(store.table("conversions")))
    found["conversions"] = sorted(tuple(str(v) for v in row.values()) for row in conversions)
    events = store.query(sql.SQL("SELECT originator_id, originator_version, topic FROM {}").format(
        sql.Identifier(store.schema, store.tracked_recorder.events_table_name)))
    found["events"] = sorted(tuple(str(v) for v in row.values()) for row in events)
    return found
