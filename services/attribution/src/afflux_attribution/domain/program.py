"""The program's rules beyond the click: which event terms price a conversion (offer
event < tier < the partner's custom terms), the caps it must stay under, and the fraud
checks it must pass. Pure: the counts a cap or a fraud check needs are passed in, read
by the application in the transaction that records the decision (so they are exact).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from afflux_attribution.domain.terms import (
    CapRule,
    EventTerms,
    FraudRules,
    OfferTerms,
    PricingTerms,
    RelationshipTerms,
    TierRule,
)

BASE_EVENT = "conversion"
PERIODS = ("day", "week", "month", "lifetime")
OFFER_WIDE = ""
"""The partner key of an offer-wide count."""


def period_keys(at: datetime) -> dict[str, str]:
    """The UTC day, ISO week, month and lifetime buckets ``at`` falls in."""
    year, week, _ = at.isocalendar()
    return {"day": at.strftime("%Y-%m-%d"), "week": f"{year}-W{week:02d}",
            "month": at.strftime("%Y-%m"), "lifetime": "lifetime"}


@dataclass(frozen=True)
class Tally:
    """What was attributed in one bucket: conversions (approved ones apart, for tiers),
    payout and revenue, in the offer's currency."""

    conversions: int = 0
    approved: int = 0
    payout: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)


@dataclass(frozen=True)
class Counts:
    """The tallies a decision reads: per ``(scope, period)`` where scope is ``offer``
    (every partner) or ``partner`` (the credited one), and the conversions from the
    report's IP on the offer today."""

    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    ip_today: int = 0

    def tally(self, scope: str, period: str) -> Tally:
        return self.tallies.get((scope, period), Tally())


def base_event(offer: OfferTerms) -> EventTerms:
    """The offer's base event: the one named ``conversion`` (else its first); an offer
    from before events existed has its default payout and revenue as the base event."""
    for event in offer.events:
        if event.name == BASE_EVENT:
            return event
    if offer.events:
        return offer.events[0]
    return EventTerms(BASE_EVENT, offer.payout, offer.revenue)


def event_terms(offer: OfferTerms, name: str) -> EventTerms | None:
    """The offer's event ``name``; ``None`` if the offer has no such event. An offer
    without a list of events prices every event name with its default terms."""
    if not offer.events:
        return EventTerms(name, offer.payout, offer.revenue)
    return next((event for event in offer.events if event.name == name), None)


@dataclass(frozen=True)
class Pricing:
    """The terms chosen for one conversion, and where the payout terms came from."""

    payout: PricingTerms
    revenue: PricingTerms | None
    source: str
    detail: str


def choose_terms(offer: OfferTerms, event: EventTerms, relationship: RelationshipTerms | None,
                 approved_this_month: int) -> Pricing:
    """Payout precedence, lowest to highest: the offer event's < the tier reached (base
    event only) < the partner's custom terms (for that event; the relationship's plain
    payout/revenue customise the base event). Revenue: the event's < the custom one."""
    is_base = event.name == base_event(offer).name
    payout, revenue, source = event.payout, event.revenue, "offer_event"
    detail = f"event {event.name!r} of the offer"
    tier = tier_reached(offer.tiers, approved_this_month) if is_base else None
    if tier is not None:
        payout, source = tier.payout, "tier"
        detail = (f"tier of {tier.min_conversions} approved conversions this month reached "
                  f"({approved_this_month})")
    custom = _custom(relationship, event.name, is_base)
    if custom is not None:
        if custom[0] is not None:
            payout, source, detail = custom[0], "relationship", "the partner's custom payout"
        revenue = custom[1] or revenue
    return Pricing(payout, revenue, source, detail)


def _custom(relationship: RelationshipTerms | None, name: str,
            is_base: bool) -> tuple[PricingTerms | None, PricingTerms | None] | None:
    if relationship is None:
        return None
    for custom in relationship.events:
        if custom.name == name:
            return custom.payout, custom.revenue
    if is_base:
        return relationship.payout, relationship.revenue
    return None


def tier_reached(tiers: Iterable[TierRule], approved_this_month: int) -> TierRule | None:
    """The highest tier whose threshold the partner's approved conversions this month
    have reached before this one (the conversion after the threshold earns the tier)."""
    reached = [tier for tier in tiers if approved_this_month >= tier.min_conversions]
    return max(reached, key=lambda tier: tier.min_conversions) if reached else None


@dataclass(frozen=True)
class CapCheck:
    """One cap measured against the conversion: ``over`` if taking it would exceed it."""

    cap: CapRule
    scope: str
    would_be: Decimal
    over: bool

    @property
    def rule(self) -> str:
        return f"cap {self.cap.metric}/{self.cap.period} {self.scope}"

    @property
    def detail(self) -> str:
        kind = "hard" if self.cap.hard else "soft"
        if not self.over:
            return f"{self.would_be} of {kind} cap {self.cap.limit}"
        if self.cap.hard:
            return f"{kind} cap {self.cap.limit} would be exceeded ({self.would_be})"
        return f"{kind} cap {self.cap.limit} exceeded ({self.would_be}): reported only"


def check_caps(offer: OfferTerms, relationship: RelationshipTerms | None, counts: Counts,
               payout: Decimal, revenue: Decimal | None) -> list[CapCheck]:
    """Every conversion, payout and revenue cap of the offer and of the partner's
    relationship, measured with this conversion taken (click caps are tracking's)."""
    caps = [(cap, "partner" if cap.per_partner else "offer") for cap in offer.caps]
    if relationship is not None:
        caps += [(cap, "partner") for cap in relationship.caps]
    adds = {"conversions": Decimal(1), "payout": payout, "revenue": revenue or Decimal(0)}
    checks = []
    for cap, scope in caps:
        if cap.metric not in adds:
            continue
        tally = counts.tally(scope, cap.period)
        before = {"conversions": Decimal(tally.conversions), "payout": tally.payout,
                  "revenue": tally.revenue}[cap.metric]
        would_be = before + adds[cap.metric]
        checks.append(CapCheck(cap, scope, would_be, would_be > cap.limit))
    return checks


@dataclass(frozen=True)
class FraudFinding:
    """One fraud check: ``flag`` is the reason code when it found fraud, else ``None``."""

    rule: str
    flag: str | None
    detail: str


def check_fraud(fraud: FraudRules | None, clicked_at: datetime | None, converted_at: datetime,
                ip: str | None, click_ip: str | None, sub1: str | None, ip_today: int) -> list[FraudFinding]:
    """The offer's fraud checks in order; each found or passed (none configured: none)."""
    if fraud is None:
        return []
    findings: list[FraudFinding] = []
    if fraud.min_seconds_to_convert is not None and clicked_at is not None:
        seconds = (converted_at - clicked_at).total_seconds()
        fast = seconds < fraud.min_seconds_to_convert
        findings.append(FraudFinding("fraud_too_fast", "fraud_too_fast" if fast else None,
                                     f"converted {seconds:.0f}s after the click "
                                     f"(minimum {fraud.min_seconds_to_convert}s)"))
    if fraud.max_conversions_per_ip_per_day is not None and ip is not None:
        many = ip_today >= fraud.max_conversions_per_ip_per_day
        findings.append(FraudFinding("fraud_ip_limit", "fraud_ip_limit" if many else None,
                                     f"{ip_today} conversions from {ip} on the offer today "
                                     f"(at most {fraud.max_conversions_per_ip_per_day})"))
    if fraud.blocked_ips:
        hit = next((seen for seen in (ip, click_ip) if seen and ip_blocked(seen, fraud.blocked_ips)), None)
        findings.append(FraudFinding("fraud_blocked_ip", "fraud_blocked_ip" if hit else None,
                                     f"{hit} is blocked" if hit else "no blocked IP"))
    if fraud.blocked_sub1:
        blocked = sub1 is not None and sub1 in fraud.blocked_sub1
        findings.append(FraudFinding("fraud_blocked_sub1", "fraud_blocked_sub1" if blocked else None,
                                     f"sub1 {sub1!r} is blocked" if blocked else f"sub1 {sub1!r} allowed"))
    return findings


def ip_blocked(ip: str, blocked: Iterable[str]) -> bool:
    """Whether ``ip`` is one of ``blocked`` (addresses or CIDR networks)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip in blocked
    for entry in blocked:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
