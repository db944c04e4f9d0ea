"""The JSON bodies of the partners admin API (public HTTP contract v1).

Requests are parsed strictly (unknown fields are refused, so a misspelt or not yet
supported option is never silently dropped); business rules are then the
domain's. Responses carry money as decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from afflux_contracts.values import DecimalString
from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.relationship import Relationship
from afflux_partners.domain.values import (
    Billing,
    BillingFrequency,
    ConversionSecurity,
    OfferStatus,
    PartnerStatus,
    PayoutType,
    Terms,
    Visibility,
)

Number = Annotated[Decimal, Field(allow_inf_nan=False)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TermsIn(Request):
    type: PayoutType
    amount: Number | None = None
    percent: Number | None = None

    def to_domain(self) -> Terms:
        return Terms(type=self.type, amount=self.amount, percent=self.percent)


class BillingIn(Request):
    currency: str
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: Number = Decimal(0)

    def to_domain(self) -> Billing:
        return Billing(currency=self.currency, frequency=self.frequency, minimum_payout=self.minimum_payout)


class PartnerIn(Request):
    name: str
    email: str
    type: str | None = None
    status: PartnerStatus = PartnerStatus.ACTIVE
    tags: list[str] = Field(default_factory=list)
    billing: BillingIn | None = None


class PartnerStatusIn(Request):
    status: PartnerStatus


class ConversionSecurityIn(Request):
    token_required: StrictBool = True
    allowed_ips: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    pixel_allowed: StrictBool = False

    def to_domain(self) -> ConversionSecurity:
        return ConversionSecurity(self.token_required, tuple(self.allowed_ips), self.pixel_allowed)


class ConversionSecurityOut(BaseModel):
    token_required: bool
    allowed_ips: list[str]
    pixel_allowed: bool


class OfferIn(Request):
    name: str
    destination_url: str
    status: OfferStatus = OfferStatus.ACTIVE
    visibility: Visibility = Visibility.REQUIRE_APPROVAL
    currency: str
    payout: TermsIn
    revenue: TermsIn | None = None
    attribution_window_days: int = 30
    fallback_url: str | None = None
    conversion_security: ConversionSecurityIn | None = None


class OfferStatusIn(Request):
    status: OfferStatus


class RelationshipIn(Request):
    approved: StrictBool
    payout: TermsIn | None = None
    revenue: TermsIn | None = None
    coupon_codes: list[str] = Field(default_factory=list)
    postback_url: str | None = None


class TermsOut(BaseModel):
    type: PayoutType
    amount: DecimalString | None
    percent: DecimalString | None

    @classmethod
    def of(cls, terms: Terms | None) -> TermsOut | None:
        if terms is None:
            return None
        return cls(type=terms.type, amount=terms.amount, percent=terms.percent)


class BillingOut(BaseModel):
    currency: str
    frequency: BillingFrequency
    minimum_payout: DecimalString


class PartnerOut(BaseModel):
    partner_id: str
    name: str
    email: str
    type: str | None
    status: PartnerStatus
    tags: list[str]
    billing: BillingOut | None
    created_at: datetime

    @classmethod
    def of(cls, partner: Partner) -> PartnerOut:
        billing = partner.billing
        return cls(
            partner_id=partner.partner_id,
            name=partner.name,
            email=partner.email,
            type=partner.type,
            status=partner.status,
            tags=list(partner.tags),
            billing=BillingOut(currency=billing.currency, frequency=billing.frequency,
                               minimum_payout=billing.minimum_payout) if billing is not None else None,
            created_at=partner.created_on,
        )


class OfferOut(BaseModel):
    offer_id: str
    name: str
    destination_url: str
    status: OfferStatus
    visibility: Visibility
    currency: str
    payout: TermsOut
    revenue: TermsOut | None
    attribution_window_days: int
    fallback_url: str | None
    conversion_security: ConversionSecurityOut | None
    postback_token: str | None = Field(
        description="the secret an advertiser's server sends with each postback (`token` or the "
                    "X-Afflux-Postback-Token header); shown to admins only")
    created_at: datetime

    @classmethod
    def of(cls, offer: Offer) -> OfferOut:
        payout = TermsOut.of(offer.payout)
        assert payout is not None
        return cls(
            offer_id=offer.offer_id,
            name=offer.name,
            destination_url=offer.destination_url,
            status=offer.status,
            visibility=offer.visibility,
            currency=offer.currency,
            payout=payout,
            revenue=TermsOut.of(offer.revenue),
            attribution_window_days=offer.attribution_window_days,
            fallback_url=offer.fallback_url,
            conversion_security=_security_out(offer.conversion_security),
            postback_token=offer.postback_token,
            created_at=offer.created_on,
        )


class RelationshipOut(BaseModel):
    offer_id: str
    partner_id: str
    approved: bool
    payout: TermsOut | None
    revenue: TermsOut | None
    coupon_codes: list[str]
    postback_url: str | None

    @classmethod
    def of(cls, relationship: Relationship) -> RelationshipOut:
        return cls(
            offer_id=relationship.offer_id,
            partner_id=relationship.partner_id,
            approved=relationship.approved,
            payout=TermsOut.of(relationship.payout),
            revenue=TermsOut.of(relationship.revenue),
            coupon_codes=list(relationship.coupon_codes),
            postback_url=relationship.postback_url,
        )


class TrackingLinkOut(BaseModel):
    url: str


def _security_out(security: ConversionSecurity | None) -> ConversionSecurityOut | None:
    if security is None:
        return None
    return ConversionSecurityOut(token_required=security.token_required,
                                 allowed_ips=list(security.allowed_ips),
                                 pixel_allowed=security.pixel_allowed)
