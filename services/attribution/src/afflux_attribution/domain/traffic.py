"""Paid traffic is earned traffic: whether a click on a CPC offer, or an impression on a
CPM offer, earns.

A visit earns only if, in this order: tracking found it valid; no deny list of the
offer names it (blocked IPs or CIDRs, sub1, sub2..sub5); its IP (and, for clicks, its
visitor) is within the offer's daily limits, counting every valid visit of the day on
the offer; the visitor has not earned on the offer yet in this window of the offer's
``unique_click_hours``; and, for a click, taking it keeps the offer's and the partner's
caps (paid clicks, payout, revenue) within their hard limits. An earning impression
counts toward its partner's next thousand; the thousandth prices the thousand, which
must itself fit the payout caps (a thousand over a hard cap is never paid).

The visitor is known by two keys, so neither a new cookie per request nor a new address
with the same cookie earns twice: the tracker's ``visitor_id`` (its first-party cookie,
else the hash of IP and user agent), and that hash (``derived_visitor_id``, derived here
for visits recorded before ``visitor_id`` existed).
Windows are fixed spans of ``unique_click_hours`` since the Unix epoch (24 hours: each
UTC day), judged at the visit's own time, so a replay judges them as the live run did.

Pure: ``TrafficBook`` holds what the handler read (locked) and what its visits add, and
lives as long as one handler call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from afflux_attribution.domain.priced import IMPRESSIONS_PER_BLOCK, UnitPrice
from afflux_attribution.domain.program import Tally, TallyBook, blocked_findings, check_caps, over_limit
from afflux_attribution.domain.terms import OfferTerms, RelationshipTerms
from afflux_contracts import ClickOutcome, RejectionReason
from afflux_contracts.tracking import derived_visitor_id

CLICK = "click"
IMPRESSION = "impression"

UniqueKey = tuple[str, str, str, int]
"""(offer_id, kind, visitor key, window number): taken once a visit of the visitor earns."""
CountKey = tuple[str, str, str, date]
"""(offer_id, counter (``click_ip``, ``click_visitor``, ``impression_ip``), subject, UTC day)."""
PartnerKey = tuple[str, str]
"""(offer_id, partner_id)."""


@dataclass(frozen=True)
class Visit:
    """A click (``ref``: its transaction_id) or an impression (its impression_id)."""

    kind: str
    ref: str
    offer_id: str
    partner_id: str
    at: datetime
    outcome: ClickOutcome
    ip: str | None = None
    user_agent: str | None = None
    visitor_id: str | None = None
    subs: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.outcome is ClickOutcome.VALID

    @property
    def visitor_keys(self) -> tuple[str, ...]:
        """The keys the visitor is known by: the tracker's visitor (its cookie, else the
        hash of IP and user agent), then that hash (visits without either share one key)."""
        derived = derived_visitor_id(self.ip, self.user_agent)
        return (self.visitor_id, derived) if self.visitor_id and self.visitor_id != derived else (derived,)


def window(at: datetime, hours: int) -> int:
    """The number of the ``hours``-long window since the epoch that ``at`` falls in."""
    return int(at.timestamp()) // (max(hours, 1) * 3600)


def unique_keys(visit: Visit, offer: OfferTerms) -> list[UniqueKey]:
    span = window(visit.at, offer.unique_click_hours)
    return [(visit.offer_id, visit.kind, key, span) for key in visit.visitor_keys]


def count_keys(visit: Visit, offer: OfferTerms) -> list[tuple[CountKey, int, RejectionReason, str]]:
    """The daily counters the offer limits this visit by: (key, limit, reason, what)."""
    fraud, day = offer.fraud, visit.at.date()
    if fraud is None:
        return []
    limits: tuple[tuple[int | None, str, str | None, RejectionReason], ...] = (
        (fraud.max_clicks_per_ip_per_day, "click_ip", visit.ip, RejectionReason.FRAUD_CLICK_IP_LIMIT),
        (fraud.max_clicks_per_visitor_per_day, "click_visitor", visit.visitor_keys[0],
         RejectionReason.FRAUD_CLICK_VISITOR_LIMIT))
    if visit.kind == IMPRESSION:
        limits = ((fraud.max_impressions_per_ip_per_day, "impression_ip", visit.ip,
                   RejectionReason.FRAUD_IMPRESSION_IP_LIMIT),)
    return [((visit.offer_id, counter, subject, day), limit, reason, f"{visit.kind}s from {subject}")
            for limit, counter, subject, reason in limits if limit is not None and subject is not None]


@dataclass(frozen=True)
class Earned:
    """The visit earns: a click ``price`` at once; an impression counts toward a thousand,
    and ``block`` (when it completes one) is that thousand's number, priced at ``price``."""

    price: UnitPrice | None = None
    block: int | None = None


@dataclass(frozen=True)
class Refused:
    """The visit earns nothing, for ``reason`` (``block``: the thousand it completed, refused)."""

    reason: RejectionReason
    detail: str
    block: int | None = None


Outcome = Earned | Refused


@dataclass
class TrafficBook:
    """What one handler call read, locked, about the visits it judges (unique keys already
    taken, daily counters, impression counts, tallies), and what its visits add."""

    taken: set[UniqueKey]
    counters: dict[CountKey, int]
    impressions: dict[PartnerKey, int]
    tallies: TallyBook
    newly_taken: dict[UniqueKey, str] = field(default_factory=dict)
    """The keys taken by this call's visits, and the earning visit of each."""
    counted: dict[CountKey, int] = field(default_factory=dict)
    impressions_added: dict[PartnerKey, int] = field(default_factory=dict)

    def judge(self, visit: Visit, offer: OfferTerms, relationship: RelationshipTerms | None,
              price: UnitPrice) -> Outcome:
        """Judge a valid visit on an offer that pays for its kind, and take what it earns."""
        refused = self._screen(visit, offer)
        if refused is not None:
            return refused
        keys = unique_keys(visit, offer)
        if any(key in self.taken for key in keys):
            return Refused(RejectionReason.NOT_UNIQUE, f"the visitor already earned on the offer within "
                                                       f"{offer.unique_click_hours} hours")
        if visit.kind == CLICK:
            share = Tally(clicks=1, payout=price.payout, revenue=price.revenue or Decimal(0))
            over = self._over_cap(visit, offer, relationship, share)
            if over is not None:
                return Refused(RejectionReason.OVER_CAP, over)
            self._take(keys, visit.ref)
            self.tallies.add(visit.offer_id, visit.partner_id, visit.at, share)
            return Earned(price)
        self._take(keys, visit.ref)
        return self._count_impression(visit, offer, relationship, price)

    def _screen(self, visit: Visit, offer: OfferTerms) -> Refused | None:
        """The deny lists, then the daily limits (every screened visit counts toward them)."""
        if offer.fraud is None:
            return None
        for finding in blocked_findings(offer.fraud, (visit.ip,), visit.subs):
            if finding.flag is not None:
                return Refused(RejectionReason(finding.flag), finding.detail)
        refused = None
        for key, limit, reason, what in count_keys(visit, offer):
            seen = self.counters.get(key, 0)
            self.counters[key] = seen + 1
            self.counted[key] = self.counted.get(key, 0) + 1
            finding = over_limit(reason.value, seen, limit, what)
            if refused is None and finding.flag is not None:
                refused = Refused(reason, finding.detail)
        return refused

    def _over_cap(self, visit: Visit, offer: OfferTerms, relationship: RelationshipTerms | None,
                  share: Tally) -> str | None:
        counts = self.tallies.counts(visit.offer_id, visit.partner_id, visit.at)
        checks = check_caps(offer, relationship, counts, share)
        over = next((cap for cap in checks if cap.over and cap.cap.hard), None)
        return f"{over.rule}: {over.detail}" if over is not None else None

    def _take(self, keys: Iterable[UniqueKey], ref: str) -> None:
        for key in keys:
            self.taken.add(key)
            self.newly_taken[key] = ref

    def _count_impression(self, visit: Visit, offer: OfferTerms, relationship: RelationshipTerms | None,
                          price: UnitPrice) -> Outcome:
        pair = (visit.offer_id, visit.partner_id)
        count = self.impressions.get(pair, 0) + 1
        self.impressions[pair] = count
        self.impressions_added[pair] = self.impressions_added.get(pair, 0) + 1
        if count % IMPRESSIONS_PER_BLOCK:
            return Earned()
        block = count // IMPRESSIONS_PER_BLOCK
        share = Tally(payout=price.payout, revenue=price.revenue or Decimal(0))
        over = self._over_cap(visit, offer, relationship, share)
        if over is not None:
            return Refused(RejectionReason.OVER_CAP, f"thousand {block}: {over}", block)
        self.tallies.add(visit.offer_id, visit.partner_id, visit.at, share)
        return Earned(price, block)
