"""Stored domain events -> the public events of ``afflux.partners.v1``.

The only module that knows both the domain and the contracts. Domain events are
matched by their stored topic (fixed forever) and translated field by field; the
envelope's event_id is derived from the stored event, so a relay that re-sends
after a crash sends the same id and consumers drop the duplicate.
"""

from __future__ import annotations

import base64
from typing import Any

from afflux_contracts import (
    AllowDeny,
    Billing,
    BillingConversion,
    BillingFrequency,
    Cap,
    CapMetric,
    CapPeriod,
    Contact,
    ConversionSecurity,
    CouponPrecedence,
    DayParting,
    FailTraffic,
    FailTrafficMode,
    FraudAction,
    FraudSettings,
    LandingPage,
    OfferCreated,
    OfferEvent,
    OfferPostbackTokenRotated,
    OfferStatus,
    OfferStatusChanged,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerCreated,
    PartnerPayoutProfileSet,
    PartnerPostback,
    PartnerStatus,
    PartnerStatusChanged,
    PartnerUpdated,
    PaymentMethodKind,
    PayoutType,
    PostbackMethod,
    RelationshipEvent,
    RelationshipSet,
    RoutedOffer,
    SmartLinkSet,
    Targeting,
    TaxForm,
    Terms,
    Tier,
    Visibility,
)
from afflux_contracts.creatives import BannerImage, CreativeKind, CreativeSet, CreativeStatus
from afflux_contracts.partners import (
    PartnerApplied,
    PartnerUserActivated,
    PartnerUserInvited,
    PartnerUserPasswordReset,
    PartnerUserRemoved,
    PartnerUserRole,
    PartnerUserStatus,
)
from afflux_partners.domain import values
from afflux_partners.domain.creative import CREATIVE_CREATED, CREATIVE_UPDATED
from afflux_partners.domain.offer import (
    OFFER_CREATED,
    OFFER_POSTBACK_TOKEN_ROTATED,
    OFFER_STATUS_CHANGED,
    OFFER_UPDATED,
    token_sha256,
)
from afflux_partners.domain.partner import (
    PARTNER_API_KEY_ISSUED,
    PARTNER_API_KEY_REVOKED,
    PARTNER_APPLIED,
    PARTNER_CREATED,
    PARTNER_STATUS_CHANGED,
    PARTNER_UPDATED,
    PARTNER_USER_ACTIVATED,
    PARTNER_USER_INVITED,
    PARTNER_USER_PASSWORD_RESET,
    PARTNER_USER_REMOVED,
)
from afflux_partners.domain.payout_profile import PROFILE_CREATED, PROFILE_SET
from afflux_partners.domain.relationship import RELATIONSHIP_CREATED, RELATIONSHIP_UPDATED
from afflux_partners.domain.smart_link import SMART_LINK_CREATED, SMART_LINK_UPDATED
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "partners"


def contract_terms(terms: values.Terms | None) -> Terms | None:
    if terms is None:
        return None
    return Terms(type=PayoutType(terms.type), amount=terms.amount, percent=terms.percent)


def _terms(terms: values.Terms) -> Terms:
    published = contract_terms(terms)
    assert published is not None
    return published


def contract_billing(billing: values.Billing | None) -> Billing | None:
    if billing is None:
        return None
    return Billing(
        currency=billing.currency,
        frequency=BillingFrequency(billing.frequency),
        minimum_payout=billing.minimum_payout,
        method=billing.method,
        conversion=BillingConversion(billing.conversion.value),
    )


def contract_caps(caps: Any) -> tuple[Cap, ...]:
    return tuple(Cap(metric=CapMetric(cap.metric), period=CapPeriod(cap.period), limit=cap.limit,
                     per_partner=cap.per_partner, hard=cap.hard) for cap in caps)


def contract_events(events: Any) -> tuple[OfferEvent, ...]:
    """An offer's events; none listed: the contract adds the default ``conversion``
    event from the offer's payout and revenue (so an edit of those reaches it)."""
    return tuple(OfferEvent(name=e.name, payout=_terms(e.payout), revenue=contract_terms(e.revenue),
                            allow_duplicates=e.allow_duplicates, requires_approval=e.requires_approval,
                            fires_partner_postback=e.fires_partner_postback,
                            max_sale_amount=e.max_sale_amount, max_payout=e.max_payout) for e in events)


def contract_fraud(fraud: values.FraudSettings | None) -> FraudSettings | None:
    if fraud is None:
        return None
    return FraudSettings(min_seconds_to_convert=fraud.min_seconds_to_convert,
                         max_conversions_per_ip_per_day=fraud.max_conversions_per_ip_per_day,
                         blocked_ips=fraud.blocked_ips, blocked_sub1=fraud.blocked_sub1,
                         action=FraudAction(fraud.action),
                         max_clicks_per_ip_per_day=fraud.max_clicks_per_ip_per_day,
                         max_clicks_per_visitor_per_day=fraud.max_clicks_per_visitor_per_day,
                         max_impressions_per_ip_per_day=fraud.max_impressions_per_ip_per_day,
                         blocked_subs=dict(fraud.blocked_subs))


def contract_targeting(targeting: values.Targeting | None) -> Targeting | None:
    if targeting is None:
        return None

    def lists(given: values.AllowDeny) -> AllowDeny:
        return AllowDeny(allow=given.allow, deny=given.deny)

    parting = targeting.day_parting
    return Targeting(countries=lists(targeting.countries), devices=lists(targeting.devices),
                     operating_systems=lists(targeting.operating_systems), browsers=lists(targeting.browsers),
                     referrer_domains=lists(targeting.referrer_domains),
                     day_parting=DayParting(time_zone=parting.time_zone, weekdays=parting.weekdays,
                                            hours=parting.hours) if parting is not None else None)


def contract_routed_offers(offers: Any) -> tuple[RoutedOffer, ...]:
    return tuple(RoutedOffer(offer_id=o.offer_id, weight=o.weight, priority=o.priority) for o in offers)


def contract_fail_traffic(fail_traffic: values.FailTraffic | None) -> FailTraffic | None:
    if fail_traffic is None:
        return None
    return FailTraffic(mode=FailTrafficMode(fail_traffic.mode),
                       offers=contract_routed_offers(fail_traffic.offers))


def contract_postback(postback: values.PartnerPostback | None) -> PartnerPostback | None:
    if postback is None:
        return None
    return PartnerPostback(url=postback.url, method=PostbackMethod(postback.method),
                           status_changes=postback.status_changes)


def contract_security(security: values.ConversionSecurity | None,
                      token_hash: str | None) -> ConversionSecurity | None:
    """The offer's conversion security as published: the token only as its SHA-256."""
    if security is None:
        return None
    return ConversionSecurity(
        token_required=security.token_required,
        token_sha256=token_hash,
        allowed_ips=security.allowed_ips,
        pixel_allowed=security.pixel_allowed,
        pixel_review=security.pixel_review,
    )


def _token_hash(event: Any) -> str | None:
    """The token's hash an offer event holds (events stored before tokens were kept
    hashed hold the token itself)."""
    hashed: str | None = getattr(event, "postback_token_sha256", None)
    token: str | None = getattr(event, "postback_token", None)
    return hashed or (token_sha256(token) if token is not None else None)


def _partner_state(event: Any) -> dict[str, Any]:
    """Created and updated alike carry the partner's whole profile."""
    return {
        "partner_id": event.originator_id.hex,
        "name": event.name,
        "email": event.email,
        "type": event.type,
        "tags": tuple(event.tags),
        "billing": contract_billing(event.billing),
        "manager": getattr(event, "manager", None),
        "contacts": tuple(Contact(name=c.name, email=c.email, role=c.role)
                          for c in getattr(event, "contacts", ())),
        "postback": contract_postback(getattr(event, "postback", None)),
    }


def _partner_created(event: Any) -> PartnerCreated:
    return PartnerCreated(status=PartnerStatus(event.status), **_partner_state(event))


def _partner_updated(event: Any) -> PartnerUpdated:
    return PartnerUpdated(status=PartnerStatus(event.status), changed=tuple(event.changed),
                          **_partner_state(event))


def _api_key_issued(event: Any) -> PartnerApiKeyIssued:
    return PartnerApiKeyIssued(partner_id=event.originator_id.hex, key_id=event.key_id,
                               key_sha256=event.key_sha256, prefix=event.prefix, issued_at=event.issued_at)


def _api_key_revoked(event: Any) -> PartnerApiKeyRevoked:
    return PartnerApiKeyRevoked(partner_id=event.originator_id.hex, key_id=event.key_id,
                                revoked_at=event.revoked_at)


def _partner_status_changed(event: Any) -> PartnerStatusChanged:
    previous = getattr(event, "previous", None)
    return PartnerStatusChanged(partner_id=event.originator_id.hex, status=PartnerStatus(event.status),
                                previous_status=PartnerStatus(previous) if previous else None,
                                reason=getattr(event, "reason", None))


def _partner_applied(event: Any) -> PartnerApplied:
    return PartnerApplied(partner_id=event.originator_id.hex, name=event.name, email=event.email,
                          company=event.company, website=event.website,
                          traffic_sources=tuple(event.traffic_sources), country=event.country,
                          terms_accepted_at=event.terms_accepted_at,
                          email_verified_at=event.email_verified_at)


def _user_state(event: Any, status: PartnerUserStatus) -> dict[str, Any]:
    return {"partner_id": event.originator_id.hex, "user_id": event.user_id, "email": event.email,
            "name": event.name, "role": PartnerUserRole(event.role), "status": status}


def _user_invited(event: Any) -> PartnerUserInvited:
    return PartnerUserInvited(**_user_state(event, PartnerUserStatus.INVITED), invited_by=event.invited_by,
                              expires_at=event.expires_at)


def _user_activated(event: Any) -> PartnerUserActivated:
    return PartnerUserActivated(**_user_state(event, PartnerUserStatus.ACTIVE))


def _user_removed(event: Any) -> PartnerUserRemoved:
    return PartnerUserRemoved(**_user_state(event, PartnerUserStatus.REMOVED), removed_by=event.removed_by)


def _password_reset(event: Any) -> PartnerUserPasswordReset:
    return PartnerUserPasswordReset(partner_id=event.originator_id.hex, user_id=event.user_id,
                                    reset_at=event.reset_at)


def _offer_state(event: Any) -> dict[str, Any]:
    """Created and updated alike carry the offer's whole state."""
    return {
        "offer_id": event.originator_id.hex,
        "name": event.name,
        "destination_url": event.destination_url,
        "status": OfferStatus(event.status),
        "visibility": Visibility(event.visibility),
        "currency": event.currency,
        "payout": contract_terms(event.payout),
        "revenue": contract_terms(event.revenue),
        "attribution_window_days": event.attribution_window_days,
        "fallback_url": event.fallback_url,
        "conversion_security": contract_security(getattr(event, "conversion_security", None),
                                                 _token_hash(event)),
        "events": contract_events(getattr(event, "events", ())),
        "caps": contract_caps(getattr(event, "caps", ())),
        "tiers": tuple(Tier(min_conversions=t.min_conversions, payout=_terms(t.payout))
                       for t in getattr(event, "tiers", ())),
        "fraud": contract_fraud(getattr(event, "fraud", None)),
        "coupon_precedence": CouponPrecedence(getattr(event, "coupon_precedence", "click_first")),
        "max_sale_amount": getattr(event, "max_sale_amount", None),
        "max_payout": getattr(event, "max_payout", None),
        "over_limit_action": FraudAction(getattr(event, "over_limit_action", FraudAction.REVIEW)),
        "unique_click_hours": getattr(event, "unique_click_hours", 24),
        "deep_link_domains": tuple(getattr(event, "deep_link_domains", ())),
        "landing_pages": tuple(LandingPage(id=page.id, name=page.name, url=page.url, weight=page.weight)
                               for page in getattr(event, "landing_pages", ())),
        "targeting": contract_targeting(getattr(event, "targeting", None)),
        "fail_traffic": contract_fail_traffic(getattr(event, "fail_traffic", None)),
    }


def _offer_created(event: Any) -> OfferCreated:
    return OfferCreated(**_offer_state(event))


def _offer_updated(event: Any) -> OfferUpdated:
    return OfferUpdated(changed=tuple(event.changed), **_offer_state(event))


def _offer_status_changed(event: Any) -> OfferStatusChanged:
    return OfferStatusChanged(offer_id=event.originator_id.hex, status=OfferStatus(event.status))


def _postback_token_rotated(event: Any) -> OfferPostbackTokenRotated:
    return OfferPostbackTokenRotated(offer_id=event.originator_id.hex, token_sha256=event.token_sha256,
                                     previous_token_sha256=event.previous_token_sha256,
                                     previous_valid_until=event.previous_valid_until)


def _relationship_set(event: Any) -> RelationshipSet:
    """Created and updated alike: each event carries the relationship's whole state."""
    return RelationshipSet(
        offer_id=event.offer_id,
        partner_id=event.partner_id,
        approved=event.approved,
        payout=contract_terms(event.payout),
        revenue=contract_terms(event.revenue),
        coupon_codes=tuple(event.coupon_codes),
        postback_url=event.postback_url,
        events=tuple(RelationshipEvent(name=e.name, payout=contract_terms(e.payout),
                                       revenue=contract_terms(e.revenue))
                     for e in getattr(event, "events", ())),
        caps=contract_caps(getattr(event, "caps", ())),
        postback_method=PostbackMethod(getattr(event, "postback_method", "get")),
        postback_status_changes=getattr(event, "postback_status_changes", False),
        application=getattr(event, "application", False),
        targeting=contract_targeting(getattr(event, "targeting", None)),
    )


def _smart_link_set(event: Any) -> SmartLinkSet:
    """Created and updated alike: each event carries the smart link's whole state."""
    return SmartLinkSet(smart_link_id=event.originator_id.hex, name=event.name,
                        offers=contract_routed_offers(event.offers), fallback_url=event.fallback_url)


def _creative_set(event: Any) -> CreativeSet:
    """Created and updated alike: the creative's whole state, its image's bytes included."""
    image = event.image
    return CreativeSet(
        creative_id=event.originator_id.hex, offer_id=event.offer_id, name=event.name,
        kind=CreativeKind(event.kind), status=CreativeStatus(event.status),
        image=BannerImage(format=image.format, width=image.width, height=image.height,
                          byte_size=image.byte_size, sha256=image.sha256,
                          data=base64.b64encode(image.data).decode(), filename=image.filename)
        if image is not None else None,
        alt_text=event.alt_text, link_text=event.link_text, subject_lines=tuple(event.subject_lines),
        from_lines=tuple(event.from_lines), html_body=event.html_body)


def _payout_profile_set(event: Any) -> PartnerPayoutProfileSet:
    """Created and set alike: the whole profile, its details sealed."""
    return PartnerPayoutProfileSet(
        partner_id=event.partner_id, country=event.country,
        tax_form=TaxForm(event.tax_form) if event.tax_form else None,
        payment_method=PaymentMethodKind(event.payment_method) if event.payment_method else None,
        complete=not event.missing, missing=tuple(event.missing), sealed=event.sealed,
        changed=tuple(event.changed), set_at=event.set_at)


TRANSLATIONS: dict[str, Translate] = {
    PARTNER_CREATED: _partner_created,
    PARTNER_UPDATED: _partner_updated,
    PARTNER_STATUS_CHANGED: _partner_status_changed,
    PARTNER_API_KEY_ISSUED: _api_key_issued,
    PARTNER_API_KEY_REVOKED: _api_key_revoked,
    PARTNER_APPLIED: _partner_applied,
    PARTNER_USER_INVITED: _user_invited,
    PARTNER_USER_ACTIVATED: _user_activated,
    PARTNER_USER_REMOVED: _user_removed,
    PARTNER_USER_PASSWORD_RESET: _password_reset,
    OFFER_CREATED: _offer_created,
    OFFER_UPDATED: _offer_updated,
    OFFER_STATUS_CHANGED: _offer_status_changed,
    OFFER_POSTBACK_TOKEN_ROTATED: _postback_token_rotated,
    RELATIONSHIP_CREATED: _relationship_set,
    RELATIONSHIP_UPDATED: _relationship_set,
    SMART_LINK_CREATED: _smart_link_set,
    SMART_LINK_UPDATED: _smart_link_set,
    PROFILE_CREATED: _payout_profile_set,
    PROFILE_SET: _payout_profile_set,
    CREATIVE_CREATED: _creative_set,
    CREATIVE_UPDATED: _creative_set,
}
"""Every stored event topic of this service and its public event."""


to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
