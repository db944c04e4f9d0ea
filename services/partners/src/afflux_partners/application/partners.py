"""The partners application: the use cases of the admin API over the event store.

Each command loads an aggregate, asks it to change, and saves its new events together
with the rows of the list indexes and the coupon register (one transaction); the
outbox relay publishes them. Reads of one partner, offer or relationship come
straight from the aggregates, so an answer always reflects every change this
service has acknowledged; lists page over the indexes and load the aggregates. The
indexes and the register are what the use cases name (``ProgramViews``);
``adapters/store.py`` keeps them on PostgreSQL.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from afflux_contracts import utc_now
from afflux_partners.application.keys import DrawnKey, draw_key
from afflux_partners.application.transcodings import register_value_transcodings
from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.relationship import Relationship, relationship_id
from afflux_partners.domain.rules import Conflict, RuleViolation
from afflux_partners.domain.smart_link import SmartLink
from afflux_partners.domain.values import (
    ApiKey,
    FailTraffic,
    OfferStatus,
    PartnerStatus,
    RoutedOffer,
    Standing,
    Visibility,
)
from afflux_plumbing.http import ApiError, NotFound
from afflux_plumbing.store import TrackedApplication, Write

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
ATTEMPTS = 3
"""How often a command is retried when another writer changed the same aggregate
between our read and our write (optimistic concurrency)."""


def new_postback_token() -> str:
    """An offer's postback secret: 32 random bytes, URL-safe (it travels in a query string)."""
    return secrets.token_urlsafe(32)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the ``seq`` the next page starts after (None: last page)."""

    items: list[T]
    next_after: int | None


@dataclass(frozen=True)
class Listing:
    """What a list asks for (``None`` is "any"): ``kind`` is partners, offers, an offer's
    relationships (``offer_id``) or a partner's (``partner_relationships``, ``partner_id``),
    whose ``status`` is their standing, or smart links (``smart_links``)."""

    kind: str
    status: str | None = None
    tag: str | None = None
    q: str | None = None
    offer_id: str | None = None
    partner_id: str | None = None


class ProgramViews(Protocol):
    """What the use cases need of the list indexes and the coupon register: the rows an
    aggregate's new state puts there (written with its events), and the reads."""

    def partner_rows(self, partner: Partner) -> Sequence[Write]: ...

    def offer_rows(self, offer: Offer) -> Sequence[Write]: ...

    def smart_link_rows(self, smart_link: SmartLink) -> Sequence[Write]: ...

    def relationship_rows(self, relationship: Relationship) -> Sequence[Write]:
        """Its index row, and exactly its coupon codes in the register."""
        ...

    def codes_of_others(self, relationship: Relationship) -> list[dict[str, Any]]:
        """Those of its codes another relationship holds: ``code``, ``offer_id``, ``partner_id``."""
        ...

    def page(self, listing: Listing, after: int | None, limit: int) -> list[dict[str, Any]]:
        """``id`` and ``seq`` of up to ``limit + 1`` items after ``after``, in creation order."""
        ...

    def unindexed(self) -> list[tuple[str, UUID]]:
        """(kind, id) of the partners, offers, relationships and smart links recorded before
        the indexes existed: they are indexed at start."""
        ...


@dataclass(frozen=True)
class WithToken:
    """An offer and its postback token, shown this once (on creation or rotation)."""

    offer: Offer
    postback_token: str


@dataclass(frozen=True)
class Applied:
    """What a partner's application for an offer led to: the relationship, and whether
    this call created it."""

    relationship: Relationship
    created: bool


class Partners(TrackedApplication):
    """The use cases; ``open_views`` gives the views they write and read (an adapter)."""

    name = "Partners"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.views = self.open_views()
        self._index_missing()

    def open_views(self) -> ProgramViews:
        raise NotImplementedError("open the store as adapters.store.PartnersStore")

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_value_transcodings(transcoder)

    # Partners

    def create_partner(self, status: PartnerStatus = PartnerStatus.ACTIVE, **profile: Any) -> Partner:
        """``profile``: name, email and the optional fields of ``Partner.create``."""
        partner = Partner.create(status=status, **profile)
        self.save(partner, writes=self.views.partner_rows(partner))
        return partner

    def get_partner(self, partner_id: str) -> Partner:
        return self._get(Partner, partner_id, NotFound("partner_not_found", f"no partner {partner_id!r}"))

    def edit_partner(self, partner_id: str, changes: Mapping[str, Any]) -> tuple[Partner, tuple[str, ...]]:
        """Change the fields named (PATCH); the partner and what changed."""
        def edit() -> tuple[Partner, tuple[str, ...]]:
            partner = self.get_partner(partner_id)
            changed = partner.edit(changes)
            if changed:
                self.save(partner, writes=self.views.partner_rows(partner))
            return partner, changed

        return self._retrying(edit)

    def change_partner_status(self, partner_id: str, status: PartnerStatus) -> Partner:
        def change() -> Partner:
            partner = self.get_partner(partner_id)
            if partner.change_status(status):
                self.save(partner, writes=self.views.partner_rows(partner))
            return partner

        return self._retrying(change)

    def list_partners(self, where: Listing, after: int | None, limit: int) -> Page[Partner]:
        return self._page(Partner, where, after, limit)

    # API keys

    def issue_api_key(self, partner_id: str) -> tuple[ApiKey, DrawnKey]:
        """A new key for the partner: the key itself is returned here, once, and never stored."""
        drawn = draw_key()

        def issue() -> ApiKey:
            partner = self.get_partner(partner_id)
            key = partner.issue_api_key(drawn.key_id, drawn.sha256, drawn.prefix, utc_now())
            self.save(partner)
            return key

        return self._retrying(issue), drawn

    def revoke_api_key(self, partner_id: str, key_id: str) -> ApiKey:
        def revoke() -> ApiKey:
            partner = self.get_partner(partner_id)
            key = partner.revoke_api_key(key_id, utc_now())
            if key is None:
                raise NotFound("api_key_not_found", f"partner {partner_id!r} has no API key {key_id!r}")
            self.save(partner)
            return key

        return self._retrying(revoke)

    # Offers

    def create_offer(self, status: OfferStatus = OfferStatus.ACTIVE, **terms: Any) -> WithToken:
        """``terms``: name, destination_url, currency, payout and the optional fields of
        ``Offer.create``; the postback token is drawn here, returned this once and kept
        only as its SHA-256."""
        token = new_postback_token()
        offer = Offer.create(status=status, postback_token=token, **terms)
        self._fails_over_to_offers(offer.fail_traffic)
        self.save(offer, writes=self.views.offer_rows(offer))
        return WithToken(offer, token)

    def rotate_postback_token(self, offer_id: str, overlap_hours: int) -> WithToken:
        """A new postback token for the offer (returned this once); the one it replaces
        keeps working for ``overlap_hours``."""
        token = new_postback_token()

        def rotate() -> Offer:
            offer = self.get_offer(offer_id)
            offer.rotate_postback_token(token, overlap_hours, utc_now())
            self.save(offer)
            return offer

        return WithToken(self._retrying(rotate), token)

    def get_offer(self, offer_id: str) -> Offer:
        return self._get(Offer, offer_id, NotFound("offer_not_found", f"no offer {offer_id!r}"))

    def edit_offer(self, offer_id: str, changes: Mapping[str, Any]) -> tuple[Offer, tuple[str, ...]]:
        def edit() -> tuple[Offer, tuple[str, ...]]:
            offer = self.get_offer(offer_id)
            changed = offer.edit(changes)
            if "fail_traffic" in changed:
                self._fails_over_to_offers(offer.fail_traffic)
            if changed:
                self.save(offer, writes=self.views.offer_rows(offer))
            return offer, changed

        return self._retrying(edit)

    def change_offer_status(self, offer_id: str, status: OfferStatus) -> Offer:
        def change() -> Offer:
            offer = self.get_offer(offer_id)
            if offer.change_status(status):
                self.save(offer, writes=self.views.offer_rows(offer))
            return offer

        return self._retrying(change)

    def list_offers(self, where: Listing, after: int | None, limit: int) -> Page[Offer]:
        return self._page(Offer, where, after, limit)

    # Relationships

    def set_relationship(self, offer_id: str, partner_id: str, approved: bool, **custom: Any) -> Relationship:
        """Create the offer-partner relationship, or replace its state (PUT semantics).
        ``custom``: the keyword arguments of ``checked_custom`` but ``offer_events``."""
        offer = self.get_offer(offer_id)
        self.get_partner(partner_id)
        custom = {**custom, "coupon_codes": tuple(custom.get("coupon_codes", ())),
                  "offer_events": offer.event_names}

        def put() -> Relationship:
            relationship = self._find_relationship(offer_id, partner_id)
            if relationship is None:
                relationship = Relationship.create(offer_id, partner_id, approved, **custom)
            elif not relationship.update(approved, **custom):
                return relationship
            self._save_relationship(relationship)
            return relationship

        return self._retrying(put)

    def apply_for_offer(self, offer_id: str, partner_id: str) -> Applied:
        """A partner asks to run an offer (the gateway calls this on its behalf). Approved
        at once on a public offer, pending the advertiser's decision on one that requires
        approval. Idempotent, and never a downgrade: an existing relationship is returned
        as it is; one the advertiser declined is a 409. A private or deleted offer is not
        found (a partner only sees it once the advertiser adds it)."""
        offer = self.get_offer(offer_id)
        partner = self.get_partner(partner_id)

        def apply() -> Applied:
            relationship = self._find_relationship(offer_id, partner_id)
            if relationship is not None:
                if relationship.declined:
                    raise Conflict("application_declined", f"partner {partner_id!r} is not approved for "
                                   f"offer {offer_id!r}: the advertiser decided", "offer_id")
                return Applied(relationship, created=False)
            if offer.status is OfferStatus.DELETED or offer.visibility is Visibility.PRIVATE:
                raise NotFound("offer_not_found", f"no offer {offer_id!r}")
            if partner.status is not PartnerStatus.ACTIVE:
                raise Conflict("partner_not_active", f"partner {partner_id!r} is {partner.status}: only an "
                               "active partner applies for offers", "partner_id")
            relationship = Relationship.apply_for(offer_id, partner_id,
                                                  approved=offer.visibility is Visibility.PUBLIC)
            self._save_relationship(relationship)
            return Applied(relationship, created=True)

        return self._retrying(apply)

    def list_relationships(self, offer_id: str, standing: Standing | None, after: int | None,
                           limit: int) -> Page[Relationship]:
        """The offer's relationships, oldest first; ``standing`` filters (pending: the
        applications waiting for the advertiser)."""
        self.get_offer(offer_id)
        listing = Listing("relationships", standing.value if standing else None, offer_id=offer_id)
        return self._page(Relationship, listing, after, limit,
                          key=lambda partner: relationship_id(offer_id, partner))

    def list_partner_relationships(self, partner_id: str, standing: Standing | None, after: int | None,
                                   limit: int) -> Page[Relationship]:
        """The partner's relationships with offers, oldest first: one read where the
        console's partner page asked each offer in turn."""
        self.get_partner(partner_id)
        listing = Listing("partner_relationships", standing.value if standing else None,
                          partner_id=partner_id)
        return self._page(Relationship, listing, after, limit,
                          key=lambda offer: relationship_id(offer, partner_id))

    def get_relationship(self, offer_id: str, partner_id: str) -> Relationship:
        self.get_offer(offer_id)
        self.get_partner(partner_id)
        relationship = self._find_relationship(offer_id, partner_id)
        if relationship is None:
            raise NotFound("relationship_not_found",
                           f"partner {partner_id!r} has no relationship with offer {offer_id!r}")
        return relationship

    # Smart links

    def create_smart_link(self, **fields: Any) -> SmartLink:
        """``fields``: name, offers and the optional fallback_url of ``SmartLink.create``."""
        smart_link = SmartLink.create(**fields)
        self._existing_offers(smart_link.offers, "offers")
        self.save(smart_link, writes=self.views.smart_link_rows(smart_link))
        return smart_link

    def get_smart_link(self, smart_link_id: str) -> SmartLink:
        return self._get(SmartLink, smart_link_id,
                         NotFound("smart_link_not_found", f"no smart link {smart_link_id!r}"))

    def edit_smart_link(self, smart_link_id: str, changes: Mapping[str, Any]) -> SmartLink:
        def edit() -> SmartLink:
            smart_link = self.get_smart_link(smart_link_id)
            changed = smart_link.edit(changes)
            if "offers" in changed:
                self._existing_offers(smart_link.offers, "offers")
            if changed:
                self.save(smart_link, writes=self.views.smart_link_rows(smart_link))
            return smart_link

        return self._retrying(edit)

    def list_smart_links(self, where: Listing, after: int | None, limit: int) -> Page[SmartLink]:
        """Smart links in the order they were created (``q``: part of the name, or the id)."""
        return self._page(SmartLink, where, after, limit)

    # Helpers

    def _fails_over_to_offers(self, fail_traffic: FailTraffic | None) -> None:
        if fail_traffic is not None:
            self._existing_offers(fail_traffic.offers, "fail_traffic.offers")

    def _existing_offers(self, offers: Sequence[RoutedOffer], field: str) -> None:
        """Each listed offer exists and is not deleted (a 422 naming the entry): a click is
        never routed to an offer that cannot take it for good."""
        for i, routed in enumerate(offers):
            try:
                offer = self.get_offer(routed.offer_id)
            except NotFound:
                raise RuleViolation(f"{field}.{i}.offer_id", f"no offer {routed.offer_id!r}",
                                    "unknown_offer") from None
            if offer.status is OfferStatus.DELETED:
                raise RuleViolation(f"{field}.{i}.offer_id", f"offer {routed.offer_id!r} is deleted",
                                    "offer_deleted")

    def _save_relationship(self, relationship: Relationship) -> None:
        self._refuse_codes_of_others(relationship)
        self.save(relationship, writes=self.views.relationship_rows(relationship))

    def _page(self, kind: type[A], where: Listing, after: int | None, limit: int,
              key: Callable[[str], UUID] = lambda public_id: UUID(hex=public_id)) -> Page[A]:
        """A page of a list: its ids from the index, its aggregates in one read; ``key``
        turns an index row's id into the aggregate's."""
        rows = self.views.page(where, after, limit)
        page = rows[:limit]
        keys = [key(row["id"]) for row in page]
        found = self.aggregates(keys)
        items = [aggregate for k in keys if isinstance(aggregate := found.get(k), kind)]
        return Page(items, page[-1]["seq"] if len(rows) > limit else None)

    def _index_missing(self) -> None:
        """Index the partners, offers, relationships and smart links recorded before the
        indexes existed."""
        rows_of: dict[str, Callable[[Any], Sequence[Write]]] = {
            "partners": self.views.partner_rows, "offers": self.views.offer_rows,
            "relationships": self.views.relationship_rows, "smart_links": self.views.smart_link_rows}
        writes = [write for kind, originator_id in self.views.unindexed()
                  for write in rows_of[kind](self.repository.get(originator_id))]
        if writes:
            with self.tracked_recorder.datastore.transaction(commit=True) as curs:
                for write in writes:
                    curs.execute(write.statement, write.params)

    def _find_relationship(self, offer_id: str, partner_id: str) -> Relationship | None:
        try:
            relationship: object = self.repository.get(relationship_id(offer_id, partner_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(relationship, Relationship)
        return relationship

    def _refuse_codes_of_others(self, relationship: Relationship) -> None:
        if not relationship.coupon_codes:
            return
        taken = self.views.codes_of_others(relationship)
        if taken:
            row = taken[0]
            raise ApiError(
                409, "coupon_code_taken",
                f"coupon code {row['code']!r} already belongs to partner {row['partner_id']!r} "
                f"on offer {row['offer_id']!r}",
                "coupon_codes",
            )

    def _get(self, kind: type[A], public_id: str, missing: NotFound) -> A:
        """The aggregate of ``kind`` with that public id; anything else (a malformed id, an
        unknown one, or the id of another kind of aggregate) is not found."""
        if not _PUBLIC_ID.fullmatch(public_id):
            raise missing
        try:
            aggregate: object = self.repository.get(UUID(hex=public_id))
        except AggregateNotFoundError:
            raise missing from None
        if not isinstance(aggregate, kind):
            raise missing
        return aggregate

    def _retrying(self, command: Callable[[], R]) -> R:
        """Run ``command``, again on a lost race with another writer of the same aggregate
        (or of the same coupon code); the retry sees the winner's state."""
        for _ in range(ATTEMPTS - 1):
            try:
                return command()
            except IntegrityError:
                continue
        try:
            return command()
        except IntegrityError as error:
            raise ApiError(
                409, "concurrent_update", "the resource was changed concurrently; retry"
            ) from error
