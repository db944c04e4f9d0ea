"""The program's rules at the domain level (pure): coupons, events, duplicates, tiers,
caps, fraud and the partner's status, each with the trace it leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from attribution_rules_fixtures import CLICKED_AT, click, cpa, cps, offer, relationship, report

from afflux_attribution.domain.program import Counts, Tally, period_keys
from afflux_attribution.domain.rules import (
    Attributed,
    Credit,
    Decision,
    Facts,
    Rejected,
    choose_credit,
    decide,
)
from afflux_attribution.domain.terms import CapRule, CustomEventTerms, EventTerms, FraudRules, TierRule
from afflux_contracts import ConversionStatus, PartnerStatus, RejectionReason, RuleOutcome

TWO_EVENTS = (EventTerms("conversion", cpa("2.00")), EventTerms("sale", cps("10"), cpa("1.00")))


def by_click(**changes: object) -> Credit:
    c = click(**changes)
    return Credit(c.offer_id, c.partner_id, c)


def facts(**changes: object) -> Facts:
    fields: dict[str, object] = {"offer": offer(event_id="ev-offer"), "partner_status": PartnerStatus.ACTIVE}
    return Facts(**{**fields, **changes})  # type: ignore[arg-type]


def attributed(decision: Decision) -> Attributed:
    assert isinstance(decision, Attributed), decision
    return decision


def rejected(decision: Decision) -> Rejected:
    assert isinstance(decision, Rejected), decision
    return decision


def outcome(decision: Decision, rule: str) -> RuleOutcome:
    return next(check.outcome for check in decision.trace if check.rule == rule)


def partner_month(conversions: int = 0, approved: int = 0, payout: str = "0") -> Counts:
    tally = Tally(conversions, approved, Decimal(payout))
    return Counts({("partner", "month"): tally, ("partner", "day"): tally, ("offer", "day"): tally})


# -- coupons ------------------------------------------------------------------------------

def test_a_coupon_alone_credits_the_partner_it_is_assigned_to() -> None:
    credit = choose_credit(report(transaction_id=None, coupon_code="ANNA10"), None, "creator-anna",
                           "offer-1", "click_first")
    assert credit == Credit("offer-1", "creator-anna", None, "ANNA10")
    decision = attributed(decide(report(transaction_id=None, coupon_code="ANNA10"), credit, facts()))
    assert decision.payout == Decimal("5.00")
    assert outcome(decision, "attribution_window") is RuleOutcome.SKIPPED


def test_click_first_credits_the_click_when_click_and_coupon_disagree() -> None:
    credit = choose_credit(report(coupon_code="ANNA10"), click(), "creator-anna", "offer-1", "click_first")
    assert credit is not None and credit.partner_id == "partner-1" and credit.coupon_code is None


def test_coupon_first_credits_the_coupon_when_click_and_coupon_disagree() -> None:
    credit = choose_credit(report(coupon_code="ANNA10"), click(), "creator-anna", "offer-1", "coupon_first")
    assert credit is not None and credit.partner_id == "creator-anna" and credit.coupon_code == "ANNA10"


def test_an_unassigned_coupon_without_a_click_is_rejected_coupon_not_found() -> None:
    unknown = report(transaction_id=None, coupon_code="NOBODY")
    assert choose_credit(unknown, None, None, "offer-1", "click_first") is None
    assert rejected(decide(unknown, None, None)).reason is RejectionReason.COUPON_NOT_FOUND


# -- events and duplicates ----------------------------------------------------------------

def test_each_event_is_priced_with_its_own_terms() -> None:
    two = facts(offer=offer(events=TWO_EVENTS))
    lead = attributed(decide(report(event="conversion"), by_click(), two))
    sale = attributed(decide(report(event="sale", sale_amount=Decimal("80.00")), by_click(), two))
    assert (lead.payout, lead.revenue) == (Decimal("2.00"), None)
    assert (sale.payout, sale.revenue) == (Decimal("8.00"), Decimal("1.00"))
    assert sale.terms is not None and sale.terms.payout_source == "offer_event"


def test_an_event_the_offer_does_not_have_is_rejected_event_not_on_offer() -> None:
    decision = rejected(decide(report(event="upsell"), by_click(), facts(offer=offer(events=TWO_EVENTS))))
    assert decision.reason is RejectionReason.EVENT_NOT_ON_OFFER
    assert "upsell" in decision.message


def test_a_second_conversion_of_one_transaction_and_event_is_a_duplicate() -> None:
    decision = rejected(decide(report(), by_click(), facts(event_already_converted=True)))
    assert decision.reason is RejectionReason.DUPLICATE
    assert outcome(decision, "duplicate_event") is RuleOutcome.FAILED


def test_an_event_that_allows_duplicates_converts_again_on_one_transaction() -> None:
    repeatable = offer(events=(EventTerms("conversion", cpa("3.00"), allow_duplicates=True),))
    decision = decide(report(), by_click(), facts(offer=repeatable, event_already_converted=True))
    assert attributed(decision).payout == Decimal("3.00")


def test_an_order_is_credited_once_per_offer() -> None:
    decision = rejected(decide(report(order_id="A-1"), by_click(), facts(order_already_credited=True)))
    assert decision.reason is RejectionReason.DUPLICATE
    assert outcome(decision, "duplicate_order") is RuleOutcome.FAILED


def test_an_event_that_requires_approval_is_held_pending_with_its_price() -> None:
    gated = offer(events=(EventTerms("conversion", cpa("4.00"), requires_approval=True),))
    decision = attributed(decide(report(), by_click(), facts(offer=gated)))
    assert decision.status is ConversionStatus.PENDING
    assert decision.payout == Decimal("4.00")
    assert outcome(decision, "approval") is RuleOutcome.HELD


# -- payout precedence and tiers ------------------------------------------------------------

def test_the_partners_custom_event_payout_beats_the_tier_and_the_offer_event() -> None:
    tiered = offer(events=TWO_EVENTS, tiers=(TierRule(1, cpa("6.00")),))
    custom = relationship(events=(CustomEventTerms("conversion", cpa("9.00")),), event_id="ev-rel")
    decision = attributed(decide(report(), by_click(),
                                 facts(offer=tiered, relationship=custom, counts=partner_month(5, 5))))
    assert decision.payout == Decimal("9.00")
    assert decision.terms is not None
    assert (decision.terms.payout_source, decision.terms.relationship_event_id) == ("relationship", "ev-rel")


def test_the_tier_payout_applies_once_approved_conversions_this_month_reach_the_threshold() -> None:
    tiered = offer(events=TWO_EVENTS, tiers=(TierRule(3, cpa("2.50")), TierRule(10, cpa("3.00"))))
    below = attributed(decide(report(), by_click(), facts(offer=tiered, counts=partner_month(2, 2))))
    reached = attributed(decide(report(), by_click(), facts(offer=tiered, counts=partner_month(3, 3))))
    higher = attributed(decide(report(), by_click(), facts(offer=tiered, counts=partner_month(12, 12))))
    assert (below.payout, reached.payout, higher.payout) == (
        Decimal("2.00"), Decimal("2.50"), Decimal("3.00"))
    assert reached.terms is not None and reached.terms.payout_source == "tier"


def test_pending_conversions_do_not_count_toward_a_tier() -> None:
    tiered = offer(tiers=(TierRule(3, cpa("9.00")),))
    decision = attributed(decide(report(), by_click(), facts(offer=tiered, counts=partner_month(5, 2))))
    assert decision.payout == Decimal("5.00")


# -- caps --------------------------------------------------------------------------------

def test_a_conversion_over_a_hard_conversion_cap_is_rejected_over_cap() -> None:
    capped = offer(caps=(CapRule("conversions", "day", Decimal(3), per_partner=False),))
    allowed = decide(report(), by_click(), facts(offer=capped, counts=partner_month(2, 2)))
    over = decide(report(), by_click(), facts(offer=capped, counts=partner_month(3, 3)))
    assert attributed(allowed).payout == Decimal("5.00")
    assert rejected(over).reason is RejectionReason.OVER_CAP
    assert outcome(over, "cap conversions/day offer") is RuleOutcome.FAILED


def test_a_payout_cap_rejects_the_conversion_that_would_exceed_it() -> None:
    capped = offer(caps=(CapRule("payout", "month", Decimal("12.00"), per_partner=True),))
    fits = decide(report(), by_click(), facts(offer=capped, counts=partner_month(1, 1, "7.00")))
    over = decide(report(), by_click(), facts(offer=capped, counts=partner_month(1, 1, "7.01")))
    assert attributed(fits).payout == Decimal("5.00")
    assert rejected(over).reason is RejectionReason.OVER_CAP


def test_a_relationship_cap_limits_that_partner_only() -> None:
    mine = relationship(caps=(CapRule("conversions", "month", Decimal(1)),))
    over = decide(report(), by_click(), facts(relationship=mine, counts=partner_month(1, 1)))
    assert rejected(over).reason is RejectionReason.OVER_CAP


def test_a_soft_cap_is_attributed_and_reported_in_the_trace() -> None:
    soft = offer(caps=(CapRule("conversions", "day", Decimal(1), hard=False),))
    decision = attributed(decide(report(), by_click(), facts(offer=soft, counts=partner_month(4, 4))))
    check = next(c for c in decision.trace if c.rule == "cap conversions/day offer")
    assert check.outcome is RuleOutcome.FAILED and check.detail is not None and "soft" in check.detail


def test_click_caps_are_left_to_tracking() -> None:
    clicks = offer(caps=(CapRule("clicks", "day", Decimal(1)),))
    decision = attributed(decide(report(), by_click(), facts(offer=clicks, counts=partner_month(9, 9))))
    assert not any(c.rule.startswith("cap clicks") for c in decision.trace)


def test_period_keys_are_the_utc_day_iso_week_month_and_lifetime() -> None:
    assert period_keys(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)) == {
        "day": "2026-11-30", "week": "2026-W49", "month": "2026-11", "lifetime": "lifetime"}


# -- fraud and the partner's status -----------------------------------------------------------

def test_a_conversion_too_soon_after_its_click_is_rejected_as_fraud() -> None:
    careful = offer(fraud=FraudRules(min_seconds_to_convert=30))
    fast = report(converted_at=CLICKED_AT + timedelta(seconds=5))
    assert rejected(decide(fast, by_click(), facts(offer=careful))).reason is RejectionReason.FRAUD_TOO_FAST
    slow = report(converted_at=CLICKED_AT + timedelta(seconds=31))
    assert outcome(decide(slow, by_click(), facts(offer=careful)), "fraud_too_fast") is RuleOutcome.PASSED


def test_fraud_with_the_review_action_is_held_pending_not_rejected() -> None:
    review = offer(fraud=FraudRules(min_seconds_to_convert=30, action="review"))
    fast = report(converted_at=CLICKED_AT + timedelta(seconds=5))
    decision = attributed(decide(fast, by_click(), facts(offer=review)))
    assert decision.status is ConversionStatus.PENDING
    assert outcome(decision, "fraud_too_fast") is RuleOutcome.HELD


def test_too_many_conversions_from_one_ip_a_day_are_rejected() -> None:
    limited = offer(fraud=FraudRules(max_conversions_per_ip_per_day=2))
    third = decide(report(ip="198.51.100.7"), by_click(), facts(offer=limited, counts=Counts(ip_today=2)))
    assert rejected(third).reason is RejectionReason.FRAUD_IP_LIMIT


def test_blocked_ips_match_addresses_and_networks_of_the_click_or_the_report() -> None:
    blocking = offer(fraud=FraudRules(blocked_ips=("203.0.113.0/24",)))
    by_click_ip = decide(report(), by_click(ip="203.0.113.50"), facts(offer=blocking))
    by_report_ip = decide(report(ip="203.0.113.9"), by_click(), facts(offer=blocking))
    clean = decide(report(ip="198.51.100.1"), by_click(ip="198.51.100.2"), facts(offer=blocking))
    assert rejected(by_click_ip).reason is RejectionReason.FRAUD_BLOCKED_IP
    assert rejected(by_report_ip).reason is RejectionReason.FRAUD_BLOCKED_IP
    assert attributed(clean).payout == Decimal("5.00")


def test_a_blocked_sub1_is_rejected() -> None:
    blocking = offer(fraud=FraudRules(blocked_sub1=("incent-wall",)))
    decision = decide(report(), by_click(sub1="incent-wall"), facts(offer=blocking))
    assert rejected(decision).reason is RejectionReason.FRAUD_BLOCKED_SUB1


def test_a_suspended_or_inactive_partner_earns_nothing_at_conversion_time() -> None:
    suspended = decide(report(), by_click(), facts(partner_status=PartnerStatus.SUSPENDED))
    inactive = decide(report(), by_click(), facts(partner_status=PartnerStatus.INACTIVE))
    assert rejected(suspended).reason is RejectionReason.PARTNER_SUSPENDED
    assert rejected(inactive).reason is RejectionReason.PARTNER_INACTIVE


def test_the_decision_names_the_terms_versions_and_every_rule_checked_in_order() -> None:
    decision = attributed(decide(report(), by_click(), facts(relationship=relationship(event_id="ev-rel"))))
    assert decision.terms is not None
    assert (decision.terms.offer_event_id, decision.terms.relationship_event_id) == ("ev-offer", "ev-rel")
    assert [c.rule for c in decision.trace] == [
        "credit", "click_valid", "attribution_window", "offer_active", "currency", "event",
        "duplicate_order", "duplicate_event", "partner_status", "pricing"]
