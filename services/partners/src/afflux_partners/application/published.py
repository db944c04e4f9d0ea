"""Stored domain events -> the public events of ``afflux.partners.v1``.

The only module that knows both the domain and the contracts. Domain events are
matched by their stored topic (fixed forever) and translated field by field; the
envelope's event_id is derived from the stored event, so a relay that re-sends
after a crash sends the same id and consumers drop the duplicate.
"""

from __future__ import annotations

import hashlib
from typing import Any

from afflux_contracts import (
    Billing,
    BillingFrequency,
    ConversionSecurity,
    Event,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    PayoutType,
    RelationshipSet,
    Terms,
    Visibility,
)
from afflux_partners.domain import values
from afflux_partners.domain.offer import OFFER_CREATED, OFFER_STATUS_CHANGED
from afflux_partners.domain.partner import PARTNER_CREATED, PARTNER_STATUS_CHANGED
from afflux_partners.domain.relationship import RELATIONSHIP_CREATED, RELATIONSHIP_UPDATED
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "partners"


def contract_terms(terms: values.Terms | None) -> Terms | None:
    if terms is None:
        return None
    return Terms(type=PayoutType(terms.type), amount=terms.amount, percent=terms.percent)


def contract_billing(billing: values.Billing | None) -> Billing | None:
    if billing is None:
        return None
    return Billing(
        currency=billing.currency,
        frequency=BillingFrequency(billing.frequency),
        minimum_payout=billing.minimum_payout,
    )


def contract_security(security: values.ConversionSecurity | None,
                      token: str | None) -> ConversionSecurity | None:
    """The offer's conversion security as published: the token only as its SHA-256."""
    if security is None:
        return None
    return ConversionSecurity(
        token_required=security.token_required,
        token_sha256=hashlib.sha256(token.encode()).hexdigest() if token is not None else None,
        allowed_ips=security.allowed_ips,
        pixel_allowed=security.pixel_allowed,
    )


def _partner_created(event: Any) -> Event:
    return PartnerCreated(
        partner_id=event.originator_id.hex,
        name=event.name,
        email=event.email,
        type=event.type,
        status=PartnerStatus(event.status),
        tags=tuple(event.tags),
        billing=contract_billing(event.billing),
    )


def _partner_status_changed(event: Any) -> Event:
    return PartnerStatusChanged(partner_id=event.originator_id.hex, status=PartnerStatus(event.status))


def _offer_created(event: Any) -> Event:
    return OfferCreated(
        offer_id=event.originator_id.hex,
        name=event.name,
        destination_url=event.destination_url,
        status=OfferStatus(event.status),
        visibility=Visibility(event.visibility),
        currency=event.currency,
        payout=contract_terms(event.payout),
        revenue=contract_terms(event.revenue),
        attribution_window_days=event.attribution_window_days,
        fallback_url=event.fallback_url,
        conversion_security=contract_security(getattr(event, "conversion_security", None),
                                              getattr(event, "postback_token", None)),
    )


def _offer_status_changed(event: Any) -> Event:
    return OfferStatusChanged(offer_id=event.originator_id.hex, status=OfferStatus(event.status))


def _relationship_set(event: Any) -> Event:
    """Created and updated alike: each event carries the relationship's whole state."""
    return RelationshipSet(
        offer_id=event.offer_id,
        partner_id=event.partner_id,
        approved=event.approved,
        payout=contract_terms(event.payout),
        revenue=contract_terms(event.revenue),
        coupon_codes=tuple(event.coupon_codes),
        postback_url=event.postback_url,
    )


TRANSLATIONS: dict[str, Translate] = {
    PARTNER_CREATED: _partner_created,
    PARTNER_STATUS_CHANGED: _partner_status_changed,
    OFFER_CREATED: _offer_created,
    OFFER_STATUS_CHANGED: _offer_status_changed,
    RELATIONSHIP_CREATED: _relationship_set,
    RELATIONSHIP_UPDATED: _relationship_set,
}
"""Every stored event topic of this service and its public event."""


to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
