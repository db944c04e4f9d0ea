"""The JSON bodies of the partners admin API (public HTTP contract v1).

Requests are parsed strictly (unknown fields are refused, so a misspelt or not yet
supported option is never silently dropped) from exact JSON (numbers with a fraction
are ``Decimal``, never a float); business rules are then the domain's, which name the
field to fix. Responses carry money as decimal strings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from afflux_contracts.values import DecimalString
from afflux_partners.domain.values import (
    AllowDeny,
    ApiKey,
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
    OfferEvent,
    OfferStatus,
    PartnerPostback,
    PartnerStatus,
    PayoutType,
    PostbackMethod,
    RelationshipEvent,
    RoutedOffer,
    Standing,
    Targeting,
    Terms,
    Tier,
    Visibility,
)

Number = Annotated[Decimal, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=2048)]
MAX_ITEMS = 1000
"""A bound on any list in a body: the domain's own limits are smaller and name the field."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TermsIn(Request):
    type: PayoutType
    amount: Number | None = None
    percent: Number | None = None

    def to_domain(self) -> Terms:
        return Terms(type=self.type, amount=self.amount, percent=self.percent)


def _terms(terms: TermsIn | None) -> Terms | None:
    return terms.to_domain() if terms is not None else None


class BillingIn(Request):
    currency: Text
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: Number = Decimal(0)
    method: Text | None = Field(None, description="how the partner is paid: wire, paypal...")
    conversion: BillingConversion = Field(
        BillingConversion.NONE,
        description="none: paid in each currency earned; earned_day / period_end: paid in `currency`, "
                    "each line converted at the rate in force on the day it was earned / the period closed")

    def to_domain(self) -> Billing:
        return Billing(currency=self.currency, frequency=self.frequency, minimum_payout=self.minimum_payout,
                       method=self.method, conversion=self.conversion)


class ContactIn(Request):
    name: Text
    email: Text
    role: Text | None = None

    def to_domain(self) -> Contact:
        return Contact(self.name, self.email, self.role)


class PartnerPostbackIn(Request):
    url: Text
    method: PostbackMethod = PostbackMethod.GET
    status_changes: StrictBool = False

    def to_domain(self) -> PartnerPostback:
        return PartnerPostback(self.url, self.method, self.status_changes)


def _same(value: Any) -> Any:
    return value


_PARTNER_CONVERT: dict[str, Callable[[Any], Any]] = {
    "billing": lambda v: v.to_domain() if v is not None else None,
    "contacts": lambda v: tuple(c.to_domain() for c in v) if v is not None else None,
    "postback": lambda v: v.to_domain() if v is not None else None,
    "tags": lambda v: tuple(v) if v is not None else None,
}


class _PartnerFields(Request):
    """Turns the fields a request named into the domain's values, by name."""

    def profile(self) -> dict[str, Any]:
        return {name: _PARTNER_CONVERT.get(name, _same)(getattr(self, name))
                for name in self.model_fields_set if name != "status"}


class PartnerIn(_PartnerFields):
    name: Text
    email: Text
    type: Text | None = None
    status: PartnerStatus = PartnerStatus.ACTIVE
    tags: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    manager: Text | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    billing: BillingIn | None = None
    postback: PartnerPostbackIn | None = Field(None, description="the partner's global postback")


class PartnerPatch(_PartnerFields):
    """Only the fields given change; ``null`` clears an optional one. The status has its
    own route (``POST /v1/partners/{id}/status``)."""

    name: Text | None = None
    email: Text | None = None
    type: Text | None = None
    tags: list[Text] | None = Field(None, max_length=MAX_ITEMS)
    manager: Text | None = None
    contacts: list[ContactIn] | None = Field(None, max_length=MAX_ITEMS)
    billing: BillingIn | None = None
    postback: PartnerPostbackIn | None = None


class PartnerStatusIn(Request):
    status: PartnerStatus


class ConversionSecurityIn(Request):
    token_required: StrictBool = True
    allowed_ips: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    pixel_allowed: StrictBool = False
    pixel_review: StrictBool = Field(True, description="pixel conversions are held for review unless false")

    def to_domain(self) -> ConversionSecurity:
        return ConversionSecurity(self.token_required, tuple(self.allowed_ips), self.pixel_allowed,
                                  self.pixel_review)


class OfferEventIn(Request):
    name: Text
    payout: TermsIn
    revenue: TermsIn | None = None
    allow_duplicates: StrictBool = False
    requires_approval: StrictBool = False
    fires_partner_postback: StrictBool = True
    max_sale_amount: Number | None = Field(None, description="this event's bound (else the offer's)")
    max_payout: Number | None = Field(None, description="this event's bound (else the offer's)")

    def to_domain(self) -> OfferEvent:
        return OfferEvent(self.name, self.payout.to_domain(), _terms(self.revenue), self.allow_duplicates,
                          self.requires_approval, self.fires_partner_postback, self.max_sale_amount,
                          self.max_payout)


class CapIn(Request):
    metric: CapMetric
    period: CapPeriod
    limit: Number
    per_partner: StrictBool = False
    hard: StrictBool = True

    def to_domain(self) -> Cap:
        return Cap(self.metric, self.period, self.limit, self.per_partner, self.hard)


class TierIn(Request):
    min_conversions: StrictInt = Field(
        description="approved conversions this month from which the tier applies")
    payout: TermsIn

    def to_domain(self) -> Tier:
        return Tier(self.min_conversions, self.payout.to_domain())


class FraudIn(Request):
    min_seconds_to_convert: StrictInt | None = None
    max_conversions_per_ip_per_day: StrictInt | None = None
    blocked_ips: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list,
                                                                    max_length=MAX_ITEMS)
    blocked_sub1: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    action: FraudAction = FraudAction.REJECT
    max_clicks_per_ip_per_day: StrictInt | None = None
    max_clicks_per_visitor_per_day: StrictInt | None = None
    max_impressions_per_ip_per_day: StrictInt | None = None
    blocked_subs: dict[Annotated[str, Field(max_length=20)], list[Text]] = Field(
        default_factory=dict, max_length=10, description="deny lists of sub2..sub5 values, by sub name")

    def to_domain(self) -> FraudSettings:
        return FraudSettings(self.min_seconds_to_convert, self.max_conversions_per_ip_per_day,
                             tuple(self.blocked_ips), tuple(self.blocked_sub1), self.action,
                             self.max_clicks_per_ip_per_day, self.max_clicks_per_visitor_per_day,
                             self.max_impressions_per_ip_per_day,
                             tuple((name, tuple(values)) for name, values in self.blocked_subs.items()))


class LandingPageIn(Request):
    id: Annotated[str, Field(max_length=64, description="what a link names in `url_id=`")]
    name: Text
    url: Text = Field(description="an http(s) URL; the destination's macros are filled in")
    weight: StrictInt = Field(1, description="its share of the rotation (0 to 1000; 0: only by `url_id`)")

    def to_domain(self) -> LandingPage:
        return LandingPage(self.id, self.name, self.url, self.weight)


DeepLinkDomains = list[Annotated[str, Field(max_length=253)]]
Values = list[Annotated[str, Field(max_length=253)]]


class AllowDenyIn(Request):
    allow: Values = Field(default_factory=list, max_length=MAX_ITEMS, description="only these (empty: any)")
    deny: Values = Field(default_factory=list, max_length=MAX_ITEMS, description="never these")

    def to_domain(self) -> AllowDeny:
        return AllowDeny(tuple(self.allow), tuple(self.deny))


class DayPartingIn(Request):
    time_zone: Text = Field("UTC", description="IANA time zone the weekdays and hours are in")
    weekdays: list[StrictInt] = Field(default_factory=list, max_length=7,
                                      description="1 (Monday) to 7; empty: every day")
    hours: list[StrictInt] = Field(default_factory=list, max_length=24, description="0 to 23; empty: all day")

    def to_domain(self) -> DayParting:
        return DayParting(self.time_zone, tuple(self.weekdays), tuple(self.hours))


class TargetingIn(Request):
    """Which visitors the offer takes; a click failing a rule is recorded `targeting` and
    goes to the fallback URL."""

    countries: AllowDenyIn = Field(default_factory=AllowDenyIn, description="ISO 3166-1 alpha-2 codes")
    devices: AllowDenyIn = Field(default_factory=AllowDenyIn, description="desktop, mobile, tablet, other")
    operating_systems: AllowDenyIn = Field(default_factory=AllowDenyIn, description=(
        "windows, macos, ios, android, linux, chromeos, other"))
    browsers: AllowDenyIn = Field(default_factory=AllowDenyIn, description=(
        "chrome, safari, firefox, edge, opera, samsung, other"))
    referrer_domains: AllowDenyIn = Field(default_factory=AllowDenyIn, description=(
        "the Referer's host: each domain and its subdomains (with an allow list, no Referer fails)"))
    day_parting: DayPartingIn | None = None

    def to_domain(self) -> Targeting:
        return Targeting(self.countries.to_domain(), self.devices.to_domain(),
                         self.operating_systems.to_domain(), self.browsers.to_domain(),
                         self.referrer_domains.to_domain(),
                         self.day_parting.to_domain() if self.day_parting is not None else None)


class FailTrafficOfferIn(Request):
    offer_id: Annotated[str, Field(max_length=64)]
    weight: StrictInt = Field(1, description="its share in mode `weight` (0 to 1000; 0: never)")

    def to_domain(self) -> RoutedOffer:
        return RoutedOffer(self.offer_id, self.weight)


class FailTrafficIn(Request):
    """Where the clicks the offer cannot take go (paused or inactive, over a hard click cap,
    failed targeting, partner not approved), before its fallback URL."""

    mode: FailTrafficMode = Field(FailTrafficMode.PRIORITY, description=(
        "priority: the first listed offer that takes the click; weight: one drawn by weight among "
        "those that take it"))
    offers: list[FailTrafficOfferIn] = Field(default_factory=list, max_length=MAX_ITEMS)

    def to_domain(self) -> FailTraffic:
        return FailTraffic(self.mode, tuple(offer.to_domain() for offer in self.offers))


_OFFER_CONVERT: dict[str, Callable[[Any], Any]] = {
    "payout": lambda v: v.to_domain() if v is not None else None,
    "revenue": _terms,
    "events": lambda v: tuple(e.to_domain() for e in v) if v is not None else None,
    "caps": lambda v: tuple(c.to_domain() for c in v) if v is not None else None,
    "tiers": lambda v: tuple(t.to_domain() for t in v) if v is not None else None,
    "fraud": lambda v: v.to_domain() if v is not None else None,
    "conversion_security": lambda v: v.to_domain() if v is not None else None,
    "deep_link_domains": lambda v: tuple(v) if v is not None else None,
    "landing_pages": lambda v: tuple(p.to_domain() for p in v) if v is not None else None,
    "targeting": lambda v: v.to_domain() if v is not None else None,
    "fail_traffic": lambda v: v.to_domain() if v is not None else None,
}


class _OfferFields(Request):
    def terms(self) -> dict[str, Any]:
        """The fields the request named, as the domain's values."""
        return {name: _OFFER_CONVERT.get(name, _same)(getattr(self, name))
                for name in self.model_fields_set if name != "status"}


class OfferIn(_OfferFields):
    name: Text
    destination_url: Text
    status: OfferStatus = OfferStatus.ACTIVE
    visibility: Visibility = Visibility.REQUIRE_APPROVAL
    currency: Text
    payout: TermsIn
    revenue: TermsIn | None = None
    events: list[OfferEventIn] = Field(default_factory=list, max_length=MAX_ITEMS, description=(
        "the conversion events (lead, sale...); none: one event named `conversion` priced with "
        "`payout` and `revenue`"))
    caps: list[CapIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    tiers: list[TierIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    fraud: FraudIn | None = None
    coupon_precedence: CouponPrecedence = CouponPrecedence.CLICK_FIRST
    attribution_window_days: int = 30
    fallback_url: Text | None = None
    conversion_security: ConversionSecurityIn | None = None
    max_sale_amount: Number | None = Field(None, description="a larger reported sale is held or refused")
    max_payout: Number | None = Field(None, description="a larger payout per conversion is held or refused")
    over_limit_action: FraudAction = Field(FraudAction.REVIEW, description="above a bound: review or reject")
    unique_click_hours: StrictInt = Field(24, description="a visitor's clicks (impressions) on the offer "
                                                          "count once per this many hours for CPC (CPM)")
    deep_link_domains: DeepLinkDomains = Field(default_factory=list, max_length=MAX_ITEMS, description=(
        "hosts a link's `url=` may send the visitor to (each domain and its subdomains); none: `url=` "
        "is ignored"))
    landing_pages: list[LandingPageIn] = Field(default_factory=list, max_length=MAX_ITEMS, description=(
        "pages a link names with `url_id=`, else rotated by weight; none: `destination_url`"))
    targeting: TargetingIn | None = Field(None, description="which visitors it takes (none: everyone)")
    fail_traffic: FailTrafficIn | None = Field(None, description=(
        "other offers for the clicks it cannot take (none: its fallback URL)"))


class OfferPatch(_OfferFields):
    """Only the fields given change; ``null`` clears an optional one (revenue, fraud,
    fallback_url). The status has its own route; the currency cannot change."""

    name: Text | None = None
    destination_url: Text | None = None
    visibility: Visibility | None = None
    currency: Text | None = None
    payout: TermsIn | None = None
    revenue: TermsIn | None = None
    events: list[OfferEventIn] | None = Field(None, max_length=MAX_ITEMS)
    caps: list[CapIn] | None = Field(None, max_length=MAX_ITEMS)
    tiers: list[TierIn] | None = Field(None, max_length=MAX_ITEMS)
    fraud: FraudIn | None = None
    coupon_precedence: CouponPrecedence | None = None
    attribution_window_days: int | None = None
    fallback_url: Text | None = None
    conversion_security: ConversionSecurityIn | None = None
    max_sale_amount: Number | None = None
    max_payout: Number | None = None
    over_limit_action: FraudAction | None = None
    unique_click_hours: StrictInt | None = None
    deep_link_domains: DeepLinkDomains | None = Field(None, max_length=MAX_ITEMS)
    landing_pages: list[LandingPageIn] | None = Field(None, max_length=MAX_ITEMS)
    targeting: TargetingIn | None = None
    fail_traffic: FailTrafficIn | None = None


class OfferStatusIn(Request):
    status: OfferStatus


class TokenRotationIn(Request):
    overlap_hours: StrictInt = Field(24, description="hours the replaced token keeps working (0 to 720)")


class SmartLinkOfferIn(Request):
    offer_id: Annotated[str, Field(max_length=64)]
    weight: StrictInt = Field(1, description="its share among the offers of its priority (0 to 1000; "
                                             "0: never)")
    priority: StrictInt = Field(1, description="1 to 100: offers of a lower priority are tried first")

    def to_domain(self) -> RoutedOffer:
        return RoutedOffer(self.offer_id, self.weight, self.priority)


class _SmartLinkFields(Request):
    def fields(self) -> dict[str, Any]:
        """The fields the request named, as the domain's values."""
        named = {name: getattr(self, name) for name in self.model_fields_set}
        if named.get("offers") is not None:
            named["offers"] = tuple(offer.to_domain() for offer in named["offers"])
        return named


class SmartLinkIn(_SmartLinkFields):
    name: Text
    offers: list[SmartLinkOfferIn] = Field(max_length=MAX_ITEMS, description=(
        "a visitor goes to an offer of the lowest priority that takes it, by weight among those"))
    fallback_url: Text | None = Field(None, description="where a visitor no offer takes goes (else the "
                                                        "first offer's fallback URL)")


class SmartLinkPatch(_SmartLinkFields):
    """Only the fields given change; ``null`` clears the fallback URL."""

    name: Text | None = None
    offers: list[SmartLinkOfferIn] | None = Field(None, max_length=MAX_ITEMS)
    fallback_url: Text | None = None


class RelationshipEventIn(Request):
    name: Text
    payout: TermsIn | None = None
    revenue: TermsIn | None = None

    def to_domain(self) -> RelationshipEvent:
        return RelationshipEvent(self.name, _terms(self.payout), _terms(self.revenue))


class RelationshipIn(Request):
    approved: StrictBool
    payout: TermsIn | None = Field(None, description="custom payout of the offer's base event")
    revenue: TermsIn | None = None
    events: list[RelationshipEventIn] = Field(default_factory=list, max_length=MAX_ITEMS,
                                              description="custom payout/revenue per event of the offer")
    caps: list[CapIn] = Field(default_factory=list, max_length=MAX_ITEMS,
                              description="the partner's own caps (always per partner)")
    coupon_codes: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    postback_url: Text | None = None
    postback_method: PostbackMethod = PostbackMethod.GET
    postback_status_changes: StrictBool = False
    targeting: TargetingIn | None = Field(None, description=(
        "narrows the offer's targeting for this partner's clicks: a visitor must pass both "
        "(none: the offer's alone)"))

    def custom(self) -> dict[str, Any]:
        return {
            "payout": _terms(self.payout), "revenue": _terms(self.revenue),
            "events": tuple(e.to_domain() for e in self.events),
            "caps": tuple(c.to_domain() for c in self.caps),
            "coupon_codes": tuple(self.coupon_codes), "postback_url": self.postback_url,
            "postback_method": self.postback_method, "postback_status_changes": self.postback_status_changes,
            "targeting": self.targeting.to_domain() if self.targeting is not None else None,
        }


# Responses


class TermsOut(BaseModel):
    type: PayoutType
    amount: DecimalString | None
    percent: DecimalString | None

    @classmethod
    def of(cls, terms: Terms | None) -> TermsOut | None:
        if terms is None:
            return None
        return cls(type=terms.type, amount=terms.amount, percent=terms.percent)

    @classmethod
    def required(cls, terms: Terms) -> TermsOut:
        out = cls.of(terms)
        assert out is not None
        return out


class BillingOut(BaseModel):
    currency: str
    frequency: BillingFrequency
    minimum_payout: DecimalString
    method: str | None
    conversion: BillingConversion = BillingConversion.NONE


class ContactOut(BaseModel):
    name: str
    email: str
    role: str | None


class PartnerPostbackOut(BaseModel):
    url: str
    method: PostbackMethod
    status_changes: bool


class PartnerOut(BaseModel):
    partner_id: str
    name: str
    email: str
    type: str | None
    status: PartnerStatus
    tags: list[str]
    manager: str | None
    contacts: list[ContactOut]
    billing: BillingOut | None
    postback: PartnerPostbackOut | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, partner: Any) -> PartnerOut:
        billing, postback = partner.billing, partner.postback
        return cls(
            partner_id=partner.partner_id, name=partner.name, email=partner.email, type=partner.type,
            status=partner.status, tags=list(partner.tags), manager=partner.manager,
            contacts=[ContactOut(name=c.name, email=c.email, role=c.role) for c in partner.contacts],
            billing=BillingOut(currency=billing.currency, frequency=billing.frequency,
                               minimum_payout=billing.minimum_payout, method=billing.method,
                               conversion=billing.conversion)
            if billing is not None else None,
            postback=PartnerPostbackOut(url=postback.url, method=postback.method,
                                        status_changes=postback.status_changes)
            if postback is not None else None,
            created_at=partner.created_on, updated_at=partner.modified_on,
        )


class PartnersPage(BaseModel):
    partners: list[PartnerOut]
    next: str | None = Field(description="the `after` of the next page; null on the last one")


class ApiKeyOut(BaseModel):
    key_id: str
    prefix: str
    status: str = Field(description="active or revoked")
    issued_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(key_id=key.key_id, prefix=key.prefix, status="active" if key.active else "revoked",
                   issued_at=key.issued_at, revoked_at=key.revoked_at)


class ApiKeyIssuedOut(ApiKeyOut):
    api_key: str = Field(description="the key itself: shown this once, never stored (only its SHA-256)")


class ApiKeysOut(BaseModel):
    api_keys: list[ApiKeyOut]


class ConversionSecurityOut(BaseModel):
    token_required: bool
    allowed_ips: list[str]
    pixel_allowed: bool
    pixel_review: bool
    previous_token_valid_until: datetime | None = Field(
        description="when the token the last rotation replaced stops (or stopped) working")


class OfferEventOut(BaseModel):
    name: str
    payout: TermsOut
    revenue: TermsOut | None
    allow_duplicates: bool
    requires_approval: bool
    fires_partner_postback: bool
    max_sale_amount: DecimalString | None
    max_payout: DecimalString | None

    @classmethod
    def of(cls, event: OfferEvent) -> OfferEventOut:
        return cls(name=event.name, payout=TermsOut.required(event.payout),
                   revenue=TermsOut.of(event.revenue), allow_duplicates=event.allow_duplicates,
                   requires_approval=event.requires_approval,
                   fires_partner_postback=event.fires_partner_postback,
                   max_sale_amount=event.max_sale_amount, max_payout=event.max_payout)


class CapOut(BaseModel):
    metric: CapMetric
    period: CapPeriod
    limit: DecimalString
    per_partner: bool
    hard: bool

    @classmethod
    def of(cls, cap: Cap) -> CapOut:
        return cls(metric=cap.metric, period=cap.period, limit=cap.limit, per_partner=cap.per_partner,
                   hard=cap.hard)


class TierOut(BaseModel):
    min_conversions: int
    payout: TermsOut


class FraudOut(BaseModel):
    min_seconds_to_convert: int | None
    max_conversions_per_ip_per_day: int | None
    blocked_ips: list[str]
    blocked_sub1: list[str]
    action: FraudAction
    max_clicks_per_ip_per_day: int | None
    max_clicks_per_visitor_per_day: int | None
    max_impressions_per_ip_per_day: int | None
    blocked_subs: dict[str, list[str]]

    @classmethod
    def of(cls, fraud: FraudSettings | None) -> FraudOut | None:
        if fraud is None:
            return None
        return cls(min_seconds_to_convert=fraud.min_seconds_to_convert,
                   max_conversions_per_ip_per_day=fraud.max_conversions_per_ip_per_day,
                   blocked_ips=list(fraud.blocked_ips), blocked_sub1=list(fraud.blocked_sub1),
                   action=fraud.action, max_clicks_per_ip_per_day=fraud.max_clicks_per_ip_per_day,
                   max_clicks_per_visitor_per_day=fraud.max_clicks_per_visitor_per_day,
                   max_impressions_per_ip_per_day=fraud.max_impressions_per_ip_per_day,
                   blocked_subs={name: list(values) for name, values in fraud.blocked_subs})


class LandingPageOut(BaseModel):
    id: str
    name: str
    url: str
    weight: int


class AllowDenyOut(BaseModel):
    allow: list[str]
    deny: list[str]

    @classmethod
    def of(cls, lists: AllowDeny) -> AllowDenyOut:
        return cls(allow=list(lists.allow), deny=list(lists.deny))


class DayPartingOut(BaseModel):
    time_zone: str
    weekdays: list[int]
    hours: list[int]


class TargetingOut(BaseModel):
    countries: AllowDenyOut
    devices: AllowDenyOut
    operating_systems: AllowDenyOut
    browsers: AllowDenyOut
    referrer_domains: AllowDenyOut
    day_parting: DayPartingOut | None

    @classmethod
    def of(cls, targeting: Targeting | None) -> TargetingOut | None:
        if targeting is None:
            return None
        parting = targeting.day_parting
        return cls(countries=AllowDenyOut.of(targeting.countries), devices=AllowDenyOut.of(targeting.devices),
                   operating_systems=AllowDenyOut.of(targeting.operating_systems),
                   browsers=AllowDenyOut.of(targeting.browsers),
                   referrer_domains=AllowDenyOut.of(targeting.referrer_domains),
                   day_parting=DayPartingOut(time_zone=parting.time_zone, weekdays=list(parting.weekdays),
                                             hours=list(parting.hours)) if parting is not None else None)


class RoutedOfferOut(BaseModel):
    offer_id: str
    weight: int
    priority: int

    @classmethod
    def of(cls, offer: RoutedOffer) -> RoutedOfferOut:
        return cls(offer_id=offer.offer_id, weight=offer.weight, priority=offer.priority)


class FailTrafficOut(BaseModel):
    mode: FailTrafficMode
    offers: list[RoutedOfferOut]

    @classmethod
    def of(cls, fail_traffic: FailTraffic | None) -> FailTrafficOut | None:
        if fail_traffic is None:
            return None
        return cls(mode=fail_traffic.mode, offers=[RoutedOfferOut.of(o) for o in fail_traffic.offers])


class OfferOut(BaseModel):
    offer_id: str
    name: str
    destination_url: str
    status: OfferStatus
    visibility: Visibility
    currency: str
    payout: TermsOut
    revenue: TermsOut | None
    events: list[OfferEventOut] = Field(description="the offer's events (its default `conversion` "
                                                    "event when it lists none)")
    caps: list[CapOut]
    tiers: list[TierOut]
    fraud: FraudOut | None
    coupon_precedence: CouponPrecedence
    attribution_window_days: int
    fallback_url: str | None
    conversion_security: ConversionSecurityOut | None
    max_sale_amount: DecimalString | None
    max_payout: DecimalString | None
    over_limit_action: FraudAction
    unique_click_hours: int
    deep_link_domains: list[str]
    landing_pages: list[LandingPageOut]
    targeting: TargetingOut | None
    fail_traffic: FailTrafficOut | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, offer: Any) -> OfferOut:
        return cls(
            offer_id=offer.offer_id, name=offer.name, destination_url=offer.destination_url,
            status=offer.status, visibility=offer.visibility, currency=offer.currency,
            payout=TermsOut.required(offer.payout), revenue=TermsOut.of(offer.revenue),
            events=[OfferEventOut.of(e) for e in offer.priced_events],
            caps=[CapOut.of(c) for c in offer.caps],
            tiers=[TierOut(min_conversions=t.min_conversions, payout=TermsOut.required(t.payout))
                   for t in offer.tiers],
            fraud=FraudOut.of(offer.fraud), coupon_precedence=offer.coupon_precedence,
            attribution_window_days=offer.attribution_window_days, fallback_url=offer.fallback_url,
            conversion_security=_security_out(offer), max_sale_amount=offer.max_sale_amount,
            max_payout=offer.max_payout, over_limit_action=offer.over_limit_action,
            unique_click_hours=offer.unique_click_hours, deep_link_domains=list(offer.deep_link_domains),
            landing_pages=[LandingPageOut(id=p.id, name=p.name, url=p.url, weight=p.weight)
                           for p in offer.landing_pages],
            targeting=TargetingOut.of(offer.targeting), fail_traffic=FailTrafficOut.of(offer.fail_traffic),
            created_at=offer.created_on,
            updated_at=offer.modified_on,
        )


class OfferWithTokenOut(OfferOut):
    """A new offer: the only read that shows its postback token."""

    postback_token: str = Field(
        description="the secret an advertiser's server sends with each postback (`token` or the "
                    "X-Afflux-Postback-Token header): shown this once, kept only as its SHA-256")

    @classmethod
    def with_token(cls, offer: Any, token: str) -> OfferWithTokenOut:
        return cls(**OfferOut.of(offer).model_dump(), postback_token=token)


class PostbackTokenOut(BaseModel):
    postback_token: str = Field(description="the new token: shown this once, kept only as its SHA-256")
    previous_token_valid_until: datetime | None = Field(
        description="when the token it replaces stops working")


class OffersPage(BaseModel):
    offers: list[OfferOut]
    next: str | None = Field(description="the `after` of the next page; null on the last one")


class RelationshipEventOut(BaseModel):
    name: str
    payout: TermsOut | None
    revenue: TermsOut | None


class RelationshipOut(BaseModel):
    offer_id: str
    partner_id: str
    standing: Standing = Field(description="approved, pending (applied, not decided yet) or declined")
    approved: bool
    application: bool = Field(description="the partner applied and the advertiser has not decided yet")
    payout: TermsOut | None
    revenue: TermsOut | None
    events: list[RelationshipEventOut]
    caps: list[CapOut]
    coupon_codes: list[str]
    postback_url: str | None
    postback_method: PostbackMethod
    postback_status_changes: bool
    targeting: TargetingOut | None = Field(description="narrows the offer's targeting for this partner "
                                                       "(null: the offer's alone)")

    @classmethod
    def of(cls, relationship: Any) -> RelationshipOut:
        return cls(
            offer_id=relationship.offer_id, partner_id=relationship.partner_id,
            standing=relationship.standing, approved=relationship.approved,
            application=relationship.application,
            payout=TermsOut.of(relationship.payout), revenue=TermsOut.of(relationship.revenue),
            events=[RelationshipEventOut(name=e.name, payout=TermsOut.of(e.payout),
                                         revenue=TermsOut.of(e.revenue)) for e in relationship.events],
            caps=[CapOut.of(c) for c in relationship.caps], coupon_codes=list(relationship.coupon_codes),
            postback_url=relationship.postback_url, postback_method=relationship.postback_method,
            postback_status_changes=relationship.postback_status_changes,
            targeting=TargetingOut.of(relationship.targeting),
        )


class RelationshipsPage(BaseModel):
    relationships: list[RelationshipOut]
    next: str | None = Field(description="the `after` of the next page; null on the last one")


class TrackingLinkOut(BaseModel):
    url: str


class SmartLinkOut(BaseModel):
    smart_link_id: str
    name: str
    offers: list[RoutedOfferOut]
    fallback_url: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, smart_link: Any) -> SmartLinkOut:
        return cls(smart_link_id=smart_link.smart_link_id, name=smart_link.name,
                   offers=[RoutedOfferOut.of(o) for o in smart_link.offers],
                   fallback_url=smart_link.fallback_url,
                   created_at=smart_link.created_on, updated_at=smart_link.modified_on)


class SmartLinksPage(BaseModel):
    smart_links: list[SmartLinkOut]
    next: str | None = Field(description="the `after` of the next page; null on the last one")


def _security_out(offer: Any) -> ConversionSecurityOut | None:
    security: ConversionSecurity | None = offer.conversion_security
    if security is None:
        return None
    return ConversionSecurityOut(token_required=security.token_required,
                                 allowed_ips=list(security.allowed_ips),
                                 pixel_allowed=security.pixel_allowed, pixel_review=security.pixel_review,
                                 previous_token_valid_until=offer.previous_token_valid_until)
