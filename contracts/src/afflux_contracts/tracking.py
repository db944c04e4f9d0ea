"""Events of ``afflux.tracking.v1``: clicks and conversion reports, keyed by transaction_id."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from afflux_contracts.event import Event
from afflux_contracts.topics import TRACKING
from afflux_contracts.values import Currency, DecimalString, UtcDatetime


class ClickOutcome(StrEnum):
    """Why a click went where it went. Only ``valid`` clicks can earn a conversion."""

    VALID = "valid"
    OFFER_PAUSED = "offer_paused"
    OFFER_INACTIVE = "offer_inactive"
    PARTNER_INACTIVE = "partner_inactive"
    PARTNER_NOT_APPROVED = "partner_not_approved"


class ClickRecorded(Event):
    topic: ClassVar = TRACKING

    transaction_id: str
    offer_id: str
    partner_id: str
    clicked_at: UtcDatetime
    outcome: ClickOutcome = ClickOutcome.VALID
    redirect_url: str | None = None
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None

    @property
    def valid(self) -> bool:
        return self.outcome is ClickOutcome.VALID

    def partition_key(self) -> str:
        return self.transaction_id


class ConversionReported(Event):
    """An advertiser's report of a conversion, exactly as received and validated."""

    topic: ClassVar = TRACKING

    conversion_id: str
    transaction_id: str | None = None
    coupon_code: str | None = None
    event: str = "conversion"
    amount: DecimalString | None = None
    currency: Currency | None = None
    order_id: str | None = None
    reported_at: UtcDatetime
    method: str = "postback"
    ip: str | None = None

    def partition_key(self) -> str:
        key = self.transaction_id or self.coupon_code
        if key is None:
            raise ValueError(f"conversion {self.conversion_id} has no transaction_id or coupon")
        return key
