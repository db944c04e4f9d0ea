"""Keeping the routing view: the slice of ``afflux.partners.v1`` a click or a postback needs.

The view lives in memory (``RoutingView``), so the hot path never waits on a database,
and in the tracking schema's tables, written in the consumer's transaction with its
position, so a restart rebuilds the memory from them and resumes the log where the
tables are. Each handler takes a run of records (``afflux_plumbing.runs``), applies
their facts to the memory as it goes and returns the rows of the run's newest fact per
key: the memory may run a moment ahead of the committed tables, never behind (a failed
run is applied again, and every fact is idempotent and order-independent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, tzinfo
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from afflux_contracts import AllowDeny as PublishedAllowDeny
from afflux_contracts import (
    Cap,
    CapMetric,
    ConversionSecurity,
    FailTraffic,
    FailTrafficMode,
    OfferCreated,
    OfferPostbackTokenRotated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    SmartLinkSet,
)
from afflux_contracts import Targeting as PublishedTargeting
from afflux_plumbing.runs import Record, Run, handles
from afflux_plumbing.store import Changes, Write
from afflux_tracking.domain.alternatives import Alternatives, Candidate
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.destinations import Destinations, LandingPage
from afflux_tracking.domain.routing import SmartLinkRoute
from afflux_tracking.domain.routing_view import (
    Fact,
    OfferDetails,
    OfferDetailsFact,
    OfferStatusFact,
    PartnerStatusFact,
    PostbackTokens,
    Relationship,
    RelationshipFact,
    RoutingView,
    SmartLinkFact,
    TokensFact,
    newest,
)
from afflux_tracking.domain.security import PostbackSecurity
from afflux_tracking.domain.targeting import AllowDeny, DayParting, Domains, Targeting

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RoutingTables(Protocol):
    """What keeping the view needs of its tables: the rows of a run's newest facts (each
    written only over an older one), and every row back at start."""

    def set_offer_details(self, facts: Sequence[OfferDetailsFact]) -> Sequence[Write]: ...

    def set_offer_statuses(self, facts: Sequence[OfferStatusFact]) -> Sequence[Write]: ...

    def rotate_tokens(self, facts: Sequence[TokensFact]) -> Sequence[Write]: ...

    def set_partner_statuses(self, facts: Sequence[PartnerStatusFact]) -> Sequence[Write]: ...

    def set_relationships(self, facts: Sequence[RelationshipFact]) -> Sequence[Write]: ...

    def set_smart_links(self, facts: Sequence[SmartLinkFact]) -> Sequence[Write]: ...

    def load(self, view: RoutingView) -> None:
        """Apply every stored fact to ``view``."""
        ...


class Routing:
    """The partners log's run handlers, and the memory view they keep."""

    def __init__(self, tables: RoutingTables) -> None:
        self.tables = tables
        self.view = RoutingView()
        tables.load(self.view)

    @handles(OfferCreated, OfferUpdated)
    def on_offers(self, run: Run) -> Changes:
        """An offer's whole state: its details and its status."""
        details = _applied(run, _details, self.view.set_offer_details)
        statuses = _applied(run, _offer_status, self.view.set_offer_status)
        return Changes(writes=[*self.tables.set_offer_details(details),
                               *self.tables.set_offer_statuses(statuses)])

    @handles(OfferStatusChanged)
    def on_offer_statuses(self, run: Run) -> Changes:
        statuses = _applied(run, _offer_status, self.view.set_offer_status)
        return Changes(writes=self.tables.set_offer_statuses(statuses))

    @handles(OfferPostbackTokenRotated)
    def on_token_rotations(self, run: Run) -> Changes:
        rotations = _applied(run, _tokens, self.view.rotate_tokens)
        return Changes(writes=self.tables.rotate_tokens(rotations))

    @handles(PartnerCreated, PartnerUpdated, PartnerStatusChanged)
    def on_partners(self, run: Run) -> Changes:
        statuses = _applied(run, _partner_status, self.view.set_partner_status)
        return Changes(writes=self.tables.set_partner_statuses(statuses))

    @handles(RelationshipSet)
    def on_relationships(self, run: Run) -> Changes:
        relationships = _applied(run, _relationship, self.view.set_relationship)
        return Changes(writes=self.tables.set_relationships(relationships))

    @handles(SmartLinkSet)
    def on_smart_links(self, run: Run) -> Changes:
        smart_links = _applied(run, _smart_link, self.view.set_smart_link)
        return Changes(writes=self.tables.set_smart_links(smart_links))


def _applied(run: Run, fact_of: Callable[[Record[Any]], Fact[K, V]],
             apply: Callable[[Fact[K, V]], None]) -> list[Fact[K, V]]:
    """Each record's fact applied to the memory in log order; the run's newest per key."""
    facts = [fact_of(record) for record in run]
    for fact in facts:
        apply(fact)
    return newest(facts)


def _offer_status(record: Record[Any]) -> OfferStatusFact:
    """From an offer's whole state or a change of its status."""
    return Fact(record.payload.offer_id, record.payload.status, record.occurred_at)


def _partner_status(record: Record[Any]) -> PartnerStatusFact:
    """From a partner's whole state or a change of its status."""
    return Fact(record.payload.partner_id, record.payload.status, record.occurred_at)


def _details(record: Record[OfferCreated | OfferUpdated]) -> OfferDetailsFact:
    offer = record.payload
    details = OfferDetails(offer.destination_url, offer.visibility, offer.fallback_url,
                           security_of(offer.conversion_security), click_caps(offer.caps),
                           offer.unique_click_hours, destinations_of(offer), targeting_of(offer.targeting),
                           fail_traffic_of(offer.fail_traffic))
    return Fact(offer.offer_id, details, record.occurred_at)


def _tokens(record: Record[OfferPostbackTokenRotated]) -> TokensFact:
    rotated = record.payload
    tokens = PostbackTokens(rotated.token_sha256, rotated.previous_token_sha256, rotated.previous_valid_until)
    return Fact(rotated.offer_id, tokens, record.occurred_at)


def _relationship(record: Record[RelationshipSet]) -> RelationshipFact:
    payload = record.payload
    relationship = Relationship(payload.approved, payload.coupon_codes, click_caps(payload.caps),
                                targeting_of(payload.targeting))
    return Fact((payload.offer_id, payload.partner_id), relationship, record.occurred_at)


def _smart_link(record: Record[SmartLinkSet]) -> SmartLinkFact:
    link = record.payload
    offers = Alternatives.ranked((o.priority, Candidate(o.offer_id, o.weight)) for o in link.offers)
    return Fact(link.smart_link_id, SmartLinkRoute(link.smart_link_id, offers, link.fallback_url),
                record.occurred_at)


def fail_traffic_of(published: FailTraffic | None) -> Alternatives | None:
    """An offer's fail traffic as tracking tries it: the listed offers one after the other
    (priority), or one drawn by weight among them (weight)."""
    if published is None or not published.offers:
        return None
    if published.mode is FailTrafficMode.PRIORITY:
        return Alternatives.in_order(offer.offer_id for offer in published.offers)
    return Alternatives.weighted(Candidate(offer.offer_id, offer.weight) for offer in published.offers)


def security_of(published: ConversionSecurity | None) -> PostbackSecurity | None:
    """An offer's published conversion security as tracking checks it."""
    if published is None:
        return None
    return PostbackSecurity.of(published.token_required, published.token_sha256,
                               published.allowed_ips, published.pixel_allowed)


def destinations_of(offer: OfferCreated | OfferUpdated) -> Destinations:
    """Where the offer's valid clicks may land besides its destination URL."""
    pages = tuple(LandingPage(page.id, page.url, page.weight) for page in offer.landing_pages)
    return Destinations(offer.deep_link_domains, pages)


def targeting_of(published: PublishedTargeting | None) -> Targeting | None:
    """An offer's (or a relationship's) published targeting as tracking checks it."""
    if published is None:
        return None

    def lists(given: PublishedAllowDeny) -> AllowDeny:
        return AllowDeny(frozenset(given.allow), frozenset(given.deny))

    parting = published.day_parting
    day_parting = None if parting is None else DayParting(
        time_zone(parting.time_zone), frozenset(parting.weekdays), frozenset(parting.hours))
    return Targeting(lists(published.countries), lists(published.devices), lists(published.operating_systems),
                     lists(published.browsers),
                     Domains(published.referrer_domains.allow, published.referrer_domains.deny), day_parting)


def time_zone(name: str) -> tzinfo:
    """The zone ``name`` names. The partners service accepts only zones it knows; one this
    process's zone data does not (older) is read as UTC, and said, rather than refusing
    the offer's routing."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        log.warning("unknown time zone %r in an offer's day-parting: read as UTC", name)
        return UTC


def click_caps(caps: Iterable[Cap]) -> tuple[ClickCap, ...]:
    """The hard click caps among an offer's or a relationship's caps (soft ones only alert;
    conversion, payout and revenue caps are attribution's)."""
    return tuple(ClickCap(cap.period.value, cap.limit, cap.per_partner)
                 for cap in caps if cap.metric is CapMetric.CLICKS and cap.hard)
