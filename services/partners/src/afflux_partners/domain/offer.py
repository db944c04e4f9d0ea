"""An offer: what partners promote, where its traffic lands, and what a result pays:
its events, caps, performance tiers, fraud settings and coupon precedence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.destinations import check_deep_link_domains, check_landing_pages
from afflux_partners.domain.routed_offers import check_fail_traffic, check_not_itself
from afflux_partners.domain.rules import (
    Conflict,
    RuleViolation,
    StatusChangeRefused,
    check_attribution_window,
    check_bound,
    check_caps,
    check_conversion_security,
    check_currency,
    check_fraud,
    check_http_url,
    check_name,
    check_offer_events,
    check_terms,
    check_tiers,
    check_unique_click_hours,
)
from afflux_partners.domain.targeting import check_targeting
from afflux_partners.domain.values import (
    Cap,
    ConversionSecurity,
    CouponPrecedence,
    FailTraffic,
    FraudAction,
    FraudSettings,
    LandingPage,
    OfferEvent,
    OfferStatus,
    Targeting,
    Terms,
    Tier,
    Visibility,
)

INITIAL_STATUSES = frozenset({OfferStatus.ACTIVE, OfferStatus.PAUSED, OfferStatus.PENDING})
DEFAULT_EVENT = "conversion"
"""The event of an offer that lists none: priced with the offer's payout and revenue."""

EDITABLE = ("name", "destination_url", "visibility", "currency", "payout", "revenue", "events", "caps",
            "tiers", "fraud", "coupon_precedence", "attribution_window_days", "fallback_url",
            "conversion_security", "max_sale_amount", "max_payout", "over_limit_action",
            "unique_click_hours", "deep_link_domains", "landing_pages", "targeting", "fail_traffic")
"""What an edit may name; the status has its own lifecycle (``change_status``), the
postback token its own rotation (``rotate_postback_token``)."""

NOT_NULL = frozenset({"name", "destination_url", "visibility", "currency", "payout", "events", "caps",
                      "tiers", "coupon_precedence", "attribution_window_days", "conversion_security",
                      "over_limit_action", "unique_click_hours", "deep_link_domains", "landing_pages"})

MAX_OVERLAP_HOURS = 720
"""How long a replaced postback token may keep working: at most 30 days."""


def token_sha256(token: str) -> str:
    """What is stored, published and compared of a postback token: its SHA-256 (hex). A
    token has 256 random bits, so a fast unsalted hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_offer_status_change(current: OfferStatus, requested: OfferStatus) -> None:
    """A deleted offer stays deleted: its history is kept for reports and payouts, but
    links to it must never come back to life. Launch a new offer instead."""
    if current is OfferStatus.DELETED:
        raise StatusChangeRefused("offer", current, requested, "a deleted offer cannot be restored")


def _optional(check: Any) -> Any:
    return lambda value, field: check(value, field) if value is not None else None


_CHECKS: dict[str, Any] = {
    "name": check_name,
    "destination_url": check_http_url,
    "visibility": lambda value, field: Visibility(value),
    "currency": check_currency,
    "payout": check_terms,
    "revenue": _optional(check_terms),
    "events": check_offer_events,
    "caps": check_caps,
    "tiers": check_tiers,
    "fraud": _optional(check_fraud),
    "coupon_precedence": lambda value, field: CouponPrecedence(value),
    "attribution_window_days": check_attribution_window,
    "fallback_url": _optional(check_http_url),
    "conversion_security": check_conversion_security,
    "max_sale_amount": check_bound,
    "max_payout": check_bound,
    "over_limit_action": lambda value, field: FraudAction(value),
    "unique_click_hours": check_unique_click_hours,
    "deep_link_domains": check_deep_link_domains,
    "landing_pages": check_landing_pages,
    "targeting": _optional(check_targeting),
    "fail_traffic": _optional(check_fail_traffic),
}


def checked_terms(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields given, each validated and in canonical form (a rule names its field)."""
    unknown = set(fields) - set(_CHECKS)
    if unknown:
        raise RuleViolation(sorted(unknown)[0], "cannot be edited", "not_editable")
    for name in NOT_NULL & {name for name, value in fields.items() if value is None}:
        raise RuleViolation(name, "must not be null", "invalid_value")
    return {name: _CHECKS[name](value, name) for name, value in fields.items()}


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
OFFER_CREATED = "afflux_partners:Offer.Created"
OFFER_STATUS_CHANGED = "afflux_partners:Offer.StatusChanged"
OFFER_UPDATED = "afflux_partners:Offer.Updated"
OFFER_POSTBACK_TOKEN_ROTATED = "afflux_partners:Offer.PostbackTokenRotated"


class Offer(Aggregate):
    """Its id (as 32 hex characters) is the public ``offer_id``. Amounts in its payout,
    revenue, events, tiers and money caps are in the offer's ``currency``."""

    TOPIC = "afflux_partners:Offer"

    @classmethod
    def create(
        cls,
        name: str,
        destination_url: str,
        currency: str,
        payout: Terms,
        status: OfferStatus = OfferStatus.ACTIVE,
        visibility: Visibility = Visibility.REQUIRE_APPROVAL,
        revenue: Terms | None = None,
        attribution_window_days: int = 30,
        fallback_url: str | None = None,
        conversion_security: ConversionSecurity | None = None,
        postback_token: str | None = None,
        events: Iterable[OfferEvent] = (),
        caps: Iterable[Cap] = (),
        tiers: Iterable[Tier] = (),
        fraud: FraudSettings | None = None,
        coupon_precedence: CouponPrecedence = CouponPrecedence.CLICK_FIRST,
        max_sale_amount: Decimal | None = None,
        max_payout: Decimal | None = None,
        over_limit_action: FraudAction = FraudAction.REVIEW,
        unique_click_hours: int = 24,
        deep_link_domains: Iterable[str] = (),
        landing_pages: Iterable[LandingPage] = (),
        targeting: Targeting | None = None,
        fail_traffic: FailTraffic | None = None,
    ) -> Offer:
        """A new offer, if what it is given passes the rules. ``postback_token`` is the
        secret an advertiser's server presents with each postback (the application draws
        it; the domain does no I/O): only its SHA-256 is recorded."""
        if status not in INITIAL_STATUSES:
            raise RuleViolation(
                "status", f"a new offer is active, paused or pending, not {status}", "invalid_status"
            )
        terms = checked_terms({
            "name": name, "destination_url": destination_url, "visibility": visibility, "currency": currency,
            "payout": payout, "revenue": revenue, "events": events, "caps": caps, "tiers": tiers,
            "fraud": fraud, "coupon_precedence": coupon_precedence,
            "attribution_window_days": attribution_window_days, "fallback_url": fallback_url,
            "conversion_security": conversion_security or ConversionSecurity(),
            "max_sale_amount": max_sale_amount, "max_payout": max_payout,
            "over_limit_action": over_limit_action, "unique_click_hours": unique_click_hours,
            "deep_link_domains": deep_link_domains, "landing_pages": landing_pages, "targeting": targeting,
            "fail_traffic": fail_traffic,
        })
        hashed = token_sha256(postback_token) if postback_token is not None else None
        return cls(status=status, postback_token_sha256=hashed, **terms)

    @event("Created", topic=OFFER_CREATED)
    def __init__(
        self,
        name: str,
        destination_url: str,
        status: OfferStatus,
        visibility: Visibility,
        currency: str,
        payout: Terms,
        revenue: Terms | None,
        attribution_window_days: int,
        fallback_url: str | None,
        conversion_security: ConversionSecurity | None = None,
        postback_token: str | None = None,
        events: tuple[OfferEvent, ...] = (),
        caps: tuple[Cap, ...] = (),
        tiers: tuple[Tier, ...] = (),
        fraud: FraudSettings | None = None,
        coupon_precedence: CouponPrecedence = CouponPrecedence.CLICK_FIRST,
        postback_token_sha256: str | None = None,
        max_sale_amount: Decimal | None = None,
        max_payout: Decimal | None = None,
        over_limit_action: FraudAction = FraudAction.REVIEW,
        unique_click_hours: int = 24,
        deep_link_domains: tuple[str, ...] = (),
        landing_pages: tuple[LandingPage, ...] = (),
        targeting: Targeting | None = None,
        fail_traffic: FailTraffic | None = None,
    ) -> None:
        """Offers created before the token was stored hashed hold ``postback_token``
        itself: it is hashed here and never shown again (rotate it to drop it)."""
        self.status = OfferStatus(status)
        self.postback_token_sha256 = postback_token_sha256 or (
            token_sha256(postback_token) if postback_token is not None else None)
        self.previous_token_sha256: str | None = None
        self.previous_token_valid_until: datetime | None = None
        self._set_terms(name=name, destination_url=destination_url, visibility=visibility, currency=currency,
                        payout=payout, revenue=revenue, events=events, caps=caps, tiers=tiers, fraud=fraud,
                        coupon_precedence=coupon_precedence, attribution_window_days=attribution_window_days,
                        fallback_url=fallback_url, conversion_security=conversion_security,
                        max_sale_amount=max_sale_amount, max_payout=max_payout,
                        over_limit_action=over_limit_action, unique_click_hours=unique_click_hours,
                        deep_link_domains=deep_link_domains, landing_pages=landing_pages, targeting=targeting,
                        fail_traffic=fail_traffic)

    @property
    def offer_id(self) -> str:
        return self.id.hex

    @property
    def terms(self) -> dict[str, Any]:
        """The editable state, field by field."""
        return {name: getattr(self, name) for name in EDITABLE}

    @property
    def priced_events(self) -> tuple[OfferEvent, ...]:
        """The events a conversion may report: those listed, else the default one."""
        return self.events or (OfferEvent(DEFAULT_EVENT, self.payout, self.revenue),)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.name for event in self.priced_events)

    def change_status(self, status: OfferStatus) -> bool:
        """Move to ``status``; False (and no event) if the offer is already there."""
        if status == self.status:
            return False
        check_offer_status_change(self.status, status)
        self._status_changed(status)
        return True

    @event("StatusChanged", topic=OFFER_STATUS_CHANGED)
    def _status_changed(self, status: OfferStatus) -> None:
        self.status = OfferStatus(status)

    def edit(self, changes: Mapping[str, Any]) -> tuple[str, ...]:
        """Apply an edit (fields not named keep their value); the names of the fields that
        really changed, none (and no event) if nothing changes. A deleted offer is not
        edited, and the currency stays: relationships' custom amounts are in it."""
        if self.status is OfferStatus.DELETED:
            raise Conflict("offer_deleted", "a deleted offer cannot be edited")
        checked = checked_terms(changes)
        check_not_itself(self.offer_id, checked.get("fail_traffic"))
        if checked.get("currency", self.currency) != self.currency:
            raise RuleViolation("currency", f"an offer's currency cannot change (it is {self.currency}): "
                                "its partners' custom amounts are in it; create a new offer",
                                "currency_locked")
        changed = tuple(name for name in EDITABLE if name in checked and checked[name] != getattr(self, name))
        if changed:
            self._updated(**{**self.terms, **checked}, status=self.status,
                          postback_token_sha256=self.postback_token_sha256, changed=changed)
        return changed

    def rotate_postback_token(self, new_token: str, overlap_hours: int, now: datetime) -> datetime:
        """Replace the postback token; the one it replaces keeps working ``overlap_hours``
        more (0: not at all), so the advertiser's servers can move without a lost
        postback. When the overlap ends, returned. Only hashes are recorded."""
        if self.status is OfferStatus.DELETED:
            raise Conflict("offer_deleted", "a deleted offer's postback token cannot be rotated")
        if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
            raise RuleViolation("overlap_hours", f"must be 0 to {MAX_OVERLAP_HOURS} hours", "invalid_overlap")
        valid_until = now + timedelta(hours=overlap_hours)
        self._token_rotated(token_sha256(new_token), self.postback_token_sha256, valid_until)
        return valid_until

    @event("PostbackTokenRotated", topic=OFFER_POSTBACK_TOKEN_ROTATED)
    def _token_rotated(self, token_sha256: str, previous_token_sha256: str | None,
                       previous_valid_until: datetime) -> None:
        self.postback_token_sha256 = token_sha256
        self.previous_token_sha256 = previous_token_sha256
        self.previous_token_valid_until = previous_valid_until

    @event("Updated", topic=OFFER_UPDATED)
    def _updated(self, name: str, destination_url: str, visibility: Visibility, currency: str,
                 payout: Terms, revenue: Terms | None, events: tuple[OfferEvent, ...], caps: tuple[Cap, ...],
                 tiers: tuple[Tier, ...], fraud: FraudSettings | None, coupon_precedence: CouponPrecedence,
                 attribution_window_days: int, fallback_url: str | None,
                 conversion_security: ConversionSecurity | None, status: OfferStatus,
                 changed: tuple[str, ...], postback_token: str | None = None,
                 postback_token_sha256: str | None = None, max_sale_amount: Decimal | None = None,
                 max_payout: Decimal | None = None, over_limit_action: FraudAction = FraudAction.REVIEW,
                 unique_click_hours: int = 24, deep_link_domains: tuple[str, ...] = (),
                 landing_pages: tuple[LandingPage, ...] = (), targeting: Targeting | None = None,
                 fail_traffic: FailTraffic | None = None) -> None:
        """The whole new state (with the status and token hash it had then; events stored
        before hashing hold ``postback_token`` itself) is stored, so the event alone says
        the offer's state, as published."""
        self._set_terms(name=name, destination_url=destination_url, visibility=visibility, currency=currency,
                        payout=payout, revenue=revenue, events=events, caps=caps, tiers=tiers, fraud=fraud,
                        coupon_precedence=coupon_precedence, attribution_window_days=attribution_window_days,
                        fallback_url=fallback_url, conversion_security=conversion_security,
                        max_sale_amount=max_sale_amount, max_payout=max_payout,
                        over_limit_action=over_limit_action, unique_click_hours=unique_click_hours,
                        deep_link_domains=deep_link_domains, landing_pages=landing_pages, targeting=targeting,
                        fail_traffic=fail_traffic)

    def _set_terms(self, *, name: str, destination_url: str, visibility: Visibility, currency: str,
                   payout: Terms, revenue: Terms | None, events: Iterable[OfferEvent], caps: Iterable[Cap],
                   tiers: Iterable[Tier], fraud: FraudSettings | None, coupon_precedence: CouponPrecedence,
                   attribution_window_days: int, fallback_url: str | None,
                   conversion_security: ConversionSecurity | None, max_sale_amount: Decimal | None,
                   max_payout: Decimal | None, over_limit_action: FraudAction,
                   unique_click_hours: int, deep_link_domains: Iterable[str],
                   landing_pages: Iterable[LandingPage], targeting: Targeting | None,
                   fail_traffic: FailTraffic | None) -> None:
        self.name = name
        self.destination_url = destination_url
        self.visibility = Visibility(visibility)
        self.currency = currency
        self.payout = payout
        self.revenue = revenue
        self.events = tuple(events)
        self.caps = tuple(caps)
        self.tiers = tuple(tiers)
        self.fraud = fraud
        self.coupon_precedence = CouponPrecedence(coupon_precedence)
        self.attribution_window_days = attribution_window_days
        self.fallback_url = fallback_url
        # Offers recorded before conversion security existed have none: no check.
        self.conversion_security = conversion_security
        self.max_sale_amount = max_sale_amount
        self.max_payout = max_payout
        self.over_limit_action = FraudAction(over_limit_action)
        self.unique_click_hours = unique_click_hours
        self.deep_link_domains = tuple(deep_link_domains)
        self.landing_pages = tuple(landing_pages)
        self.targeting = targeting
        self.fail_traffic = fail_traffic
