"""The partners log's program, in attribution's own terms: an offer's or a
relationship's whole state (as created or updated) -> the domain's terms version,
stamped with the event that made it; and the partners consumer's handler, which keeps
the terms views (offer and relationship versions, partner statuses, the coupon register)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from afflux_attribution.application.ports import Terms, TermsWrites
from afflux_attribution.domain.terms import (
    CapRule,
    CustomEventTerms,
    EventTerms,
    FraudRules,
    OfferTerms,
    PricingTerms,
    RelationshipTerms,
    TierRule,
    offer_terms_in_force,
)
from afflux_contracts import (
    Cap,
    Event,
    FraudSettings,
    OfferCreated,
    OfferEvent,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
)
from afflux_contracts import Terms as ContractTerms
from afflux_plumbing.runs import Record, RetryLater, Run
from afflux_plumbing.store import Changes


def pricing_terms(terms: ContractTerms) -> PricingTerms:
    return PricingTerms(terms.type, terms.amount, terms.percent)


def _maybe(terms: ContractTerms | None) -> PricingTerms | None:
    return pricing_terms(terms) if terms is not None else None


def cap_rule(cap: Cap) -> CapRule:
    return CapRule(cap.metric.value, cap.period.value, cap.limit, cap.per_partner, cap.hard)


def _fraud(fraud: FraudSettings | None) -> FraudRules | None:
    if fraud is None:
        return None
    return FraudRules(fraud.min_seconds_to_convert, fraud.max_conversions_per_ip_per_day, fraud.blocked_ips,
                      fraud.blocked_sub1, fraud.action.value, fraud.max_clicks_per_ip_per_day,
                      fraud.max_clicks_per_visitor_per_day, fraud.max_impressions_per_ip_per_day,
                      tuple((name, tuple(values)) for name, values in sorted(fraud.blocked_subs.items())))


def _event(event: OfferEvent) -> EventTerms:
    return EventTerms(event.name, pricing_terms(event.payout), _maybe(event.revenue), event.allow_duplicates,
                      event.requires_approval, event.max_sale_amount, event.max_payout)


def offer_version(offer: OfferCreated | OfferUpdated, at: datetime, event_id: str) -> OfferTerms:
    security = offer.conversion_security
    return OfferTerms(
        offer_id=offer.offer_id,
        effective_from=at,
        currency=offer.currency,
        payout=pricing_terms(offer.payout),
        revenue=_maybe(offer.revenue),
        attribution_window_days=offer.attribution_window_days,
        status=offer.status,
        events=tuple(_event(event) for event in offer.events),
        caps=tuple(cap_rule(cap) for cap in offer.caps),
        tiers=tuple(TierRule(t.min_conversions, pricing_terms(t.payout)) for t in offer.tiers),
        fraud=_fraud(offer.fraud),
        coupon_precedence=offer.coupon_precedence.value,
        event_id=event_id,
        max_sale_amount=offer.max_sale_amount,
        max_payout=offer.max_payout,
        over_limit_action=offer.over_limit_action.value,
        unique_click_hours=offer.unique_click_hours,
        pixel_review=security.pixel_review if security is not None else True,
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


@dataclass
class TermsChanges:
    """What a segment of partners events changes, folded in log order: the offer versions
    known so far (those read, and the segment's own, so a status change after a creation
    in the same segment finds it), and the rows to write."""

    known: dict[str, list[OfferTerms]]
    offers: list[OfferTerms] = field(default_factory=list)
    relationships: list[RelationshipTerms] = field(default_factory=list)
    statuses: list[tuple[str, PartnerStatus, datetime]] = field(default_factory=list)
    coupons: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def offer(self, version: OfferTerms) -> None:
        self.offers.append(version)
        self.known.setdefault(version.offer_id, []).append(version)


def _offer_state(changes: TermsChanges, record: Record[Any]) -> None:
    changes.offer(offer_version(record.payload, record.occurred_at, str(record.event_id)))


def _offer_status(changes: TermsChanges, record: Record[Any]) -> None:
    payload, at = record.payload, record.occurred_at
    latest = offer_terms_in_force(changes.known.get(payload.offer_id, []), at)
    if latest is None:
        raise RetryLater(f"status change of offer {payload.offer_id}, which is not known yet")
    changes.offer(replace(latest, effective_from=at, status=payload.status, event_id=str(record.event_id)))


def _relationship(changes: TermsChanges, record: Record[Any]) -> None:
    payload = record.payload
    changes.relationships.append(relationship_version(payload, record.occurred_at, str(record.event_id)))
    changes.coupons.append((payload.offer_id, payload.partner_id, tuple(payload.coupon_codes)))


def _partner_status(changes: TermsChanges, record: Record[Any]) -> None:
    changes.statuses.append((record.payload.partner_id, record.payload.status, record.occurred_at))


FOLDS: dict[type[Event], Callable[[TermsChanges, Record[Any]], None]] = {
    OfferCreated: _offer_state, OfferUpdated: _offer_state, OfferStatusChanged: _offer_status,
    RelationshipSet: _relationship, PartnerCreated: _partner_status, PartnerUpdated: _partner_status,
    PartnerStatusChanged: _partner_status,
}
"""The partners events that change attribution's terms views, and how."""


def handle_partners(run: Run, store: TermsStore) -> Changes:
    """The terms views a segment of partners events changes. Each offer or relationship
    version is stamped with its event's id, which the decisions priced with it name."""
    changes = TermsChanges(store.offer_terms({r.payload.offer_id for r in run
                                              if isinstance(r.payload, OfferStatusChanged)}))
    for record in run:
        FOLDS[type(record.payload)](changes, record)
    return Changes(writes=[*store.offer_versions(changes.offers),
                           *store.relationship_versions(changes.relationships),
                           *store.partner_statuses_written(changes.statuses),
                           *store.coupons_written(changes.coupons)])


class TermsStore(Terms, TermsWrites, Protocol):
    """What the partners consumer reads and writes."""
