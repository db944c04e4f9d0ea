"""Events of ``afflux.attribution.v1``: attribution decisions, keyed by partner_id."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from afflux_contracts.event import Event
from afflux_contracts.topics import ATTRIBUTION
from afflux_contracts.values import DecimalString, Money, UtcDatetime


class ConversionStatus(StrEnum):
    PENDING = "pending"
    ATTRIBUTED = "attributed"
    REJECTED = "rejected"
    APPROVED = "approved"
    REVERSED = "reversed"


class RejectionReason(StrEnum):
    """Why a conversion earns nothing (Everflow's conversion error codes, by name)."""

    CLICK_NOT_FOUND = "click_not_found"
    CLICK_INVALID = "click_invalid"
    OUTSIDE_WINDOW = "outside_attribution_window"
    DUPLICATE = "duplicate"
    INACTIVE_OFFER = "inactive_offer"
    CURRENCY_MISMATCH = "currency_mismatch"
    MISSING_SALE_AMOUNT = "missing_sale_amount"
    COUPON_NOT_SUPPORTED = "coupon_not_supported"


class ConversionAttributed(Event):
    """A conversion credited to a partner, priced once with the terms in force then."""

    topic: ClassVar = ATTRIBUTION

    conversion_id: str
    transaction_id: str
    partner_id: str
    offer_id: str
    event: str
    order_id: str | None = None
    sale_amount: DecimalString | None = None
    payout: Money
    revenue: Money | None = None
    status: ConversionStatus = ConversionStatus.APPROVED
    clicked_at: UtcDatetime
    converted_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class ConversionRejected(Event):
    """A conversion that earns nothing, kept with its reason (never dropped)."""

    topic: ClassVar = ATTRIBUTION

    conversion_id: str
    reason: RejectionReason
    message: str
    transaction_id: str | None = None
    partner_id: str | None = None
    offer_id: str | None = None
    order_id: str | None = None
    converted_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id or self.transaction_id or self.conversion_id


class StatusChange(StrEnum):
    """What an advertiser's review did to a decided conversion. ``adjusted`` keeps it
    approved with a new payout; the others are the status it moved to."""

    APPROVED = "approved"
    REJECTED = "rejected"
    REVERSED = "reversed"
    ADJUSTED = "adjusted"


class ConversionStatusChanged(Event):
    """A reviewed conversion: approved, rejected, reversed (refund, chargeback) or
    adjusted to a new payout. ``payout`` is what the conversion earns after the change
    (the new amount for ``adjusted``); a reversal after payment is clawed back by payouts."""

    topic: ClassVar = ATTRIBUTION

    conversion_id: str
    partner_id: str
    offer_id: str
    status: StatusChange
    previous_status: ConversionStatus
    payout: Money
    reason: str | None = None
    note: str | None = None
    changed_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id
