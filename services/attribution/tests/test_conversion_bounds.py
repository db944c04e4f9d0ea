"""Bounded conversions and held ones that say why (pure: no broker, no database): the
pixel's report is held for review, a sale or payout above the offer's (or event's) bound
is held or refused, and a pending conversion names the rule that held it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from attribution_rules_fixtures import click, cps, credited, offer, report

from afflux_attribution.domain.rules import Attributed, Decision, Facts, Rejected, decide
from afflux_attribution.domain.terms import EventTerms, FraudRules, OfferTerms
from afflux_contracts import ConversionStatus, RejectionReason

TEN_PERCENT = cps("10")


def decided(terms: OfferTerms, **reported: Any) -> Decision:
    return decide(report(**reported), credited(click()), Facts(terms))


def held(decision: Decision) -> tuple[ConversionStatus, str | None]:
    assert isinstance(decision, Attributed), decision
    return decision.status, decision.reason


def test_a_pixel_conversion_is_held_for_review_at_its_price() -> None:
    decision = decided(offer(payout=TEN_PERCENT), method="pixel", sale_amount=Decimal("999999999"))
    assert held(decision) == (ConversionStatus.PENDING, "pixel_review")
    assert isinstance(decision, Attributed) and decision.payout == Decimal("99999999.90")
    assert [c.outcome.value for c in decision.trace if c.rule == "pixel_review"] == ["held"]


def test_an_offer_that_trusts_its_pixel_approves_it() -> None:
    decision = decided(offer(payout=TEN_PERCENT, pixel_review=False), method="pixel")
    assert held(decision) == (ConversionStatus.APPROVED, None)


def test_a_sale_above_the_offers_maximum_is_held_for_review() -> None:
    terms = offer(payout=TEN_PERCENT, max_sale_amount=Decimal("500"))
    decision = decided(terms, sale_amount=Decimal("500.01"))
    assert held(decision) == (ConversionStatus.PENDING, "max_sale_amount")


def test_a_sale_at_the_maximum_is_approved() -> None:
    decision = decided(offer(payout=TEN_PERCENT, max_sale_amount=Decimal("500")), sale_amount=Decimal("500"))
    assert held(decision) == (ConversionStatus.APPROVED, None)


def test_above_a_bound_an_offer_that_rejects_refuses_the_conversion() -> None:
    terms = offer(payout=TEN_PERCENT, max_payout=Decimal("20.00"), over_limit_action="reject")
    decision = decided(terms, sale_amount=Decimal("300.00"))
    assert isinstance(decision, Rejected) and decision.reason is RejectionReason.OVER_MAX_PAYOUT
    assert "30.00" in decision.message


def test_an_events_bound_overrides_the_offers() -> None:
    event = EventTerms("conversion", TEN_PERCENT, max_sale_amount=Decimal("1000"))
    terms = offer(payout=TEN_PERCENT, events=(event,), max_sale_amount=Decimal("100"))
    assert held(decided(terms, sale_amount=Decimal("900"))) == (ConversionStatus.APPROVED, None)
    assert held(decided(terms, sale_amount=Decimal("1001"))) == (ConversionStatus.PENDING, "max_sale_amount")


def test_a_pending_conversion_names_the_first_rule_that_held_it() -> None:
    approval = EventTerms("conversion", TEN_PERCENT, requires_approval=True)
    assert held(decided(offer(payout=TEN_PERCENT, events=(approval,)))) == \
        (ConversionStatus.PENDING, "requires_approval")
    fast = FraudRules(min_seconds_to_convert=10**6, action="review")
    assert held(decided(offer(payout=TEN_PERCENT, events=(approval,), fraud=fast), method="pixel")) == \
        (ConversionStatus.PENDING, "fraud_too_fast")


def test_a_conversion_whose_click_carries_a_blocked_sub_is_rejected() -> None:
    terms = offer(fraud=FraudRules(blocked_subs=(("sub4", ("cashback",)),)))
    decision = decide(report(), credited(click(sub4="cashback")), Facts(terms))
    assert isinstance(decision, Rejected) and decision.reason is RejectionReason.FRAUD_BLOCKED_SUB
