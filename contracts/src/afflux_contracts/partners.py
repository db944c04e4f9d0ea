"""Events of ``afflux.partners.v1``: partners, offers and partner-offer relationships."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.topics import PARTNERS
from afflux_contracts.values import Currency, DecimalString


class PartnerStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"
    REJECTED = "rejected"


class OfferStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    PENDING = "pending"
    DELETED = "deleted"


class Visibility(StrEnum):
    PUBLIC = "public"
    REQUIRE_APPROVAL = "require_approval"
    PRIVATE = "private"


class PayoutType(StrEnum):
    CPA = "cpa"
    CPS = "cps"
    CPA_CPS = "cpa_cps"
    CPC = "cpc"


class BillingFrequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    MANUAL = "manual"


class Terms(BaseModel):
    """How a conversion is priced: a flat ``amount`` (CPA, CPC), a ``percent`` of the
    sale (CPS), or both (CPA+CPS). Used for payout (partner) and revenue (advertiser)."""

    model_config = ConfigDict(frozen=True)

    type: PayoutType
    amount: DecimalString | None = None
    percent: DecimalString | None = None


class Billing(BaseModel):
    model_config = ConfigDict(frozen=True)

    currency: Currency
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: DecimalString = Field(default=Decimal(0))


class ConversionSecurity(BaseModel):
    """Who may report a conversion on an offer. The postback token itself never travels
    on the log: only its SHA-256 (hex), which tracking compares a presented token with."""

    model_config = ConfigDict(frozen=True)

    token_required: bool = True
    token_sha256: str | None = None
    allowed_ips: tuple[str, ...] = ()
    """IP addresses or CIDR networks a postback may come from (empty: any)."""
    pixel_allowed: bool = False
    """Whether the browser conversion pixel (``/pixel``, no token) may report conversions."""


class PartnerCreated(Event):
    topic: ClassVar = PARTNERS

    partner_id: str
    name: str
    email: str
    type: str | None = None
    status: PartnerStatus = PartnerStatus.ACTIVE
    tags: tuple[str, ...] = ()
    billing: Billing | None = None

    def partition_key(self) -> str:
        return self.partner_id


class PartnerStatusChanged(Event):
    topic: ClassVar = PARTNERS

    partner_id: str
    status: PartnerStatus

    def partition_key(self) -> str:
        return self.partner_id


class OfferCreated(Event):
    topic: ClassVar = PARTNERS

    offer_id: str
    name: str
    destination_url: str
    status: OfferStatus = OfferStatus.ACTIVE
    visibility: Visibility = Visibility.REQUIRE_APPROVAL
    currency: Currency
    payout: Terms
    revenue: Terms | None = None
    attribution_window_days: int = 30
    fallback_url: str | None = None
    conversion_security: ConversionSecurity | None = None
    """``None`` only on offers created before conversion security existed: no check."""

    def partition_key(self) -> str:
        return self.offer_id


class OfferStatusChanged(Event):
    topic: ClassVar = PARTNERS

    offer_id: str
    status: OfferStatus

    def partition_key(self) -> str:
        return self.offer_id


class RelationshipSet(Event):
    """The whole current state of one partner's relationship with one offer."""

    topic: ClassVar = PARTNERS

    offer_id: str
    partner_id: str
    approved: bool
    payout: Terms | None = None
    revenue: Terms | None = None
    coupon_codes: tuple[str, ...] = ()
    postback_url: str | None = None

    def partition_key(self) -> str:
        return f"{self.offer_id}:{self.partner_id}"
