"""The partners log's program, in attribution's own terms: an offer's or a
relationship's whole state (as created or updated) -> the domain's terms version,
stamped with the event that made it."""

from __future__ import annotations

from datetime import datetime

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
from afflux_contracts import Cap, OfferCreated, OfferUpdated, RelationshipSet, Terms


def pricing_terms(terms: Terms) -> PricingTerms:
    return PricingTerms(terms.type, terms.amount, terms.percent)


def _maybe(terms: Terms | None) -> PricingTerms | None:
    return pricing_terms(terms) if terms is not None else None


def cap_rule(cap: Cap) -> CapRule:
    return CapRule(cap.metric.value, cap.period.value, cap.limit, cap.per_partner, cap.hard)


def offer_version(offer: OfferCreated | OfferUpdated, at: datetime, event_id: str) -> OfferTerms:
    fraud = offer.fraud
    return OfferTerms(
        offer_id=offer.offer_id,
        effective_from=at,
        currency=offer.currency,
        payout=pricing_terms(offer.payout),
        revenue=_maybe(offer.revenue),
        attribution_window_days=offer.attribution_window_days,
        status=offer.status,
        events=tuple(EventTerms(e.name, pricing_terms(e.payout), _maybe(e.revenue), e.allow_duplicates,
                                e.requires_approval) for e in offer.events),
        caps=tuple(cap_rule(cap) for cap in offer.caps),
        tiers=tuple(TierRule(t.min_conversions, pricing_terms(t.payout)) for t in offer.tiers),
        fraud=None if fraud is None else FraudRules(
            fraud.min_seconds_to_convert, fraud.max_conversions_per_ip_per_day, fraud.blocked_ips,
            fraud.blocked_sub1, fraud.action.value),
        coupon_precedence=offer.coupon_precedence.value,
        event_id=event_id,
    )


def relationship_version(relationship: RelationshipSet, at: datetime, event_id: str) -> RelationshipTerms:
    return RelationshipTerms(
        offer_id=relationship.offer_id,
        partner_id=relationship.partner_id,
        effective_from=at,
        approved=relationship.approved,
        payout=_maybe(relationship.payout),
        revenue=_maybe(relationship.revenue),
        events=tuple(CustomEventTerms(e.name, _maybe(e.payout), _maybe(e.revenue))
                     for e in relationship.events),
        caps=tuple(cap_rule(cap) for cap in relationship.caps),
        event_id=event_id,
    )
