"""The routing view in memory: everything a click or a postback needs to be decided
without a database round trip.

Partners events arrive in order per key only, so each group of facts (an offer's
details, its status, its postback tokens, a partner's status, a relationship) keeps the
``occurred_at`` of the event that set it, and an older fact never overwrites a newer
one (last writer wins per group). Any arrival order and any redelivery leave the same
view, the same rule the view's PostgreSQL tables follow, so the memory can be rebuilt
from them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from afflux_contracts import OfferStatus, PartnerStatus, Visibility
from afflux_tracking.domain.alternatives import Alternatives
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.destinations import NO_DESTINATIONS, Destinations
from afflux_tracking.domain.routing import LinkState, OfferRoute, PartnerRoute, SmartLinkRoute
from afflux_tracking.domain.security import PostbackSecurity
from afflux_tracking.domain.targeting import Targeting

LINKS_KEPT = 100_000
"""Link states kept between two changes of the view at most (a lookup past it builds one
and keeps none)."""
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Fact(Generic[K, V]):
    """One group of facts about ``key``, as an event of ``at`` set it."""

    key: K
    value: V
    at: datetime


def newest(facts: Iterable[Fact[K, V]]) -> list[Fact[K, V]]:
    """One fact per key, the newest (of equals, the later one): what applying them one
    after another leaves, so a run's facts can be written as one row per key."""
    kept: dict[K, Fact[K, V]] = {}
    for fact in facts:
        if fact.key not in kept or kept[fact.key].at <= fact.at:
            kept[fact.key] = fact
    return list(kept.values())


@dataclass(frozen=True)
class OfferDetails:
    destination_url: str
    visibility: Visibility
    fallback_url: str | None
    security: PostbackSecurity | None
    click_caps: tuple[ClickCap, ...] = ()
    unique_click_hours: int = 24
    destinations: Destinations = NO_DESTINATIONS
    targeting: Targeting | None = None
    fail_traffic: Alternatives | None = None


@dataclass(frozen=True)
class PostbackTokens:
    """A rotation's hashes: the new token, and the one it replaced until ``previous_until``."""

    current: str
    previous: str | None
    previous_until: datetime | None


@dataclass(frozen=True)
class Relationship:
    approved: bool
    coupon_codes: tuple[str, ...] = ()
    click_caps: tuple[ClickCap, ...] = ()
    targeting: Targeting | None = None
    """Narrows the offer's targeting for this partner's clicks (``None``: the offer's alone)."""


OfferDetailsFact = Fact[str, OfferDetails]
OfferStatusFact = Fact[str, OfferStatus]
TokensFact = Fact[str, PostbackTokens]
PartnerStatusFact = Fact[str, PartnerStatus]
RelationshipFact = Fact[tuple[str, str], Relationship]
SmartLinkFact = Fact[str, SmartLinkRoute]


def _newer(current: Fact[K, V] | None, candidate: Fact[K, V]) -> bool:
    return current is None or current.at <= candidate.at


@dataclass
class _Offer:
    details: OfferDetailsFact | None = None
    status: OfferStatusFact | None = None
    tokens: TokensFact | None = None

    def security(self) -> PostbackSecurity | None:
        """The offer's security with the tokens a postback may present now: a rotation
        newer than the details (or naming the details' own token, as the state
        published after it does) brings the new token and, until its overlap ends, the
        one it replaced."""
        details, tokens = self.details, self.tokens
        security = details.value.security if details is not None else None
        if security is None or tokens is None:
            return security
        rotation = tokens.value
        if details is not None and details.at > tokens.at and security.token_sha256 != rotation.current:
            return security
        return replace(security, token_sha256=rotation.current, previous_token_sha256=rotation.previous,
                       previous_valid_until=rotation.previous_until)


@dataclass
class RoutingView:
    """Offers, partners, relationships and the coupon register, newest fact per group.

    A link's state is built once and kept until the view takes a newer fact of any kind
    (``_links``): a click looks up one link, a rerouted one up to three, and building one
    (offer route, security, partner, caps) was most of a lookup's cost. The view is
    written by the partners consumer and read by intake, perhaps on another thread: a
    write replaces the whole memory after the facts are in, and a lookup stores into the
    memory it started with, so a state built from older facts lands in a memory no longer
    read."""

    _offers: dict[str, _Offer] = field(default_factory=dict)
    _partners: dict[str, PartnerStatusFact] = field(default_factory=dict)
    _relationships: dict[tuple[str, str], RelationshipFact] = field(default_factory=dict)
    _coupons: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    _smart_links: dict[str, SmartLinkFact] = field(default_factory=dict)
    _links: dict[tuple[str, str], LinkState] = field(default_factory=dict)

    def _changed(self) -> None:
        """Forget every link state built so far (called after a newer fact is in)."""
        self._links = {}

    def set_offer_details(self, fact: OfferDetailsFact) -> None:
        offer = self._offers.setdefault(fact.key, _Offer())
        if _newer(offer.details, fact):
            offer.details = fact
            self._changed()

    def set_offer_status(self, fact: OfferStatusFact) -> None:
        offer = self._offers.setdefault(fact.key, _Offer())
        if _newer(offer.status, fact):
            offer.status = fact
            self._changed()

    def rotate_tokens(self, fact: TokensFact) -> None:
        offer = self._offers.setdefault(fact.key, _Offer())
        if _newer(offer.tokens, fact):
            offer.tokens = fact
            self._changed()

    def set_partner_status(self, fact: PartnerStatusFact) -> None:
        if _newer(self._partners.get(fact.key), fact):
            self._partners[fact.key] = fact
            self._changed()

    def set_relationship(self, fact: RelationshipFact) -> None:
        current = self._relationships.get(fact.key)
        if not _newer(current, fact):
            return
        for code in current.value.coupon_codes if current is not None else ():
            self._coupons.get(code.upper(), set()).discard(fact.key)
        self._relationships[fact.key] = fact
        for code in fact.value.coupon_codes:
            self._coupons.setdefault(code.upper(), set()).add(fact.key)
        self._changed()

    def set_smart_link(self, fact: SmartLinkFact) -> None:
        if _newer(self._smart_links.get(fact.key), fact):
            self._smart_links[fact.key] = fact

    def smart_link(self, smart_link_id: str) -> SmartLinkRoute | None:
        fact = self._smart_links.get(smart_link_id)
        return fact.value if fact is not None else None

    def partner_known(self, partner_id: str) -> bool:
        return partner_id in self._partners

    def offer(self, offer_id: str) -> OfferRoute | None:
        """A routable offer: one whose details are known (a status change can arrive first)."""
        offer = self._offers.get(offer_id)
        if offer is None or offer.details is None:
            return None
        details = offer.details.value
        status = offer.status.value if offer.status is not None else OfferStatus.ACTIVE
        return OfferRoute(offer_id, details.destination_url, status, details.visibility, details.fallback_url,
                          offer.security(), details.unique_click_hours, details.destinations,
                          details.targeting, details.fail_traffic)

    def link(self, offer_id: str, partner_id: str) -> LinkState:
        links = self._links  # the memory as of now: a write meanwhile replaces it
        known = links.get((offer_id, partner_id))
        if known is None:
            known = self._built(offer_id, partner_id)
            if len(links) < LINKS_KEPT:  # clicks on made-up links must not grow it without end
                links[offer_id, partner_id] = known
        return known

    def _built(self, offer_id: str, partner_id: str) -> LinkState:
        partner = self._partners.get(partner_id)
        relationship = self._relationships.get((offer_id, partner_id))
        offer = self._offers.get(offer_id)
        caps = offer.details.value.click_caps if offer is not None and offer.details is not None else ()
        if relationship is not None:  # the partner's own caps count its clicks only
            caps += tuple(ClickCap(cap.period, cap.limit, per_partner=True)
                          for cap in relationship.value.click_caps)
        return LinkState(
            offer=self.offer(offer_id),
            partner=PartnerRoute(partner_id, partner.value) if partner is not None else None,
            approved=relationship.value.approved if relationship is not None else None,
            click_caps=caps,
            targeting=relationship.value.targeting if relationship is not None else None,
        )

    def coupon_offers(self, code: str) -> list[str]:
        """The offers a coupon code (any case) is registered on, in a stable order."""
        return sorted({offer_id for offer_id, _ in self._coupons.get(code.upper(), ())})
