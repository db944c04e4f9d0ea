"""The program's rules beyond the click: which event terms price a conversion (offer
event < tier < the partner's custom terms), the caps a conversion, a paid click or a
priced thousand impressions must stay under, and the fraud checks a conversion must
pass. Pure: the counts a cap or a fraud check needs are passed in, read by the
application in the transaction that records the decision (so they are exact).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

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


TallyKey = tuple[str, str, str]
"""(offer_id, partner_id (``OFFER_WIDE``: every partner), period bucket)."""


@dataclass(frozen=True)
class Tally:
    """What earned in one bucket: conversions attributed (approved ones apart, for tiers),
    clicks paid, and the payout and revenue of all of them (priced impressions too), in
    the offer's currency. Also one earning's share of its buckets."""

    conversions: int = 0
    approved: int = 0
    payout: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)
    clicks: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.conversions + other.conversions, self.approved + other.approved,
                     self.payout + other.payout, self.revenue + other.revenue, self.clicks + other.clicks)


def tally_keys(offer_id: str, partner_id: str, at: datetime) -> list[TallyKey]:
    """The buckets an earning of ``partner_id`` on the offer at ``at`` counts in."""
    buckets = period_keys(at)
    return [(offer_id, partner, buckets[period])
            for partner in (OFFER_WIDE, partner_id) for period in PERIODS]


@dataclass(frozen=True)
class Counts:
    """The tallies a decision reads: per ``(scope, period)`` where scope is ``offer``
    (every partner) or ``partner`` (the credited one), and the conversions from the
    report's IP on the offer today."""

    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    ip_today: int = 0

    def tally(self, scope: str, period: str) -> Tally:
        return self.tallies.get((scope, period), Tally())


class TallyBook:
    """The tallies a handler read (locked) for what it decides, kept current as its
    decisions add to them, so each decision sees every one before it; ``added`` is what
    the handler writes back at its end (one statement). Lives as long as one call."""

    def __init__(self, locked: Mapping[TallyKey, Tally]) -> None:
        self._tallies = dict(locked)
        self.added: dict[TallyKey, Tally] = {}

    def counts(self, offer_id: str, partner_id: str, at: datetime, ip_today: int = 0) -> Counts:
        buckets = period_keys(at)
        return Counts({(scope, period): self._tallies.get((offer_id, partner, buckets[period]), Tally())
                       for scope, partner in (("offer", OFFER_WIDE), ("partner", partner_id))
                       for period in PERIODS}, ip_today)

    def add(self, offer_id: str, partner_id: str, at: datetime, share: Tally) -> None:
        for key in tally_keys(offer_id, partner_id, at):
            self._tallies[key] = self._tallies.get(key, Tally()) + share
            self.added[key] = self.added.get(key, Tally()) + share


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
               share: Tally) -> list[CapCheck]:
    """Every cap of the offer and of the partner's relationship that ``share`` (what one
    conversion, paid click or priced thousand impressions adds) counts toward, measured
    with it taken: payout and revenue caps count every earning; a conversions (clicks)
    cap only what adds conversions (paid clicks)."""
    caps = [(cap, "partner" if cap.per_partner else "offer") for cap in offer.caps]
    if relationship is not None:
        caps += [(cap, "partner") for cap in relationship.caps]
    checks = []
    for cap, scope in caps:
        adds = _metric(share, cap.metric)
        if adds is None or (cap.metric in ("conversions", "clicks") and not adds):
            continue
        before = _metric(counts.tally(scope, cap.period), cap.metric)
        assert before is not None
        would_be = before + adds
        checks.append(CapCheck(cap, scope, would_be, would_be > cap.limit))
    return checks


def _metric(tally: Tally, metric: str) -> Decimal | None:
    values = {"conversions": Decimal(tally.conversions), "clicks": Decimal(tally.clicks),
              "payout": tally.payout, "revenue": tally.revenue}
    return values.get(metric)


@dataclass(frozen=True)
class FraudFinding:
    """One fraud check: ``flag`` is the reason code when it found fraud, else ``None``."""

    rule: str
    flag: str | None
    detail: str


def check_fraud(fraud: FraudRules | None, clicked_at: datetime | None, converted_at: datetime,
                ip: str | None, click_ip: str | None, subs: Mapping[str, str | None],
                ip_today: int) -> list[FraudFinding]:
    """The offer's fraud checks of a conversion in order; each found or passed (none
    configured: none). ``subs``: its click's sub1..sub5."""
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
        findings.append(over_limit("fraud_ip_limit", ip_today, fraud.max_conversions_per_ip_per_day,
                                   f"conversions from {ip}"))
    return [*findings, *blocked_findings(fraud, (ip, click_ip), subs)]


def over_limit(rule: str, seen: int, limit: int, what: str) -> FraudFinding:
    """A daily limit: ``seen`` before this one already reached ``limit``?"""
    return FraudFinding(rule, rule if seen >= limit else None,
                        f"{seen} {what} on the offer today (at most {limit})")


def blocked_findings(fraud: FraudRules, ips: Iterable[str | None],
                     subs: Mapping[str, str | None]) -> list[FraudFinding]:
    """The deny lists (IPs or CIDRs, sub1, sub2..sub5) that conversions, clicks and
    impressions are all checked against; each found or passed (none configured: none)."""
    findings: list[FraudFinding] = []
    if fraud.blocked_ips:
        hit = next((seen for seen in ips if seen and ip_blocked(seen, fraud.blocked_ips)), None)
        findings.append(FraudFinding("fraud_blocked_ip", "fraud_blocked_ip" if hit else None,
                                     f"{hit} is blocked" if hit else "no blocked IP"))
    sub1 = subs.get("sub1")
    if fraud.blocked_sub1:
        blocked = sub1 is not None and sub1 in fraud.blocked_sub1
        findings.append(FraudFinding("fraud_blocked_sub1", "fraud_blocked_sub1" if blocked else None,
                                     f"sub1 {sub1!r} is blocked" if blocked else f"sub1 {sub1!r} allowed"))
    if fraud.blocked_subs:
        hit_sub = next((name for name, values in fraud.blocked_subs if subs.get(name) in values), None)
        findings.append(FraudFinding(
            "fraud_blocked_sub", "fraud_blocked_sub" if hit_sub else None,
            f"{hit_sub} {subs.get(hit_sub)!r} is blocked" if hit_sub else "no blocked sub2..sub5"))
    return findings


def ip_blocked(ip: str, blocked: Iterable[str]) -> bool:
    """Whether ``ip`` is one of ``blocked`` (addresses or CIDR networks)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip in blocked
    return any(network is not None and address in network for network in map(_network, blocked))


@lru_cache(maxsize=4096)
def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A deny list's entry as a network (``None``: not one), parsed once: every decision
    and every click on an offer with a deny list asks (~10 µs a parse)."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
