"""Events of ``afflux.partners.v1``: partners, offers and partner-offer relationships.

Fields are only ever added, with defaults, so events written before a field existed
still decode. ``PartnerUpdated`` and ``OfferUpdated`` carry the aggregate's WHOLE new
state (consumers replace their row) plus the names of the fields that changed.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from afflux_contracts.event import Event
from afflux_contracts.topics import PARTNERS
from afflux_contracts.values import Currency, DecimalString, UtcDatetime

DEFAULT_EVENT = "conversion"
"""The offer's base conversion event: what a postback without ``event=`` reports."""


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
    """CPA: an amount per conversion; CPS: a percent of the sale; CPA_CPS: both;
    CPC: an amount per valid click; CPM: an amount per thousand impressions."""

    CPA = "cpa"
    CPS = "cps"
    CPA_CPS = "cpa_cps"
    CPC = "cpc"
    CPM = "cpm"


class BillingFrequency(StrEnum):
    """How often a partner's statement is closed. ``bimonthly``: twice a month (the 15th
    and the month's end); ``two_months``: every second month; ``biweekly`` (every two
    weeks) is kept for partners created with it."""

    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    BIMONTHLY = "bimonthly"
    MONTHLY = "monthly"
    TWO_MONTHS = "two_months"
    QUARTERLY = "quarterly"
    MANUAL = "manual"


class BillingConversion(StrEnum):
    """Whether a partner is paid in its billing currency: ``none`` (the default) pays it in
    each currency it earned; ``earned_day`` converts each statement line at the rate in
    force on the day it was earned; ``period_end`` at the rate in force on the day its
    period closed."""

    NONE = "none"
    EARNED_DAY = "earned_day"
    PERIOD_END = "period_end"


class PostbackMethod(StrEnum):
    GET = "get"
    POST = "post"


class CapMetric(StrEnum):
    CLICKS = "clicks"
    CONVERSIONS = "conversions"
    PAYOUT = "payout"
    REVENUE = "revenue"


class CapPeriod(StrEnum):
    """Calendar periods in UTC (a week starts on Monday); ``lifetime`` never resets."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    LIFETIME = "lifetime"


class FraudAction(StrEnum):
    """What a failed check does (a fraud rule, or a conversion above the offer's bounds):
    reject the conversion, or hold it for review."""

    REJECT = "reject"
    REVIEW = "review"


class CouponPrecedence(StrEnum):
    """Who is credited when a click and a coupon code name different partners."""

    CLICK_FIRST = "click_first"
    COUPON_FIRST = "coupon_first"


class Terms(BaseModel):
    """How a conversion is priced: a flat ``amount`` (CPA, CPC, CPM per thousand), a
    ``percent`` of the sale (CPS), or both (CPA+CPS). Used for payout (partner) and
    revenue (advertiser)."""

    model_config = ConfigDict(frozen=True)

    type: PayoutType
    amount: DecimalString | None = None
    percent: DecimalString | None = None


class Billing(BaseModel):
    model_config = ConfigDict(frozen=True)

    currency: Currency
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: DecimalString = Field(default=Decimal(0))
    method: str | None = None
    """How the partner is paid (e.g. ``wire``, ``paypal``): shown on statements."""
    conversion: BillingConversion = BillingConversion.NONE
    """Paid in ``currency`` whatever it earned in (``earned_day``, ``period_end``: which
    day's rate), or in each currency earned (``none``)."""


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    email: str
    role: str | None = None


class PartnerPostback(BaseModel):
    """The partner's global postback: called for its conversions on any offer whose
    relationship names no postback of its own."""

    model_config = ConfigDict(frozen=True)

    url: str
    method: PostbackMethod = PostbackMethod.GET
    status_changes: bool = False
    """Also called when a conversion's status changes (approved, rejected, reversed)."""


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
    pixel_review: bool = True
    """Pixel conversions are held for review (the pixel carries no secret: anyone who can
    see a transaction_id can call it) unless the offer sets this false."""


class OfferEvent(BaseModel):
    """One conversion event of an offer (lead, sale, upsell...) with its own pricing."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    payout: Terms
    revenue: Terms | None = None
    allow_duplicates: bool = False
    """More than one conversion of this event per transaction is credited."""
    requires_approval: bool = False
    """Its conversions start pending, for the advertiser's review."""
    fires_partner_postback: bool = True
    max_sale_amount: DecimalString | None = None
    """Bounds of this event's conversions: override the offer's (``None``: the offer's)."""
    max_payout: DecimalString | None = None


class Cap(BaseModel):
    """A limit on clicks, conversions, payout or revenue per calendar period, offer-wide
    or per partner. Over a hard cap clicks go to the fallback and conversions are
    rejected ``over_cap``; a soft cap is only reported."""

    model_config = ConfigDict(frozen=True)

    metric: CapMetric
    period: CapPeriod
    limit: DecimalString = Field(gt=0)
    per_partner: bool = False
    hard: bool = True

    @model_validator(mode="after")
    def _counts_are_whole(self) -> Cap:
        counted = self.metric in (CapMetric.CLICKS, CapMetric.CONVERSIONS)
        if counted and self.limit != self.limit.to_integral_value():
            raise ValueError(f"a {self.metric.value} cap's limit must be a whole number")
        return self


class Tier(BaseModel):
    """A payout that applies once a partner's approved conversions on the offer this
    (UTC) month reach ``min_conversions``; the highest tier reached wins."""

    model_config = ConfigDict(frozen=True)

    min_conversions: int = Field(ge=1)
    payout: Terms


BLOCKABLE_SUBS = ("sub2", "sub3", "sub4", "sub5")
"""The subs ``FraudSettings.blocked_subs`` may name (sub1 has ``blocked_sub1``)."""


class FraudSettings(BaseModel):
    """An offer's fraud rules. ``blocked_ips`` and the blocked subs apply to conversions,
    clicks and impressions alike; the per-day limits count per UTC day."""

    model_config = ConfigDict(frozen=True)

    min_seconds_to_convert: int | None = Field(default=None, ge=1)
    max_conversions_per_ip_per_day: int | None = Field(default=None, ge=1)
    blocked_ips: tuple[str, ...] = ()
    """IP addresses or CIDR networks."""
    blocked_sub1: tuple[str, ...] = ()
    action: FraudAction = FraudAction.REJECT
    max_clicks_per_ip_per_day: int | None = Field(default=None, ge=1)
    max_clicks_per_visitor_per_day: int | None = Field(default=None, ge=1)
    max_impressions_per_ip_per_day: int | None = Field(default=None, ge=1)
    blocked_subs: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Deny lists of sub2..sub5 values, by sub name."""

    @field_validator("blocked_subs")
    @classmethod
    def _known_subs(cls, blocked: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(blocked) - set(BLOCKABLE_SUBS))
        if unknown:
            raise ValueError(f"blocked_subs names {unknown}: only {', '.join(BLOCKABLE_SUBS)}")
        return blocked


class RelationshipEvent(BaseModel):
    """A partner's custom payout and/or revenue for one of the offer's events."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    payout: Terms | None = None
    revenue: Terms | None = None


class LandingPage(BaseModel):
    """One of an offer's landing pages: a tracking link names it with ``url_id=``, else
    the tracker rotates the pages of positive weight, each in proportion to its weight.
    Its ``url`` takes the same macros as the offer's destination."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64)
    name: str
    url: str
    weight: int = Field(default=1, ge=0)
    """0: reached only by its ``url_id``, never in the rotation."""


class DeviceType(StrEnum):
    """A visitor's kind of device, as tracking reads it from the user agent."""

    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"


class OperatingSystem(StrEnum):
    """A visitor's operating system family, as tracking reads it from the user agent."""

    WINDOWS = "windows"
    MACOS = "macos"
    IOS = "ios"
    ANDROID = "android"
    LINUX = "linux"
    CHROMEOS = "chromeos"
    OTHER = "other"


class Browser(StrEnum):
    """A visitor's browser family, as tracking reads it from the user agent."""

    CHROME = "chrome"
    SAFARI = "safari"
    FIREFOX = "firefox"
    EDGE = "edge"
    OPERA = "opera"
    SAMSUNG = "samsung"
    OTHER = "other"


class AllowDeny(BaseModel):
    """One targeting dimension: a visitor whose value is denied, or (when ``allow`` lists
    any) not allowed, fails it. Both empty: anyone passes."""

    model_config = ConfigDict(frozen=True)

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


class DayParting(BaseModel):
    """When the offer takes traffic, in its own time zone (IANA name); an empty list is
    "any": weekdays 1 (Monday) to 7, hours 0 to 23."""

    model_config = ConfigDict(frozen=True)

    time_zone: str = "UTC"
    weekdays: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()


class Targeting(BaseModel):
    """Which visitors an offer takes. Countries are ISO 3166-1 alpha-2 codes (upper
    case), devices, operating systems and browsers the values of ``DeviceType``,
    ``OperatingSystem`` and ``Browser``, referrer domains host names (each with its
    subdomains). A click that fails a rule is recorded ``targeting`` with the rule's name
    as its ``reason`` and goes to the fallback URL."""

    model_config = ConfigDict(frozen=True)

    countries: AllowDeny = AllowDeny()
    devices: AllowDeny = AllowDeny()
    operating_systems: AllowDeny = AllowDeny()
    browsers: AllowDeny = AllowDeny()
    referrer_domains: AllowDeny = AllowDeny()
    day_parting: DayParting | None = None


class FailTrafficMode(StrEnum):
    """How a refused click picks among the offers of a fail-traffic list: the first in
    order that takes it (``priority``), or one drawn by weight among those that take it."""

    PRIORITY = "priority"
    WEIGHT = "weight"


class RoutedOffer(BaseModel):
    """An offer a click may be sent to instead (fail traffic) or among others (a smart
    link). ``weight``: its share among the offers it is drawn with (0: never drawn);
    ``priority``: a smart link's rank (lower first; fail traffic uses the list's order)."""

    model_config = ConfigDict(frozen=True)

    offer_id: str = Field(min_length=1)
    weight: int = Field(default=1, ge=0)
    priority: int = Field(default=1, ge=1)


class FailTraffic(BaseModel):
    """Where an offer sends a click it cannot take (paused or inactive, over a hard click
    cap, failed targeting, partner not approved): to one of ``offers`` that takes it (the
    partner may run it, the visitor passes its targeting, it has room under its caps),
    else to the offer's fallback URL. A rerouted click is recorded once, on the offer it
    lands on, with ``ClickRecorded.rerouted_from``; a listed offer's own fail traffic is
    never followed, so no list makes a loop."""

    model_config = ConfigDict(frozen=True)

    mode: FailTrafficMode = FailTrafficMode.PRIORITY
    offers: tuple[RoutedOffer, ...] = ()


def _unique_caps(caps: tuple[Cap, ...]) -> tuple[Cap, ...]:
    seen = {(cap.metric, cap.period, cap.per_partner, cap.hard) for cap in caps}
    if len(seen) != len(caps):
        raise ValueError("two caps share a metric, period, scope and hardness")
    return caps


def _unique_names(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ValueError("event names must be unique")


class _PartnerState(Event):
    """A partner's whole state, as created or updated."""

    partner_id: str
    name: str
    email: str
    type: str | None = None
    status: PartnerStatus = PartnerStatus.ACTIVE
    tags: tuple[str, ...] = ()
    billing: Billing | None = None
    manager: str | None = None
    contacts: tuple[Contact, ...] = ()
    postback: PartnerPostback | None = None

    def partition_key(self) -> str:
        return self.partner_id


class PartnerCreated(_PartnerState):
    topic: ClassVar = PARTNERS


class PartnerUpdated(_PartnerState):
    """The partner's whole new state after an edit; ``changed`` names what changed."""

    topic: ClassVar = PARTNERS

    changed: tuple[str, ...] = ()


class PartnerStatusChanged(Event):
    """A partner's new status. From ``pending`` it is staff's decision on an application
    (``active``: approved, ``rejected``: declined), with the reason they gave."""

    topic: ClassVar = PARTNERS

    partner_id: str
    status: PartnerStatus
    previous_status: PartnerStatus | None = None
    """The status it left (``None`` on events written before it was carried)."""
    reason: str | None = None
    """Why, in staff's words (an application's verdict, a suspension)."""

    def partition_key(self) -> str:
        return self.partner_id


class PartnerApplied(Event):
    """Someone signed up on the portal and verified their email: the partner exists,
    ``pending`` (its ``PartnerCreated`` comes just before, same ``partner_id``), and waits
    for staff's decision (``PartnerStatusChanged`` to ``active`` or ``rejected``). One
    application per email address (any case)."""

    topic: ClassVar = PARTNERS

    partner_id: str
    name: str
    email: str
    company: str | None = None
    website: str | None = None
    traffic_sources: tuple[str, ...] = ()
    country: str | None = None
    """ISO 3166-1 alpha-2, upper case."""
    terms_accepted_at: UtcDatetime
    email_verified_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class PartnerUserRole(StrEnum):
    """``owner``: invites and removes the partner's users; ``member``: uses the portal."""

    OWNER = "owner"
    MEMBER = "member"


class PartnerUserStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REMOVED = "removed"


class _PartnerUserState(Event):
    """A partner user's whole state (consumers replace their row). Who they are and what
    they may do, never a credential: password hashes and invitation or reset tokens stay
    in the partners service, which checks them."""

    partner_id: str
    user_id: str
    email: str
    name: str | None = None
    role: PartnerUserRole = PartnerUserRole.MEMBER
    status: PartnerUserStatus

    def partition_key(self) -> str:
        return self.partner_id


class PartnerUserInvited(_PartnerUserState):
    """Invited to set a password (an application's contact once approved, or someone an
    owner or staff invited); invited again, a new invitation replaces the old one."""

    topic: ClassVar = PARTNERS

    invited_by: str | None = None
    """The user who invited (a user_id), else ``None`` (staff: the envelope's actor)."""
    expires_at: UtcDatetime


class PartnerUserActivated(_PartnerUserState):
    """The user set a password with their invitation: they can sign in from now on."""

    topic: ClassVar = PARTNERS


class PartnerUserRemoved(_PartnerUserState):
    """The user can no longer sign in; their portal sessions end."""

    topic: ClassVar = PARTNERS

    removed_by: str | None = None


class PartnerUserPasswordReset(Event):
    """A user chose a new password with a reset link: their portal sessions started
    before ``reset_at`` end. Only the fact: no hash, no token. (Setting the first password
    with an invitation is ``PartnerUserActivated``.)"""

    topic: ClassVar = PARTNERS

    partner_id: str
    user_id: str
    reset_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class PartnerApiKeyIssued(Event):
    """A partner API key (``afx_live_...``); only its SHA-256 (hex) is ever stored or sent."""

    topic: ClassVar = PARTNERS

    partner_id: str
    key_id: str
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    prefix: str
    issued_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class PartnerApiKeyRevoked(Event):
    topic: ClassVar = PARTNERS

    partner_id: str
    key_id: str
    revoked_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class _OfferState(Event):
    """An offer's whole state, as created or updated. ``events`` always holds at least
    one event: offers that name none (and offers created before events existed) get the
    default ``conversion`` event priced with the offer's payout and revenue."""

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
    events: tuple[OfferEvent, ...] = ()
    caps: tuple[Cap, ...] = ()
    tiers: tuple[Tier, ...] = ()
    fraud: FraudSettings | None = None
    coupon_precedence: CouponPrecedence = CouponPrecedence.CLICK_FIRST
    max_sale_amount: DecimalString | None = None
    """A conversion reporting a larger sale amount is held or refused (``over_limit_action``)."""
    max_payout: DecimalString | None = None
    """A conversion whose payout would be larger is held or refused (``over_limit_action``)."""
    over_limit_action: FraudAction = FraudAction.REVIEW
    unique_click_hours: int = Field(default=24, ge=1)
    """The window in which a visitor's clicks (impressions) on the offer count once for
    CPC (CPM)."""
    deep_link_domains: tuple[str, ...] = ()
    """Hosts a link's ``url=`` may send a visitor to: each domain and its subdomains
    (lower case; empty: no deep links, ``url=`` is ignored)."""
    landing_pages: tuple[LandingPage, ...] = ()
    """Pages a link may choose (``url_id=``) or the tracker rotates by weight; none: the
    ``destination_url``."""
    targeting: Targeting | None = None
    """Which visitors it takes (``None``: everyone)."""
    fail_traffic: FailTraffic | None = None
    """Where the clicks it cannot take go before its fallback URL (``None``: the fallback)."""

    @model_validator(mode="before")
    @classmethod
    def _default_event(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("events") and "payout" in data:
            default = {"name": DEFAULT_EVENT, "payout": data["payout"], "revenue": data.get("revenue")}
            data = {**data, "events": (default,)}
        return data

    @field_validator("events")
    @classmethod
    def _unique_events(cls, events: tuple[OfferEvent, ...]) -> tuple[OfferEvent, ...]:
        _unique_names([event.name for event in events])
        return events

    @field_validator("caps")
    @classmethod
    def _unique_caps(cls, caps: tuple[Cap, ...]) -> tuple[Cap, ...]:
        return _unique_caps(caps)

    @field_validator("landing_pages")
    @classmethod
    def _unique_landing_pages(cls, pages: tuple[LandingPage, ...]) -> tuple[LandingPage, ...]:
        if len({page.id for page in pages}) != len(pages):
            raise ValueError("two landing pages share an id")
        return pages

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if len({tier.min_conversions for tier in tiers}) != len(tiers):
            raise ValueError("two tiers share a min_conversions threshold")
        return tiers

    def event(self, name: str) -> OfferEvent | None:
        """The offer's event called ``name``, if it has one."""
        return next((event for event in self.events if event.name == name), None)

    def partition_key(self) -> str:
        return self.offer_id


class OfferCreated(_OfferState):
    topic: ClassVar = PARTNERS


class OfferUpdated(_OfferState):
    """The offer's whole new state after an edit; ``changed`` names what changed."""

    topic: ClassVar = PARTNERS

    changed: tuple[str, ...] = ()


class OfferStatusChanged(Event):
    topic: ClassVar = PARTNERS

    offer_id: str
    status: OfferStatus

    def partition_key(self) -> str:
        return self.offer_id


class OfferPostbackTokenRotated(Event):
    """An offer's postback token was replaced. Only SHA-256 hashes (hex) travel: tracking
    accepts ``token_sha256``, and ``previous_token_sha256`` until ``previous_valid_until``
    (the overlap in which an advertiser's servers move to the new token)."""

    topic: ClassVar = PARTNERS

    offer_id: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    previous_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    previous_valid_until: UtcDatetime | None = None

    def partition_key(self) -> str:
        return self.offer_id


class SmartLinkSet(Event):
    """A smart link's whole state (consumers replace their row): one tracking link for any
    partner (``/s/{smart_link_id}/{partner_id}``) over ``offers``. A click goes to an offer
    of the lowest ``priority`` that takes it (active, the partner may run it, the visitor
    passes its targeting, room under its caps), drawn by ``weight`` among those of that
    priority; none: to ``fallback_url``, else the first offer's fallback URL."""

    topic: ClassVar = PARTNERS

    smart_link_id: str
    name: str
    offers: tuple[RoutedOffer, ...]
    fallback_url: str | None = None

    def partition_key(self) -> str:
        return self.smart_link_id


class RelationshipSet(Event):
    """The whole current state of one partner's relationship with one offer.

    ``application``: the partner applied for the offer and the advertiser has not
    decided yet (always with ``approved`` false); a decision clears it. ``targeting``
    narrows the offer's own for this partner's clicks: a visitor must pass both (the
    relationship can never admit one the offer refuses)."""

    topic: ClassVar = PARTNERS

    offer_id: str
    partner_id: str
    approved: bool
    payout: Terms | None = None
    revenue: Terms | None = None
    coupon_codes: tuple[str, ...] = ()
    postback_url: str | None = None
    events: tuple[RelationshipEvent, ...] = ()
    caps: tuple[Cap, ...] = ()
    postback_method: PostbackMethod = PostbackMethod.GET
    postback_status_changes: bool = False
    application: bool = False
    targeting: Targeting | None = None
    """Which of the offer's visitors this partner's clicks may bring (``None``: those the
    offer takes); a click failing it is recorded ``targeting`` with ``relationship_`` and
    the rule's name as its ``reason`` (``relationship_countries``)."""

    @field_validator("events")
    @classmethod
    def _unique_events(cls, events: tuple[RelationshipEvent, ...]) -> tuple[RelationshipEvent, ...]:
        _unique_names([event.name for event in events])
        return events

    @field_validator("caps")
    @classmethod
    def _unique_caps(cls, caps: tuple[Cap, ...]) -> tuple[Cap, ...]:
        return _unique_caps(caps)

    def partition_key(self) -> str:
        return f"{self.offer_id}:{self.partner_id}"
