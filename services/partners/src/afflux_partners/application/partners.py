"""The partners application: the use cases of the admin API over the event store.

Each command loads an aggregate, asks it to change, and saves its new events; the
outbox relay publishes them. Reads come straight from the aggregates, so an answer
always reflects every change this service has acknowledged.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from afflux_partners.adapters import coupon_register
from afflux_partners.application.transcodings import register_value_transcodings
from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.relationship import Relationship, relationship_id
from afflux_partners.domain.values import (
    Billing,
    ConversionSecurity,
    OfferStatus,
    PartnerStatus,
    Terms,
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


class Partners(TrackedApplication):
    name = "Partners"
    view_ddl: ClassVar = coupon_register.DDL

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_value_transcodings(transcoder)

    # Partners

    def create_partner(
        self,
        name: str,
        email: str,
        type: str | None = None,
        status: PartnerStatus = PartnerStatus.ACTIVE,
        tags: Iterable[str] = (),
        billing: Billing | None = None,
    ) -> Partner:
        partner = Partner.create(name, email, type=type, status=status, tags=tags, billing=billing)
        self.save(partner)
        return partner

    def get_partner(self, partner_id: str) -> Partner:
        return self._get(Partner, partner_id, NotFound("partner_not_found", f"no partner {partner_id!r}"))

    def change_partner_status(self, partner_id: str, status: PartnerStatus) -> Partner:
        def change() -> Partner:
            partner = self.get_partner(partner_id)
            if partner.change_status(status):
                self.save(partner)
            return partner

        return self._retrying(change)

    # Offers

    def create_offer(
        self,
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
    ) -> Offer:
        offer = Offer.create(
            name, destination_url, currency, payout, status=status, visibility=visibility,
            revenue=revenue, attribution_window_days=attribution_window_days, fallback_url=fallback_url,
            conversion_security=conversion_security, postback_token=new_postback_token(),
        )
        self.save(offer)
        return offer

    def get_offer(self, offer_id: str) -> Offer:
        return self._get(Offer, offer_id, NotFound("offer_not_found", f"no offer {offer_id!r}"))

    def change_offer_status(self, offer_id: str, status: OfferStatus) -> Offer:
        def change() -> Offer:
            offer = self.get_offer(offer_id)
            if offer.change_status(status):
                self.save(offer)
            return offer

        return self._retrying(change)

    # Relationships

    def set_relationship(
        self,
        offer_id: str,
        partner_id: str,
        approved: bool,
        payout: Terms | None = None,
        revenue: Terms | None = None,
        coupon_codes: Iterable[str] = (),
        postback_url: str | None = None,
    ) -> Relationship:
        """Create the offer-partner relationship, or replace its state (PUT semantics)."""
        self.get_offer(offer_id)
        self.get_partner(partner_id)
        codes = tuple(coupon_codes)

        def put() -> Relationship:
            relationship = self._find_relationship(offer_id, partner_id)
            if relationship is None:
                relationship = Relationship.create(
                    offer_id, partner_id, approved, payout=payout, revenue=revenue,
                    coupon_codes=codes, postback_url=postback_url,
                )
            elif not relationship.update(approved, payout=payout, revenue=revenue,
                                         coupon_codes=codes, postback_url=postback_url):
                return relationship
            self._refuse_codes_of_others(relationship)
            self.save(relationship, writes=self._coupon_code_writes(relationship))
            return relationship

        return self._retrying(put)

    def get_relationship(self, offer_id: str, partner_id: str) -> Relationship:
        self.get_offer(offer_id)
        self.get_partner(partner_id)
        relationship = self._find_relationship(offer_id, partner_id)
        if relationship is None:
            raise NotFound("relationship_not_found",
                           f"partner {partner_id!r} has no relationship with offer {offer_id!r}")
        return relationship

    # Helpers

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
        statement, params = coupon_register.claims_of_others(
            self.table("coupon_codes"), relationship.coupon_codes, relationship.id
        )
        taken = self.query(statement, params)
        if taken:
            row = taken[0]
            raise ApiError(
                409, "coupon_code_taken",
                f"coupon code {row['code']!r} already belongs to partner {row['partner_id']!r} "
                f"on offer {row['offer_id']!r}",
                "coupon_codes",
            )

    def _coupon_code_writes(self, relationship: Relationship) -> list[Write]:
        return coupon_register.register(
            self.table("coupon_codes"), relationship.id, relationship.offer_id, relationship.partner_id,
            relationship.coupon_codes,
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
