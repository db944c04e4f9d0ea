"""Clicks and impressions in: every click indexed (no click is lost), and the traffic
that earns priced — a click on a CPC offer, a thousand impressions on a CPM offer
(``domain/traffic.py`` says what earns).

One handler call takes a segment of consecutive clicks and impressions: it reads the
terms of every offer they name (one query), and only when some of them are on an offer
that pays for their kind does it take the event store's insert lock and read, locked,
the unique keys, daily counters, impression counts and tallies those visits need (one
query per kind); it then judges the visits in log order in memory and returns the
click index rows, the new priced clicks and thousands, and what the visits added to
the counts, each as one batch statement.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from eventsourcing.domain import Aggregate

from afflux_attribution.application.ports import IndexedClick, OutcomeKey, Traffic
from afflux_attribution.domain.priced import PricedClick, PricedImpressions, UnitPrice, priced_by, unit_price
from afflux_attribution.domain.program import TallyBook, tally_keys
from afflux_attribution.domain.rules import Click
from afflux_attribution.domain.terms import (
    OfferTerms,
    RelationshipTerms,
    offer_terms_in_force,
    relationship_terms_in_force,
)
from afflux_attribution.domain.traffic import (
    CLICK,
    IMPRESSION,
    Earned,
    Outcome,
    TrafficBook,
    Visit,
    count_keys,
    unique_keys,
)
from afflux_contracts import ClickRecorded, ImpressionRecorded, PayoutType
from afflux_plumbing.runs import RetryLater, Run
from afflux_plumbing.store import Changes

MODEL = {CLICK: PayoutType.CPC, IMPRESSION: PayoutType.CPM}
EARNED = "earned"


def visit_of(payload: ClickRecorded | ImpressionRecorded) -> Visit:
    """A tracking record as the pricing rules see it."""
    subs = {name: getattr(payload, name) for name in ("sub1", "sub2", "sub3", "sub4", "sub5")}
    visitor_id = payload.visitor_id
    if isinstance(payload, ClickRecorded):
        return Visit(CLICK, payload.transaction_id, payload.offer_id, payload.partner_id, payload.clicked_at,
                     payload.outcome, payload.ip, payload.user_agent, visitor_id, subs)
    return Visit(IMPRESSION, payload.impression_id, payload.offer_id, payload.partner_id,
                 payload.impressed_at, payload.outcome, payload.ip, payload.user_agent, visitor_id, subs)


@dataclass(frozen=True)
class Priceable:
    """A valid visit on an offer paying for its kind, with the terms in force then."""

    visit: Visit
    offer: OfferTerms
    relationship: RelationshipTerms | None
    price: UnitPrice


def handle_traffic(run: Run, store: Traffic, partners_fresh: bool) -> Changes:
    """Index the segment's clicks and judge its paid traffic (see the module)."""
    visits = [visit_of(record.payload) for record in run]
    valid = [visit for visit in visits if visit.valid]
    if valid and not partners_fresh:
        raise RetryLater(f"{len(valid)} valid clicks or impressions: the partners view has not caught up "
                         "with the partners log yet")
    priceable = _once(_priceable(valid, store), store)
    outcomes: dict[str, Outcome] = {}
    aggregates: list[Aggregate] = []
    book = None
    if priceable:
        store.lock_event_store()
        book = _book(priceable, store)
        for item in priceable:
            outcome = book.judge(item.visit, item.offer, item.relationship, item.price)
            outcomes[item.visit.ref] = outcome
            aggregates += _priced(item, outcome)
    writes = store.traffic_written(
        [_indexed(visit, outcomes.get(visit.ref)) for visit in visits if visit.kind == CLICK],
        book.newly_taken if book else {}, book.counted if book else {},
        book.impressions_added if book else {}, _tallied(priceable, outcomes))
    if book is not None:
        writes += store.tallies_added(book.tallies.added)
    return Changes(aggregates=aggregates, writes=writes)


def _priceable(valid: list[Visit], store: Traffic) -> list[Priceable]:
    """The valid visits on offers that pay for their kind (with their terms in force)."""
    offers = store.offer_terms({visit.offer_id for visit in valid})
    paying = []
    for visit in valid:
        offer = offer_terms_in_force(offers.get(visit.offer_id, []), visit.at)
        if offer is not None and priced_by(offer, MODEL[visit.kind]):
            paying.append((visit, offer))
    if not paying:
        return []
    relationships = store.relationship_terms({(v.offer_id, v.partner_id) for v, _ in paying})
    found = []
    for visit, offer in paying:
        relationship = relationship_terms_in_force(relationships.get((visit.offer_id, visit.partner_id), []),
                                                   visit.at)
        price = unit_price(offer, relationship, MODEL[visit.kind])
        if price is not None:
            found.append(Priceable(visit, offer, relationship, price))
    return found


def _once(priceable: list[Priceable], store: Traffic) -> list[Priceable]:
    """Each click judged once: one delivered again (under a new event_id) or twice in the
    segment is indexed already and earns nothing more."""
    indexed = store.clicks({item.visit.ref for item in priceable if item.visit.kind == CLICK})
    seen: set[str] = set()
    once = []
    for item in priceable:
        if item.visit.kind == CLICK and (item.visit.ref in indexed or item.visit.ref in seen):
            continue
        seen.add(item.visit.ref)
        once.append(item)
    return once


def _book(priceable: list[Priceable], store: Traffic) -> TrafficBook:
    """Everything the segment's paid traffic reads, locked (one query per kind)."""
    unique = {key for item in priceable for key in unique_keys(item.visit, item.offer)}
    counters = {key for item in priceable for key, *_ in count_keys(item.visit, item.offer)}
    impressions = {(i.visit.offer_id, i.visit.partner_id) for i in priceable if i.visit.kind == IMPRESSION}
    tallies = {key for i in priceable for key in tally_keys(i.visit.offer_id, i.visit.partner_id, i.visit.at)}
    return TrafficBook(store.unique_taken(unique), store.locked_counters(counters),
                       store.locked_impressions(impressions), TallyBook(store.locked_tallies(tallies)))


def _priced(item: Priceable, outcome: Outcome) -> list[Aggregate]:
    """What an earning visit publishes: its priced click, or the thousand it completed."""
    visit = item.visit
    if not isinstance(outcome, Earned) or outcome.price is None:
        return []
    if visit.kind == CLICK:
        return [PricedClick.price(visit.ref, visit.partner_id, item.offer, item.relationship, outcome.price,
                                  visit.at, visit.subs)]
    assert outcome.block is not None
    return [PricedImpressions.price(visit.partner_id, item.offer, item.relationship, outcome.price,
                                    outcome.block, visit.ref, visit.at)]


def _indexed(visit: Visit, outcome: Outcome | None) -> IndexedClick:
    subs = visit.subs
    click = Click(visit.ref, visit.offer_id, visit.partner_id, visit.at, visit.outcome, subs.get("sub1"),
                  visit.ip, subs.get("sub2"), subs.get("sub3"), subs.get("sub4"), subs.get("sub5"))
    pricing = None if outcome is None else EARNED if isinstance(outcome, Earned) else outcome.reason.value
    return IndexedClick(click, visit.visitor_keys[0], pricing)


def _tallied(priceable: list[Priceable], outcomes: dict[str, Outcome]) -> Counter[OutcomeKey]:
    """How many visits earned, and were refused for each reason, per offer, partner, kind and day."""
    return Counter((item.visit.offer_id, item.visit.partner_id, item.visit.kind, item.visit.at.date(),
                    EARNED if isinstance(outcomes[item.visit.ref], Earned)
                    else outcomes[item.visit.ref].reason.value)  # type: ignore[union-attr]
                   for item in priceable)
