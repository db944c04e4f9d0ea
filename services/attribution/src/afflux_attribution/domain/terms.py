"""The commercial terms attribution prices by, and which version of them is in force.

Terms change over time (an offer is paused, a partner gets a custom payout), and a
conversion is priced once, with the terms in force when it happened (ARCHITECTURE.md,
"Replay"). So terms are kept as versions stamped ``effective_from`` (the partners
event's ``occurred_at``) and looked up by the conversion's time.

The codes (payout type, offer status) are the published vocabulary of
``afflux.partners.v1``: attribution reads them, it does not define them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from afflux_contracts import OfferStatus, PayoutType


@dataclass(frozen=True)
class PricingTerms:
    """How one conversion is priced: a flat ``amount`` (CPA), a ``percent`` of the sale
    (CPS), both (CPA+CPS), or nothing per conversion (CPC pays per click)."""

    type: PayoutType
    amount: Decimal | None = None
    percent: Decimal | None = None


@dataclass(frozen=True)
class EventTerms:
    """One conversion event of an offer (lead, sale, upsell...) and its switches."""

    name: str
    payout: PricingTerms
    revenue: PricingTerms | None = None
    allow_duplicates: bool = False
    requires_approval: bool = False
    max_sale_amount: Decimal | None = None
    max_payout: Decimal | None = None
    """Per-event bounds of one conversion; they override the offer's."""


@dataclass(frozen=True)
class CustomEventTerms:
    """A partner's custom payout and/or revenue for one event of an offer."""

    name: str
    payout: PricingTerms | None = None
    revenue: PricingTerms | None = None


@dataclass(frozen=True)
class CapRule:
    """A limit on ``metric`` (clicks, conversions, payout, revenue) per ``period`` (day,
    week, month, lifetime), offer-wide or per partner; a soft one is only reported."""

    metric: str
    period: str
    limit: Decimal
    per_partner: bool = False
    hard: bool = True


@dataclass(frozen=True)
class TierRule:
    """A payout that applies once the partner's approved conversions on the offer this
    (UTC) month reach ``min_conversions``."""

    min_conversions: int
    payout: PricingTerms


@dataclass(frozen=True)
class FraudRules:
    """An offer's fraud checks; ``action`` is ``reject`` or ``review`` (hold pending) for
    conversions (traffic over a rule is never paid). Blocked IPs (addresses or CIDRs) and
    subs apply to conversions, clicks and impressions; the daily limits count per UTC day.
    ``blocked_subs``: (sub name, blocked values) for sub2..sub5."""

    min_seconds_to_convert: int | None = None
    max_conversions_per_ip_per_day: int | None = None
    blocked_ips: tuple[str, ...] = ()
    blocked_sub1: tuple[str, ...] = ()
    action: str = "reject"
    max_clicks_per_ip_per_day: int | None = None
    max_clicks_per_visitor_per_day: int | None = None
    max_impressions_per_ip_per_day: int | None = None
    blocked_subs: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class OfferTerms:
    """One version of an offer's terms, in force from ``effective_from`` on.
    ``event_id`` is the partners-log event that made this version (named in decisions)."""

    offer_id: str
    effective_from: datetime
    currency: str
    payout: PricingTerms
    revenue: PricingTerms | None
    attribution_window_days: int
    status: OfferStatus
    events: tuple[EventTerms, ...] = ()
    caps: tuple[CapRule, ...] = ()
    tiers: tuple[TierRule, ...] = ()
    fraud: FraudRules | None = None
    coupon_precedence: str = "click_first"
    event_id: str | None = None
    max_sale_amount: Decimal | None = None
    max_payout: Decimal | None = None
    """Bounds of one conversion (an event's own bounds override them)."""
    over_limit_action: str = "review"
    """Above a bound: ``review`` (held pending) or ``reject``."""
    unique_click_hours: int = 24
    """A visitor's clicks (impressions) on the offer earn once per window of this many hours."""
    pixel_review: bool = True
    """Conversions reported by the browser pixel are held for review."""


@dataclass(frozen=True)
class RelationshipTerms:
    """One version of what is customised for one partner on one offer."""

    offer_id: str
    partner_id: str
    effective_from: datetime
    approved: bool
    payout: PricingTerms | None = None
    revenue: PricingTerms | None = None
    events: tuple[CustomEventTerms, ...] = ()
    caps: tuple[CapRule, ...] = ()
    event_id: str | None = None


def offer_terms_in_force(versions: Sequence[OfferTerms], at: datetime) -> OfferTerms | None:
    """The latest version that took effect at or before ``at``.

    When every version is later than ``at``, the earliest one: a conversion is only
    priced when its click exists, so the offer existed when the click was made, and a
    first version stamped after the conversion only shows the two services' clocks
    disagreeing. ``None`` only when no version is known at all.
    """
    if not versions:
        return None
    ordered = sorted(versions, key=lambda version: version.effective_from)
    earlier = [version for version in ordered if version.effective_from <= at]
    return earlier[-1] if earlier else ordered[0]


def relationship_terms_in_force(
    versions: Sequence[RelationshipTerms], at: datetime
) -> RelationshipTerms | None:
    """The latest version that took effect at or before ``at``; a custom payout set
    after the conversion does not reach back to it."""
    earlier = [version for version in versions if version.effective_from <= at]
    return max(earlier, key=lambda version: version.effective_from) if earlier else None
