"""An offer's and a relationship's program (events, caps, tiers, fraud settings, coupon
precedence, bounds, unique window, pixel review) as the JSON column of their terms
versions. Amounts travel as decimal strings, never floats; a version stored before the
program (or a part of it) existed reads with the defaults.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from afflux_attribution.domain.terms import (
    CapRule,
    CustomEventTerms,
    EventTerms,
    FraudRules,
    OfferTerms,
    PricingTerms,
    RelationshipTerms,
    TierRule,
)
from afflux_contracts import PayoutType


def _terms(terms: PricingTerms | None) -> dict[str, Any] | None:
    if terms is None:
        return None
    return {"type": terms.type.value,
            "amount": format(terms.amount, "f") if terms.amount is not None else None,
            "percent": format(terms.percent, "f") if terms.percent is not None else None}


def _terms_from(data: dict[str, Any] | None) -> PricingTerms | None:
    if data is None:
        return None
    return PricingTerms(PayoutType(data["type"]),
                        Decimal(data["amount"]) if data.get("amount") is not None else None,
                        Decimal(data["percent"]) if data.get("percent") is not None else None)


def _amount(value: Decimal | None) -> str | None:
    return format(value, "f") if value is not None else None


def _amount_from(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _cap(cap: CapRule) -> dict[str, Any]:
    return {"metric": cap.metric, "period": cap.period, "limit": format(cap.limit, "f"),
            "per_partner": cap.per_partner, "hard": cap.hard}


def _cap_from(data: dict[str, Any]) -> CapRule:
    return CapRule(data["metric"], data["period"], Decimal(data["limit"]), data["per_partner"], data["hard"])


def offer_program_json(offer: OfferTerms) -> dict[str, Any]:
    fraud = offer.fraud
    return {
        "events": [{"name": e.name, "payout": _terms(e.payout), "revenue": _terms(e.revenue),
                    "allow_duplicates": e.allow_duplicates, "requires_approval": e.requires_approval,
                    "max_sale_amount": _amount(e.max_sale_amount), "max_payout": _amount(e.max_payout)}
                   for e in offer.events],
        "caps": [_cap(cap) for cap in offer.caps],
        "tiers": [{"min_conversions": t.min_conversions, "payout": _terms(t.payout)} for t in offer.tiers],
        "fraud": None if fraud is None else {
            "min_seconds_to_convert": fraud.min_seconds_to_convert,
            "max_conversions_per_ip_per_day": fraud.max_conversions_per_ip_per_day,
            "blocked_ips": list(fraud.blocked_ips), "blocked_sub1": list(fraud.blocked_sub1),
            "action": fraud.action, "max_clicks_per_ip_per_day": fraud.max_clicks_per_ip_per_day,
            "max_clicks_per_visitor_per_day": fraud.max_clicks_per_visitor_per_day,
            "max_impressions_per_ip_per_day": fraud.max_impressions_per_ip_per_day,
            "blocked_subs": {name: list(values) for name, values in fraud.blocked_subs}},
        "coupon_precedence": offer.coupon_precedence,
        "max_sale_amount": _amount(offer.max_sale_amount), "max_payout": _amount(offer.max_payout),
        "over_limit_action": offer.over_limit_action, "unique_click_hours": offer.unique_click_hours,
        "pixel_review": offer.pixel_review,
    }


def with_offer_program(offer: OfferTerms, data: dict[str, Any] | None) -> OfferTerms:
    """``offer`` with the program stored beside it (none for a version from before)."""
    if not data:
        return offer
    fraud = data.get("fraud")
    return replace(
        offer,
        events=tuple(EventTerms(e["name"], _payout(e["payout"]), _terms_from(e["revenue"]),
                                e["allow_duplicates"], e["requires_approval"],
                                _amount_from(e.get("max_sale_amount")), _amount_from(e.get("max_payout")))
                     for e in data["events"]),
        caps=tuple(_cap_from(cap) for cap in data["caps"]),
        tiers=tuple(TierRule(t["min_conversions"], _payout(t["payout"])) for t in data["tiers"]),
        fraud=None if fraud is None else FraudRules(
            fraud["min_seconds_to_convert"], fraud["max_conversions_per_ip_per_day"],
            tuple(fraud["blocked_ips"]), tuple(fraud["blocked_sub1"]), fraud["action"],
            fraud.get("max_clicks_per_ip_per_day"), fraud.get("max_clicks_per_visitor_per_day"),
            fraud.get("max_impressions_per_ip_per_day"),
            tuple((name, tuple(values)) for name, values in (fraud.get("blocked_subs") or {}).items())),
        coupon_precedence=data["coupon_precedence"],
        max_sale_amount=_amount_from(data.get("max_sale_amount")),
        max_payout=_amount_from(data.get("max_payout")),
        over_limit_action=data.get("over_limit_action", "review"),
        unique_click_hours=data.get("unique_click_hours", 24),
        pixel_review=data.get("pixel_review", True),
    )


def relationship_program_json(relationship: RelationshipTerms) -> dict[str, Any]:
    return {
        "events": [{"name": e.name, "payout": _terms(e.payout), "revenue": _terms(e.revenue)}
                   for e in relationship.events],
        "caps": [_cap(cap) for cap in relationship.caps],
    }


def with_relationship_program(relationship: RelationshipTerms,
                              data: dict[str, Any] | None) -> RelationshipTerms:
    if not data:
        return relationship
    return replace(
        relationship,
        events=tuple(CustomEventTerms(e["name"], _terms_from(e["payout"]), _terms_from(e["revenue"]))
                     for e in data["events"]),
        caps=tuple(_cap_from(cap) for cap in data["caps"]),
    )


def _payout(data: dict[str, Any]) -> PricingTerms:
    terms = _terms_from(data)
    assert terms is not None, "events and tiers always have payout terms"
    return terms
