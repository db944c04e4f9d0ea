"""Which clicks and impressions earn (pure: no broker, no database): valid, past the deny
lists and daily limits, unique per visitor within the offer's window, within the caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from attribution_rules_fixtures import cpc, offer

from afflux_attribution.domain.priced import UnitPrice
from afflux_attribution.domain.program import TallyBook
from afflux_attribution.domain.terms import CapRule, FraudRules, PricingTerms
from afflux_attribution.domain.traffic import CLICK, IMPRESSION, Earned, Outcome, Refused, TrafficBook, Visit
from afflux_contracts import ClickOutcome, PayoutType, RejectionReason
from afflux_contracts.tracking import derived_visitor_id

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
QUARTER = UnitPrice(Decimal("0.25"), None, "offer_event")
CURL = "curl/8.5.0"


def visit(n: int = 0, kind: str = CLICK, **changes: Any) -> Visit:
    fields: dict[str, Any] = {"kind": kind, "ref": f"{kind}-{n}", "offer_id": "offer-1",
                              "partner_id": "partner-1", "at": AT, "outcome": ClickOutcome.VALID,
                              "ip": "198.51.100.7", "user_agent": CURL}
    return Visit(**{**fields, **changes})


def book() -> TrafficBook:
    return TrafficBook(set(), {}, {}, TallyBook({}))


def judged(visits: list[Visit], **offer_changes: Any) -> list[Outcome]:
    terms = offer(payout=cpc("0.25"), **offer_changes)
    ledger = book()
    return [ledger.judge(v, terms, None, QUARTER) for v in visits]


def reasons(outcomes: list[Outcome]) -> list[str]:
    return ["earned" if isinstance(o, Earned) else o.reason.value for o in outcomes]


def test_a_thousand_clicks_of_one_client_earn_once_a_day() -> None:
    outcomes = judged([visit(n) for n in range(1000)])
    assert reasons(outcomes).count("earned") == 1
    assert reasons(outcomes)[1:] == ["not_unique"] * 999


def test_a_new_cookie_per_click_from_the_same_address_and_browser_is_the_same_visitor() -> None:
    outcomes = judged([visit(n, visitor_id=f"cookie-{n}") for n in range(5)])
    assert reasons(outcomes) == ["earned"] + ["not_unique"] * 4


def test_the_same_cookie_from_another_address_is_the_same_visitor() -> None:
    outcomes = judged([visit(1, visitor_id="cookie-a", ip="198.51.100.7"),
                       visit(2, visitor_id="cookie-a", ip="203.0.113.9")])
    assert reasons(outcomes) == ["earned", "not_unique"]


def test_a_visitor_earns_again_in_the_next_window_of_the_offers_unique_click_hours() -> None:
    hour_later = AT + timedelta(hours=1)
    assert reasons(judged([visit(1), visit(2, at=hour_later)])) == ["earned", "not_unique"]
    assert reasons(judged([visit(1), visit(2, at=hour_later)], unique_click_hours=1)) == ["earned", "earned"]


def test_windows_of_24_hours_are_utc_days() -> None:
    late, early = AT.replace(hour=23, minute=59), AT.replace(hour=0, minute=1) + timedelta(days=1)
    assert reasons(judged([visit(1, at=AT.replace(hour=0)), visit(2, at=late)])) == ["earned", "not_unique"]
    assert reasons(judged([visit(1, at=late), visit(2, at=early)])) == ["earned", "earned"]


def test_the_visitor_key_of_an_old_event_is_the_trackers_derived_visitor_id() -> None:
    assert visit().visitor_keys == (derived_visitor_id("198.51.100.7", CURL),)
    assert visit(visitor_id="cookie-a").visitor_keys == ("cookie-a", derived_visitor_id("198.51.100.7", CURL))


def test_blocked_networks_and_subs_refuse_the_click() -> None:
    fraud = FraudRules(blocked_ips=("203.0.113.0/24",), blocked_sub1=("incent",),
                       blocked_subs=(("sub3", ("adult",)),))
    outcomes = judged([visit(1, ip="203.0.113.50"), visit(2, user_agent="a", subs={"sub1": "incent"}),
                       visit(3, user_agent="b", subs={"sub3": "adult"}), visit(4, user_agent="c",
                                                                               subs={"sub3": "news"})],
                      fraud=fraud)
    assert reasons(outcomes) == ["fraud_blocked_ip", "fraud_blocked_sub1", "fraud_blocked_sub", "earned"]


def test_the_daily_ip_limit_counts_every_valid_click_from_the_address() -> None:
    visitors = [visit(n, user_agent=f"browser-{n}") for n in range(4)]
    outcomes = judged(visitors, fraud=FraudRules(max_clicks_per_ip_per_day=2))
    assert reasons(outcomes) == ["earned", "earned", "fraud_click_ip_limit", "fraud_click_ip_limit"]


def test_the_daily_visitor_limit_counts_the_visitors_clicks_unique_or_not() -> None:
    visits = [visit(1), visit(2), visit(3, at=AT + timedelta(hours=1))]
    outcomes = judged(visits, fraud=FraudRules(max_clicks_per_visitor_per_day=2), unique_click_hours=1)
    assert reasons(outcomes) == ["earned", "not_unique", "fraud_click_visitor_limit"]


def test_a_hard_payout_cap_per_partner_stops_paying_clicks_exactly_at_it() -> None:
    cap = CapRule("payout", "day", Decimal("1.00"), per_partner=True)
    outcomes = judged([visit(n, user_agent=f"browser-{n}") for n in range(6)], caps=(cap,))
    assert reasons(outcomes) == ["earned"] * 4 + ["over_cap"] * 2


def test_a_clicks_cap_counts_paid_clicks() -> None:
    outcomes = judged([visit(n, user_agent=f"browser-{n}") for n in range(3)],
                      caps=(CapRule("clicks", "lifetime", Decimal(2)),))
    assert reasons(outcomes) == ["earned", "earned", "over_cap"]


def test_a_conversion_cap_does_not_count_clicks() -> None:
    outcomes = judged([visit(n, user_agent=f"browser-{n}") for n in range(3)],
                      caps=(CapRule("conversions", "day", Decimal(1)),))
    assert reasons(outcomes) == ["earned"] * 3


def test_a_thousand_unique_impressions_price_a_thousand_and_repeats_count_nothing() -> None:
    terms = offer(payout=PricingTerms(PayoutType.CPM, Decimal("5.00")))
    ledger = book()
    price = UnitPrice(Decimal("5.00"), None, "offer_event")
    repeats = [ledger.judge(visit(n, IMPRESSION), terms, None, price) for n in range(2000)]
    others = [ledger.judge(visit(n, IMPRESSION, user_agent=f"browser-{n}"), terms, None, price)
              for n in range(1, 1000)]
    assert reasons(repeats).count("earned") == 1
    blocks = [o.block for o in repeats + others if isinstance(o, Earned) and o.block is not None]
    assert blocks == [1]
    assert ledger.impressions_added == {("offer-1", "partner-1"): 1000}


def test_a_thousand_over_a_hard_payout_cap_is_refused() -> None:
    terms = offer(payout=PricingTerms(PayoutType.CPM, Decimal("5.00")),
                  caps=(CapRule("payout", "lifetime", Decimal("4.00")),))
    ledger = book()
    price = UnitPrice(Decimal("5.00"), None, "offer_event")
    outcomes = [ledger.judge(visit(n, IMPRESSION, user_agent=f"browser-{n}"), terms, None, price)
                for n in range(1000)]
    assert outcomes[-1] == Refused(RejectionReason.OVER_CAP, outcomes[-1].detail, 1)  # type: ignore[union-attr]
    assert ledger.tallies.added == {}

