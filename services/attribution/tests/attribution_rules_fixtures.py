"""Builders for attribution's domain tests: one click, one offer, one report, with the
defaults of an ordinary attributable conversion, so each test states only what it varies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from afflux_attribution.domain.rules import Click, ConversionReport, Credit, Decision, Facts, decide
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, RelationshipTerms
from afflux_contracts import ClickOutcome, OfferStatus, PayoutType

CLICKED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OFFER_FROM = CLICKED_AT - timedelta(days=10)


def cpa(amount: str) -> PricingTerms:
    return PricingTerms(PayoutType.CPA, amount=Decimal(amount))


def cps(percent: str) -> PricingTerms:
    return PricingTerms(PayoutType.CPS, percent=Decimal(percent))


def cpa_cps(amount: str, percent: str) -> PricingTerms:
    return PricingTerms(PayoutType.CPA_CPS, amount=Decimal(amount), percent=Decimal(percent))


def cpc(amount: str) -> PricingTerms:
    return PricingTerms(PayoutType.CPC, amount=Decimal(amount))


def click(**changes: Any) -> Click:
    fields: dict[str, Any] = {"transaction_id": "tx-1", "offer_id": "offer-1", "partner_id": "partner-1",
                              "clicked_at": CLICKED_AT, "outcome": ClickOutcome.VALID}
    return Click(**{**fields, **changes})


def offer(**changes: Any) -> OfferTerms:
    fields: dict[str, Any] = {"offer_id": "offer-1", "effective_from": OFFER_FROM, "currency": "USD",
                              "payout": cpa("5.00"), "revenue": None, "attribution_window_days": 30,
                              "status": OfferStatus.ACTIVE}
    return OfferTerms(**{**fields, **changes})


def relationship(**changes: Any) -> RelationshipTerms:
    fields: dict[str, Any] = {"offer_id": "offer-1", "partner_id": "partner-1", "effective_from": OFFER_FROM,
                              "approved": True}
    return RelationshipTerms(**{**fields, **changes})


def report(**changes: Any) -> ConversionReport:
    fields: dict[str, Any] = {"conversion_id": "conv-1", "converted_at": CLICKED_AT + timedelta(hours=2),
                              "transaction_id": "tx-1", "sale_amount": Decimal("120.00"), "currency": "USD",
                              "order_id": "order-1"}
    return ConversionReport(**{**fields, **changes})


def credited(by: Click | None = None) -> Credit:
    """The credit a click gives its partner (the default click's unless given)."""
    c = by or click()
    return Credit(c.offer_id, c.partner_id, c)


def attribute(report: ConversionReport, click: Click | None, offer: OfferTerms | None,
              relationship: RelationshipTerms | None, order_already_credited: bool) -> Decision:
    """Decide a report credited by its click alone (no coupon, no counts)."""
    credit = Credit(click.offer_id, click.partner_id, click) if click is not None else None
    facts = Facts(offer, relationship, order_already_credited=order_already_credited) if offer else None
    return decide(report, credit, facts)
