"""The program's rules as the consumers apply them, against real PostgreSQL: exact cap
counts when two appliers decide one offer's conversions at once, the same decisions on
a replay, coupons, tiers, fraud holds, CPC and CPM pricing, and no decision while the
partners view lags its log."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from attribution_fixtures import cpa, fresh_id
from psycopg import sql
from store_runs import deliver, one_by_one, program

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
    FraudAction,
    FraudSettings,
    ImpressionRecorded,
    PayoutType,
    RelationshipSet,
    Terms,
    Tier,
    utc_now,
)
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import RetryLater

HOUR_AGO = utc_now() - timedelta(hours=1)

E = TypeVar("E", bound=Event)


def envelope(event: E, occurred_at: datetime | None = None) -> Envelope[E]:
    return Envelope.wrap(event, producer="test", occurred_at=occurred_at)


def click(offer_id: str, partner_id: str, **fields: Any) -> Envelope[ClickRecorded]:
    at = fields.pop("clicked_at", utc_now() - timedelta(minutes=5))
    return envelope(ClickRecorded(transaction_id=fresh_id("tx"), offer_id=offer_id, partner_id=partner_id,
                                  clicked_at=at, **fields))


def report(**fields: Any) -> Envelope[ConversionReported]:
    return envelope(ConversionReported(conversion_id=fresh_id("conv"), reported_at=utc_now(), **fields))


def on(a_click: Envelope[ClickRecorded], **fields: Any) -> Envelope[ConversionReported]:
    return report(transaction_id=a_click.payload.transaction_id, **fields)


def decided(store: Attribution, conversion: Envelope[ConversionReported]) -> dict[str, Any]:
    row = store.conversion(conversion.payload.conversion_id)
    assert row is not None, "not decided"
    return row


def statuses(store: Attribution, conversions: list[Envelope[ConversionReported]]) -> list[tuple[str, Any]]:
    return [(row["status"], row["reason"]) for row in (decided(store, c) for c in conversions)]


DAILY_CAP_OF_5 = (Cap(metric=CapMetric.CONVERSIONS, period=CapPeriod.DAY, limit=Decimal(5)),)


def test_two_appliers_deciding_one_offer_at_once_pay_exactly_the_cap(store: Attribution) -> None:
    deliver(store, *program("offer-c", "partner-c", caps=DAILY_CAP_OF_5))
    clicks = [click("offer-c", "partner-c") for _ in range(16)]
    deliver(store, *clicks)
    conversions = [on(c) for c in clicks]
    threads = [threading.Thread(target=deliver, args=(store, *conversions[p::2]), kwargs={"partition": p})
               for p in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = statuses(store, conversions)
    assert outcomes.count(("approved", None)) == 5
    assert outcomes.count(("rejected", "over_cap")) == 11
    over = next(decided(store, c) for c in conversions if decided(store, c)["reason"] == "over_cap")
    assert any(check["rule"] == "cap conversions/day offer" and check["outcome"] == "failed"
               for check in over["trace"])


def test_records_applied_one_at_a_time_by_two_appliers_also_pay_exactly_the_cap(store: Attribution) -> None:
    """The consumer's fallback path (runs of one, after a failed run): the same handler,
    the tallies locked in the transaction that commits each decision."""
    deliver(store, *program("offer-o", "partner-o", caps=DAILY_CAP_OF_5))
    clicks = [click("offer-o", "partner-o") for _ in range(16)]
    deliver(store, *clicks)
    conversions: list[Envelope[Any]] = [on(c) for c in clicks]
    threads = [threading.Thread(target=one_by_one, args=(store, *conversions[p::2]), kwargs={"partition": p})
               for p in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = statuses(store, conversions)
    assert (outcomes.count(("approved", None)), outcomes.count(("rejected", "over_cap"))) == (5, 11)


def test_a_replay_of_the_same_log_makes_the_same_decisions_and_counts(
    store: Attribution, database_url: str,
) -> None:
    tiers = (Tier(min_conversions=2, payout=cpa("7.00")),)
    log = [*program("offer-r", "partner-r", caps=DAILY_CAP_OF_5, tiers=tiers)]
    clicks = [click("offer-r", "partner-r") for _ in range(7)]
    conversions = [on(c) for c in clicks]
    log += clicks + conversions
    deliver(store, *log)
    replay = open_store(AttributionStore, database_url, "attribution_replay")
    try:
        one_by_one(replay, *log)  # one record per transaction this time: batch boundaries do not matter
        first = [(r["status"], r["reason"], r["payout"]) for r in (decided(store, c) for c in conversions)]
        again = [(r["status"], r["reason"], r["payout"]) for r in (decided(replay, c) for c in conversions)]
    finally:
        replay.close()
    assert first == again
    assert [payout for _, _, payout in first] == [Decimal("5.00")] * 2 + [Decimal("7.00")] * 3 + [None] * 2


def test_a_coupon_credits_its_partner_and_coupon_first_beats_the_click(store: Attribution) -> None:
    deliver(store, *program("offer-k", "creator-k", coupon_precedence="coupon_first",
                            relationship={"coupon_codes": ("ANNA10",)}))
    site = RelationshipSet(offer_id="offer-k", partner_id="site-k", approved=True)
    deliver(store, envelope(site, HOUR_AGO))
    someone_elses = click("offer-k", "site-k")
    deliver(store, someone_elses)
    alone = report(coupon_code="anna10", offer_id="offer-k")
    both = on(someone_elses, coupon_code="ANNA10", offer_id="offer-k")
    deliver(store, alone, both)

    credited = decided(store, alone)
    assert (credited["partner_id"], credited["coupon_code"]) == ("creator-k", "anna10")
    assert decided(store, both)["partner_id"] == "creator-k"


def test_the_tier_payout_applies_after_the_threshold_of_approved_conversions(store: Attribution) -> None:
    deliver(store, *program("offer-t", "partner-t", tiers=(Tier(min_conversions=2, payout=cpa("8.00")),)))
    clicks = [click("offer-t", "partner-t") for _ in range(3)]
    conversions = [on(c) for c in clicks]
    deliver(store, *clicks, *conversions)

    payouts = [decided(store, c)["payout"] for c in conversions]
    assert payouts == [Decimal("5.00"), Decimal("5.00"), Decimal("8.00")]
    assert decided(store, conversions[2])["terms"]["payout_source"] == "tier"


def test_fraud_review_holds_the_conversion_pending_with_its_price_and_reason(store: Attribution) -> None:
    fraud = FraudSettings(min_seconds_to_convert=60, action=FraudAction.REVIEW)
    deliver(store, *program("offer-f", "partner-f", fraud=fraud))
    fast = click("offer-f", "partner-f", clicked_at=utc_now() - timedelta(seconds=3))
    conversion = on(fast)
    deliver(store, fast, conversion)

    row = decided(store, conversion)
    assert (row["status"], row["payout"]) == ("pending", Decimal("5.00"))
    assert {"rule": "fraud_too_fast", "outcome": "held"}.items() <= next(
        check for check in row["trace"] if check["rule"] == "fraud_too_fast").items()


def test_a_valid_click_on_a_cpc_offer_is_priced_once(store: Attribution) -> None:
    per_click = Terms(type=PayoutType.CPC, amount=Decimal("0.40"))
    deliver(store, *program("offer-cpc", "partner-cpc", payout=per_click))
    a_click = click("offer-cpc", "partner-cpc")
    deliver(store, a_click)
    deliver(store, envelope(a_click.payload))  # the same click delivered again

    priced: PricedClick = store.repository.get(PricedClick.create_id(a_click.payload.transaction_id))
    assert (priced.payout, priced.version) == (Decimal("0.40"), 1)


def test_each_thousand_valid_impressions_on_a_cpm_offer_is_priced(store: Attribution) -> None:
    per_thousand = Terms(type=PayoutType.CPM, amount=Decimal("4.00"))
    deliver(store, *program("offer-cpm", "partner-cpm", payout=per_thousand))
    impressions = [envelope(ImpressionRecorded(impression_id=fresh_id("imp"), offer_id="offer-cpm",
                                               partner_id="partner-cpm", impressed_at=utc_now(),
                                               ip=f"198.51.{n // 250}.{n % 250}"))
                   for n in range(1001)]  # 1,001 visitors
    for start in range(0, 1001, 100):
        deliver(store, *impressions[start:start + 100])

    first_thousand = PricedImpressions.create_id("offer-cpm", "partner-cpm", 1)
    block: PricedImpressions = store.repository.get(first_thousand)
    assert block.payout == Decimal("4.00")
    assert PricedImpressions.create_id("offer-cpm", "partner-cpm", 2) not in store.repository


def test_no_conversion_is_decided_while_the_partners_view_lags_its_log(store: Attribution) -> None:
    deliver(store, *program("offer-l", "partner-l"))
    a_click = click("offer-l", "partner-l")
    deliver(store, a_click)
    store.partners_fresh = lambda: False
    conversion = on(a_click)
    with pytest.raises(RetryLater):
        deliver(store, conversion)
    assert store.conversion(conversion.payload.conversion_id) is None
    held = store.held(conversion.payload.conversion_id)
    assert held is not None and "catching up" in held.message


def test_one_run_sees_its_own_decisions_duplicates_and_tallies_as_if_each_had_committed(
    store: Attribution,
) -> None:
    """A handler keeps what its decisions took in memory for the rest of its segment: a
    second conversion of an order or of a click's event later in the same run is a
    duplicate, a conversion reported twice is decided once, and the tallies get each
    decision once."""
    deliver(store, *program("offer-m", "partner-m"))
    first, second = click("offer-m", "partner-m"), click("offer-m", "partner-m")
    deliver(store, first, second)
    paid = on(first, order_id="order-m")
    same_order = on(second, order_id="order-m")
    same_event = on(first)
    again = envelope(paid.payload)  # the same report, published twice
    deliver(store, paid, same_order, same_event, again, on(second, order_id="order-m2"))

    assert statuses(store, [paid, same_order, same_event]) == [
        ("approved", None), ("rejected", "duplicate"), ("rejected", "duplicate")]
    statement = sql.SQL("SELECT conversions, approved, payout FROM {} WHERE offer_id = 'offer-m' "
                        "AND partner_id = '' AND period = 'lifetime'").format(store.table("program_counts"))
    rows = store.query(statement)
    assert [(r["conversions"], r["approved"], r["payout"]) for r in rows] == [(2, 2, Decimal("10.00"))]
