"""Reported conversions in, decisions out: each conversion decided once, attributed (and
priced with the terms in force when it happened) or rejected with a reason code.

One handler call takes a segment of consecutive reports. It takes the event store's
insert lock first (its decisions' events take it anyway: so the tallies are only ever
locked under it, and two instances' runs never wait on each other in a cycle), then
reads what the whole segment needs, one query per kind: which reports are decided, their
clicks, the terms of their offers and partners, coupons, partner statuses, the taken
transaction events and credited orders, the per-IP counts, and the tallies, locked.
It decides the reports in log order through ``domain/rules.py``, each seeing what the
ones before it took (orders, events, tallies), and returns the new Conversion aggregates
and every row they add, as batch statements.

A report is not decided, but parked (``RetryLater``) and answers ``pending``, while:
the partners view has not caught up with its log since the report was fetched; the
offer its click (or coupon) names has no known terms yet; its click is not indexed yet
and may still come (see ``ClickWait``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from afflux_attribution.application.ports import Decisions, Held, IpKey
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.program import Tally, TallyBook, event_terms, tally_keys
from afflux_attribution.domain.rules import (
    Attributed,
    Click,
    ConversionReport,
    Credit,
    Facts,
    choose_credit,
    decide,
)
from afflux_attribution.domain.terms import (
    OfferTerms,
    RelationshipTerms,
    offer_terms_in_force,
    relationship_terms_in_force,
)
from afflux_contracts import ConversionReported, PartnerStatus
from afflux_plumbing.runs import Record, RetryLater, Run
from afflux_plumbing.store import Changes

Relationships = dict[tuple[str, str], list[RelationshipTerms]]
AWAITING_PARTNERS = "awaiting_partners_view"
AWAITING_OFFER = "awaiting_offer_terms"
AWAITING_CLICK = "awaiting_click"


class ClickWait(Protocol):
    """Whether a report whose click is not indexed may still see it come: the tracking
    log's end offsets now (partition → offset; ``None``: cannot tell now), and whether
    attribution's tracking consumer has applied every partition but the report's own up
    to given ends. The report and its click share a partition (both are keyed by the
    transaction_id), and the tracker answers a click only once it is on the log, so on the
    report's own partition the click, if any, is before the report, applied already; the
    other partitions matter when the topic was given more partitions (a key's new records
    may land on another one than its click)."""

    def ends(self) -> Mapping[int, int] | None: ...

    def applied(self, ends: Mapping[int, int], own_partition: int) -> bool: ...


def conversion_report(reported: ConversionReported) -> ConversionReport:
    return ConversionReport(
        conversion_id=reported.conversion_id, converted_at=reported.reported_at,
        transaction_id=reported.transaction_id, coupon_code=reported.coupon_code, event=reported.event,
        sale_amount=reported.amount, currency=reported.currency, order_id=reported.order_id, ip=reported.ip,
        offer_id=reported.offer_id, method=reported.method)


@dataclass
class Pending:
    """One report of the segment, with what the handler found for it."""

    record: Record[ConversionReported]
    report: ConversionReport
    click: Click | None = None
    offer: OfferTerms | None = None
    credit: Credit | None = None

    @property
    def offer_id(self) -> str | None:
        return self.click.offer_id if self.click is not None else self.report.offer_id


@dataclass
class Taken:
    """What the segment's decisions take, as they are made: seen by the ones after them."""

    converted: set[tuple[str, str]]
    credited: set[tuple[str, str]]
    ips: dict[IpKey, int]
    tallies: TallyBook
    new_converted: list[tuple[str, str, str]] = field(default_factory=list)
    new_credited: list[tuple[str, str, str]] = field(default_factory=list)
    ips_added: dict[IpKey, int] = field(default_factory=dict)

    def take(self, report: ConversionReport, decision: Attributed) -> None:
        credit, conversion_id = decision.credit, report.conversion_id
        if report.order_id is not None:
            self.credited.add((credit.offer_id, report.order_id))
            self.new_credited.append((credit.offer_id, report.order_id, conversion_id))
        if credit.click is not None:
            self.converted.add((credit.click.transaction_id, report.event))
            self.new_converted.append((credit.click.transaction_id, report.event, conversion_id))
        approved = 1 if decision.status.value == "approved" else 0
        self.tallies.add(credit.offer_id, credit.partner_id, report.converted_at,
                         Tally(1, approved, decision.payout, decision.revenue or Decimal(0)))
        if report.ip is not None:
            key = (credit.offer_id, report.ip, report.converted_at.date())
            self.ips[key] = self.ips.get(key, 0) + 1
            self.ips_added[key] = self.ips_added.get(key, 0) + 1


def handle_reports(run: Run, store: Decisions, partners_fresh: bool, click_wait: ClickWait) -> Changes:
    """Decide the segment's reports (see the module)."""
    store.lock_event_store()
    reports = _undecided(run, store)
    if not reports:
        return Changes()
    clicks = store.clicks({p.report.transaction_id for p in reports if p.report.transaction_id})
    for pending in reports:
        pending.click = clicks.get(pending.report.transaction_id or "")
    if not partners_fresh:
        _park(store, reports, AWAITING_PARTNERS, "the partners view is catching up with its log")
    _await_clicks(store, reports, click_wait)
    _find_offers(store, reports)
    _credit(store, reports)
    taken = _taken(store, reports)
    statuses, relationships = _partners(store, reports)
    conversions = []
    for pending in reports:
        decision = decide(pending.report, pending.credit, _facts(pending, taken, statuses, relationships))
        conversions.append(Conversion.decide(pending.report, decision, str(pending.record.event_id)))
        if isinstance(decision, Attributed):
            taken.take(pending.report, decision)
    writes = store.decisions_written(conversions, taken.new_converted, taken.new_credited, taken.ips_added)
    return Changes(aggregates=conversions, writes=[*writes, *store.tallies_added(taken.tallies.added)])


def _undecided(run: Run, store: Decisions) -> list[Pending]:
    """The segment's reports not decided before (nor earlier in the segment: a report
    published twice is one conversion)."""
    decided = store.decided({record.payload.conversion_id for record in run})
    found: list[Pending] = []
    for record in run:
        report = conversion_report(record.payload)
        if report.conversion_id not in decided:
            decided.add(report.conversion_id)
            found.append(Pending(record, report))
    return found


def _park(store: Decisions, waiting: Sequence[Pending], reason: str, message: str,
          waits_for: Callable[[Pending], Mapping[int, int] | None] = lambda _: None) -> None:
    store.hold([Held(p.report.conversion_id, p.report.event, p.report.transaction_id, p.offer_id,
                     p.report.converted_at, reason, f"conversion {p.report.conversion_id}: {message}",
                     waits_for(p)) for p in waiting])
    raise RetryLater(f"{len(waiting)} conversions parked: {message}")


def _await_clicks(store: Decisions, reports: list[Pending], click_wait: ClickWait) -> None:
    """Park the reports whose click is not indexed while the tracking log may still bring
    it: until every other partition is applied up to its end as first seen after the
    report was read (kept with the parked report). Only then is it ``click_not_found``."""
    clickless = [p for p in reports if p.report.transaction_id is not None and p.click is None]
    if not clickless:
        return
    held = store.held({p.report.conversion_id for p in clickless})
    seen_now: list[Mapping[int, int] | None] = []  # asked once per call: after every report here was read
    ends: dict[str, Mapping[int, int] | None] = {}
    for pending in clickless:
        before = held.get(pending.report.conversion_id)
        first = before.waits_for if before is not None else None
        if first is None:
            seen_now = seen_now or [click_wait.ends()]
            first = seen_now[0]
        if first is None or not click_wait.applied(first, pending.record.position.partition):
            ends[pending.report.conversion_id] = first
    if ends:
        waiting = [p for p in clickless if p.report.conversion_id in ends]
        _park(store, waiting, AWAITING_CLICK, "its click is not indexed yet and may still be on its way",
              lambda p: ends[p.report.conversion_id])


def _find_offers(store: Decisions, reports: list[Pending]) -> None:
    """The terms in force of each report's offer; a click or coupon naming an offer the
    partners log has not brought yet parks the report (the click proves the offer exists)."""
    offers = store.offer_terms({p.offer_id for p in reports if p.offer_id})
    unknown = []
    for pending in reports:
        versions = offers.get(pending.offer_id or "", [])
        pending.offer = offer_terms_in_force(versions, pending.report.converted_at)
        if pending.offer_id and pending.offer is None and (pending.click or pending.report.coupon_code):
            unknown.append(pending)
    if unknown:
        _park(store, unknown, AWAITING_OFFER, f"offer {unknown[0].offer_id} not known yet")


def _credit(store: Decisions, reports: list[Pending]) -> None:
    """Who each report credits: its click's partner, or its coupon's (``coupon_precedence``)."""
    codes = {(p.report.coupon_code.upper(), p.offer_id) for p in reports
             if p.report.coupon_code and p.offer_id}
    coupons = store.coupon_partners(codes)
    for pending in reports:
        code, offer = pending.report.coupon_code, pending.offer
        partner = coupons.get((code.upper(), pending.offer_id or "")) if code else None
        pending.credit = choose_credit(pending.report, pending.click, partner, pending.offer_id,
                                       offer.coupon_precedence if offer else "click_first")


def _taken(store: Decisions, reports: list[Pending]) -> Taken:
    """The transaction events and orders taken, the per-IP counts and the tallies (locked)
    that the segment's credited reports read."""
    credited = [(p, p.credit) for p in reports if p.credit is not None and p.offer is not None]
    events = {(c.click.transaction_id, p.report.event) for p, c in credited if c.click is not None}
    orders = {(c.offer_id, p.report.order_id) for p, c in credited if p.report.order_id is not None}
    ips = {(c.offer_id, p.report.ip, p.report.converted_at.date()) for p, c in credited
           if p.report.ip is not None and p.offer is not None and p.offer.fraud is not None
           and p.offer.fraud.max_conversions_per_ip_per_day}
    tallies = {key for p, c in credited
               for key in tally_keys(c.offer_id, c.partner_id, p.report.converted_at)}
    return Taken(store.converted(events), store.credited(orders), store.ip_counts(ips),
                 TallyBook(store.locked_tallies(tallies)))


def _partners(store: Decisions, reports: list[Pending]) -> tuple[dict[str, PartnerStatus], Relationships]:
    credits = [p.credit for p in reports if p.credit is not None]
    return (store.partner_statuses({c.partner_id for c in credits}),
            store.relationship_terms({(c.offer_id, c.partner_id) for c in credits}))


def _facts(pending: Pending, taken: Taken, statuses: dict[str, PartnerStatus],
           relationships: Relationships) -> Facts | None:
    """What the rules need about the credited partner on the offer, as the segment stands."""
    credit, offer, report = pending.credit, pending.offer, pending.report
    if credit is None or offer is None:
        return None
    click = credit.click
    converted = (click is not None and event_terms(offer, report.event) is not None
                 and (click.transaction_id, report.event) in taken.converted)
    credited = report.order_id is not None and (credit.offer_id, report.order_id) in taken.credited
    ip_today = taken.ips.get((credit.offer_id, report.ip, report.converted_at.date()), 0) if report.ip else 0
    versions = relationships.get((credit.offer_id, credit.partner_id), [])
    return Facts(offer=offer, relationship=relationship_terms_in_force(versions, report.converted_at),
                 partner_status=statuses.get(credit.partner_id), order_already_credited=credited,
                 event_already_converted=converted,
                 counts=taken.tallies.counts(credit.offer_id, credit.partner_id, report.converted_at,
                                             ip_today))
