"""Events of ``afflux.attribution.v1``: attribution decisions, keyed by partner_id."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

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
    COUPON_NOT_FOUND = "coupon_not_found"
    """The coupon code is not assigned to any partner on the offer."""
    EVENT_NOT_ON_OFFER = "event_not_on_offer"
    OVER_CAP = "over_cap"
    """A hard cap (conversions, payout or revenue) would be exceeded."""
    PARTNER_INACTIVE = "partner_inactive"
    PARTNER_SUSPENDED = "partner_suspended"
    FRAUD_TOO_FAST = "fraud_too_fast"
    """Converted sooner after the click than the offer's ``min_seconds_to_convert``."""
    FRAUD_IP_LIMIT = "fraud_ip_limit"
    """The IP already converted ``max_conversions_per_ip_per_day`` times on the offer today."""
    FRAUD_BLOCKED_IP = "fraud_blocked_ip"
    FRAUD_BLOCKED_SUB1 = "fraud_blocked_sub1"
    FRAUD_BLOCKED_SUB = "fraud_blocked_sub"
    """A click's or impression's sub2..sub5 is on the offer's deny list for it."""
    OVER_MAX_SALE_AMOUNT = "over_max_sale_amount"
    """The sale amount is above the offer's (or event's) ``max_sale_amount`` and the
    offer's ``over_limit_action`` rejects (``review`` holds it pending instead)."""
    OVER_MAX_PAYOUT = "over_max_payout"
    """The payout is above the offer's (or event's) ``max_payout``; as above."""
    NOT_UNIQUE = "not_unique"
    """Traffic: the visitor's click (impression) on the offer was already counted within
    the offer's ``unique_click_hours``; it is indexed, never paid again."""
    FRAUD_CLICK_IP_LIMIT = "fraud_click_ip_limit"
    """Traffic: the IP reached the offer's ``max_clicks_per_ip_per_day``."""
    FRAUD_CLICK_VISITOR_LIMIT = "fraud_click_visitor_limit"
    """Traffic: the visitor reached the offer's ``max_clicks_per_visitor_per_day``."""
    FRAUD_IMPRESSION_IP_LIMIT = "fraud_impression_ip_limit"
    """Traffic: the IP reached the offer's ``max_impressions_per_ip_per_day``."""


class RuleOutcome(StrEnum):
    """What one rule said about a conversion. ``held``: it keeps the conversion pending
    (review); ``failed`` on a soft cap only reports it."""

    PASSED = "passed"
    FAILED = "failed"
    HELD = "held"
    SKIPPED = "skipped"


class RuleCheck(BaseModel):
    """One rule attribution checked, in the order checked: "why this amount"."""

    model_config = ConfigDict(frozen=True)

    rule: str
    outcome: RuleOutcome
    detail: str | None = None


class DecisionTerms(BaseModel):
    """The terms a decision used: the partners-log event ids of the offer version and
    of the relationship version in force (``None``: the partner had no relationship),
    the offer event priced, and where the payout came from (offer_event, tier,
    relationship)."""

    model_config = ConfigDict(frozen=True)

    offer_event_id: str | None = None
    relationship_event_id: str | None = None
    event: str | None = None
    payout_source: str | None = None


class Appeal(BaseModel):
    """Set on a ``ConversionAttributed`` that credits a conversion attribution had
    rejected by a rule (fraud, cap, duplicate...): staff approved it on appeal. Every
    consumer treats a ``ConversionAttributed`` after a ``ConversionRejected`` of the same
    ``conversion_id`` as the conversion now being credited (priced with the terms in
    force at its conversion time). ``by``: who approved it (the credential's name);
    ``reason``: why."""

    model_config = ConfigDict(frozen=True)

    rejected_reason: RejectionReason
    by: str | None = None
    reason: str | None = None


class ConversionAttributed(Event):
    """A conversion credited to a partner, priced once with the terms in force then.

    ``status`` ``pending`` means held for review, and ``reason`` says why (the rule that
    held it: ``pixel_review``, ``max_sale_amount``, ``max_payout``, ``requires_approval``,
    ``fraud_*``); ``None`` when approved. ``sub1``..``sub5`` are the click's subs (none
    for a coupon's clickless conversion), so no consumer needs to read the click topic.
    ``appeal`` is set when staff approved a conversion rejected by a rule."""

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
    coupon_code: str | None = None
    """Set when the coupon credited the partner (then ``transaction_id`` is the coupon
    code and ``clicked_at`` the conversion time: a clickless conversion has no click)."""
    terms: DecisionTerms | None = None
    trace: tuple[RuleCheck, ...] = ()
    reason: str | None = None
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None
    appeal: Appeal | None = None

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
    terms: DecisionTerms | None = None
    trace: tuple[RuleCheck, ...] = ()

    def partition_key(self) -> str:
        return self.partner_id or self.transaction_id or self.conversion_id


class PricingModel(StrEnum):
    CPC = "cpc"
    CPM = "cpm"


class ClickPriced(Event):
    """A click on a CPC offer that earns: valid, the visitor's first on the offer within
    its ``unique_click_hours``, past the offer's click fraud rules and within its payout
    caps; priced once with the terms in force when it was made. Other clicks earn
    nothing (attribution's click index keeps why)."""

    topic: ClassVar = ATTRIBUTION

    transaction_id: str
    partner_id: str
    offer_id: str
    payout: Money
    revenue: Money | None = None
    clicked_at: UtcDatetime
    priced_at: UtcDatetime
    model: PricingModel = PricingModel.CPC
    terms: DecisionTerms | None = None
    sub1: str | None = None
    """``sub1``..``sub5``: the click's subs, so that no consumer needs to read the click
    topic (none in clicks priced before they were carried)."""
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None

    def partition_key(self) -> str:
        return self.partner_id


class ImpressionsPriced(Event):
    """A full thousand earning impressions of one partner on a CPM offer (valid, unique
    per visitor within the offer's ``unique_click_hours``, past its fraud rules, within
    its payout caps), priced at the
    CPM amount in force when the thousandth was made (``block`` counts the thousands:
    1 for impressions 1..1000, 2 for 1001..2000...). Impressions short of a thousand
    earn nothing yet: a per-impression price would be finer than the currency's cent."""

    topic: ClassVar = ATTRIBUTION

    partner_id: str
    offer_id: str
    block: int
    impressions: int = 1000
    payout: Money
    revenue: Money | None = None
    last_impression_id: str
    last_impressed_at: UtcDatetime
    priced_at: UtcDatetime
    model: PricingModel = PricingModel.CPM
    terms: DecisionTerms | None = None

    def partition_key(self) -> str:
        return self.partner_id


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
