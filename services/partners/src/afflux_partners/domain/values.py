"""The partners context's vocabulary: statuses, visibility, commission terms, billing,
contacts, postbacks, offer events, caps, tiers and fraud settings.

These are the domain's own types (plain Python), not the published contract's:
``application/published.py`` translates them, so the two can evolve apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


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
    CPM = "cpm"

    @property
    def takes_amount(self) -> bool:
        """A flat amount per conversion (CPA), per click (CPC) or per thousand impressions (CPM)."""
        return self in (PayoutType.CPA, PayoutType.CPC, PayoutType.CPM, PayoutType.CPA_CPS)

    @property
    def takes_percent(self) -> bool:
        """A share of the sale amount (CPS / RevShare)."""
        return self in (PayoutType.CPS, PayoutType.CPA_CPS)


CONVERSION_TYPES = frozenset({PayoutType.CPA, PayoutType.CPS, PayoutType.CPA_CPS})
"""Payout types that price a conversion (CPC and CPM price clicks and impressions)."""


class BillingFrequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    BIMONTHLY = "bimonthly"
    MONTHLY = "monthly"
    TWO_MONTHS = "two_months"
    QUARTERLY = "quarterly"
    MANUAL = "manual"


class BillingConversion(StrEnum):
    """Whether a partner is paid in its billing currency whatever it earned in, and at which
    day's rate: ``none`` pays each currency earned as it is."""

    NONE = "none"
    EARNED_DAY = "earned_day"
    PERIOD_END = "period_end"


@dataclass(frozen=True)
class Terms:
    """How a result is priced, for the partner (payout) or the advertiser (revenue):
    a flat ``amount`` in the offer's currency, a ``percent`` of the sale, or both."""

    type: PayoutType
    amount: Decimal | None = None
    percent: Decimal | None = None


@dataclass(frozen=True)
class Billing:
    """When a partner is paid: its statement frequency, and the minimum balance below
    which it carries over to the next period."""

    currency: str
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: Decimal = Decimal(0)
    method: str | None = None
    conversion: BillingConversion = BillingConversion.NONE
    """Paid in ``currency`` (converted at recorded rates: payouts'), or ``none``."""


@dataclass(frozen=True)
class ConversionSecurity:
    """Who may report a conversion on an offer: a server that knows the offer's postback
    token (unless ``token_required`` is off), from one of ``allowed_ips`` (IPs or CIDR
    networks; empty: anywhere); and browsers through the pixel, if ``pixel_allowed``."""

    token_required: bool = True
    allowed_ips: tuple[str, ...] = ()
    pixel_allowed: bool = False
    pixel_review: bool = True
    """Pixel conversions are held for review unless this is off (the pixel has no secret)."""


class PostbackMethod(StrEnum):
    GET = "get"
    POST = "post"


class CapMetric(StrEnum):
    CLICKS = "clicks"
    CONVERSIONS = "conversions"
    PAYOUT = "payout"
    REVENUE = "revenue"

    @property
    def counts(self) -> bool:
        """Clicks and conversions are counted (whole limits); payout and revenue are money."""
        return self in (CapMetric.CLICKS, CapMetric.CONVERSIONS)


class CapPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    LIFETIME = "lifetime"


class FraudAction(StrEnum):
    REJECT = "reject"
    REVIEW = "review"


class Standing(StrEnum):
    """Where a partner stands with an offer it has a relationship with."""

    APPROVED = "approved"
    PENDING = "pending"
    """The partner applied; the advertiser has not decided yet."""
    DECLINED = "declined"


class CouponPrecedence(StrEnum):
    CLICK_FIRST = "click_first"
    COUPON_FIRST = "coupon_first"


@dataclass(frozen=True)
class Contact:
    """A person at the partner: who to write to about what (``role``: billing, tech...)."""

    name: str
    email: str
    role: str | None = None


@dataclass(frozen=True)
class PartnerPostback:
    """The partner's own server-to-server postback for all its offers (a relationship's
    postback URL, when set, is used instead for that offer)."""

    url: str
    method: PostbackMethod = PostbackMethod.GET
    status_changes: bool = False


@dataclass(frozen=True)
class OfferEvent:
    """One conversion event of an offer (lead, sale, upsell...), priced on its own."""

    name: str
    payout: Terms
    revenue: Terms | None = None
    allow_duplicates: bool = False
    requires_approval: bool = False
    fires_partner_postback: bool = True
    max_sale_amount: Decimal | None = None
    """This event's bounds per conversion, instead of the offer's (``None``: the offer's)."""
    max_payout: Decimal | None = None


@dataclass(frozen=True)
class Cap:
    """A limit per calendar period (UTC), offer-wide or per partner; hard caps refuse,
    soft caps only report."""

    metric: CapMetric
    period: CapPeriod
    limit: Decimal
    per_partner: bool = False
    hard: bool = True


@dataclass(frozen=True)
class Tier:
    """A payout once the partner's approved conversions this month reach a threshold."""

    min_conversions: int
    payout: Terms


BLOCKABLE_SUBS = ("sub2", "sub3", "sub4", "sub5")
"""Subs with a deny list in ``FraudSettings.blocked_subs`` (sub1 has ``blocked_sub1``)."""


@dataclass(frozen=True)
class FraudSettings:
    """An offer's fraud rules: on conversions, and (the IP, visitor and sub rules) on
    clicks and impressions before they are priced. Per-day limits count per UTC day."""

    min_seconds_to_convert: int | None = None
    max_conversions_per_ip_per_day: int | None = None
    blocked_ips: tuple[str, ...] = ()
    blocked_sub1: tuple[str, ...] = ()
    action: FraudAction = FraudAction.REJECT
    max_clicks_per_ip_per_day: int | None = None
    max_clicks_per_visitor_per_day: int | None = None
    max_impressions_per_ip_per_day: int | None = None
    blocked_subs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(sub name, deny list)`` pairs for sub2..sub5, in sub order (hashable, unlike a dict)."""


@dataclass(frozen=True)
class LandingPage:
    """One of an offer's landing pages: a link names it (``url_id=``), else the tracker
    rotates the pages of positive weight in proportion to their weights (0: named only)."""

    id: str
    name: str
    url: str
    weight: int = 1


DEVICE_TYPES = ("desktop", "mobile", "tablet", "other")
OPERATING_SYSTEMS = ("windows", "macos", "ios", "android", "linux", "chromeos", "other")
BROWSERS = ("chrome", "safari", "firefox", "edge", "opera", "samsung", "other")
"""The values tracking reads from a user agent: what targeting may name."""


@dataclass(frozen=True)
class AllowDeny:
    """One targeting dimension: denied values fail, and when ``allow`` lists any, so does
    every value it does not list."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class DayParting:
    """The weekdays (1 Monday to 7) and hours (0 to 23) the offer takes traffic, in
    ``time_zone`` (IANA); empty: any."""

    time_zone: str = "UTC"
    weekdays: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()


@dataclass(frozen=True)
class Targeting:
    """Which visitors an offer takes: by country, device, operating system, browser,
    referring domain and time of week."""

    countries: AllowDeny = AllowDeny()
    devices: AllowDeny = AllowDeny()
    operating_systems: AllowDeny = AllowDeny()
    browsers: AllowDeny = AllowDeny()
    referrer_domains: AllowDeny = AllowDeny()
    day_parting: DayParting | None = None


class FailTrafficMode(StrEnum):
    PRIORITY = "priority"
    WEIGHT = "weight"


@dataclass(frozen=True)
class RoutedOffer:
    """An offer a click may be sent to: by fail traffic (in the list's order, or by
    ``weight``) or by a smart link (lowest ``priority`` first, by ``weight`` among equals)."""

    offer_id: str
    weight: int = 1
    priority: int = 1


@dataclass(frozen=True)
class FailTraffic:
    """Where an offer sends the clicks it cannot take, before its fallback URL."""

    mode: FailTrafficMode = FailTrafficMode.PRIORITY
    offers: tuple[RoutedOffer, ...] = ()


@dataclass(frozen=True)
class RelationshipEvent:
    """A partner's custom payout and/or revenue for one event of the offer."""

    name: str
    payout: Terms | None = None
    revenue: Terms | None = None


@dataclass(frozen=True)
class ApiKey:
    """A partner API key as remembered: never the key, only its SHA-256 and its prefix."""

    key_id: str
    key_sha256: str
    prefix: str
    issued_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
