"""What one partner has agreed with one offer: approval, custom payout and revenue,
coupon codes and the partner's own postback.

There is at most one relationship per (offer, partner): its id is derived from the
pair, so setting it is an upsert and two writers of the same pair collide on the
aggregate's first version instead of creating two. Every event carries the whole
state, so a reader of any single event knows the relationship as it now stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.rules import check_coupon_codes, check_http_url, check_terms
from afflux_partners.domain.values import Terms

NAMESPACE = uuid5(NAMESPACE_URL, "urn:afflux:partners:relationship")
"""Fixed forever: changing it would orphan every stored relationship."""


def relationship_id(offer_id: str, partner_id: str) -> UUID:
    return uuid5(NAMESPACE, f"{offer_id}:{partner_id}")


def _checked(
    payout: Terms | None, revenue: Terms | None, coupon_codes: Iterable[str], postback_url: str | None
) -> dict[str, Any]:
    """The customisable part of a relationship, validated like the offer's own terms."""
    return {
        "payout": check_terms(payout, "payout") if payout is not None else None,
        "revenue": check_terms(revenue, "revenue") if revenue is not None else None,
        "coupon_codes": check_coupon_codes(coupon_codes),
        "postback_url": check_http_url(postback_url, "postback_url") if postback_url is not None else None,
    }


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
RELATIONSHIP_CREATED = "afflux_partners:Relationship.Created"
RELATIONSHIP_UPDATED = "afflux_partners:Relationship.Updated"


class Relationship(Aggregate):
    """A partner's standing on an offer. ``payout``/``revenue`` override the offer's
    terms for this partner when set (the most specific setting wins)."""

    TOPIC = "afflux_partners:Relationship"

    @staticmethod
    def create_id(offer_id: str, partner_id: str) -> UUID:
        return relationship_id(offer_id, partner_id)

    @classmethod
    def create(
        cls,
        offer_id: str,
        partner_id: str,
        approved: bool,
        payout: Terms | None = None,
        revenue: Terms | None = None,
        coupon_codes: Iterable[str] = (),
        postback_url: str | None = None,
    ) -> Relationship:
        return cls(offer_id=offer_id, partner_id=partner_id, approved=approved,
                   **_checked(payout, revenue, coupon_codes, postback_url))

    @event("Created", topic=RELATIONSHIP_CREATED)
    def __init__(
        self,
        offer_id: str,
        partner_id: str,
        approved: bool,
        payout: Terms | None,
        revenue: Terms | None,
        coupon_codes: tuple[str, ...],
        postback_url: str | None,
    ) -> None:
        self.offer_id = offer_id
        self.partner_id = partner_id
        self._set(approved, payout, revenue, coupon_codes, postback_url)

    def update(
        self,
        approved: bool,
        payout: Terms | None = None,
        revenue: Terms | None = None,
        coupon_codes: Iterable[str] = (),
        postback_url: str | None = None,
    ) -> bool:
        """Replace the whole state (PUT semantics); False (and no event) if nothing changes."""
        state = {"approved": approved, **_checked(payout, revenue, coupon_codes, postback_url)}
        if state == self.state:
            return False
        self._updated(offer_id=self.offer_id, partner_id=self.partner_id, **state)
        return True

    @property
    def state(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "payout": self.payout,
            "revenue": self.revenue,
            "coupon_codes": self.coupon_codes,
            "postback_url": self.postback_url,
        }

    @event("Updated", topic=RELATIONSHIP_UPDATED)
    def _updated(
        self,
        offer_id: str,
        partner_id: str,
        approved: bool,
        payout: Terms | None,
        revenue: Terms | None,
        coupon_codes: tuple[str, ...],
        postback_url: str | None,
    ) -> None:
        self._set(approved, payout, revenue, coupon_codes, postback_url)

    def _set(
        self,
        approved: bool,
        payout: Terms | None,
        revenue: Terms | None,
        coupon_codes: Iterable[str],
        postback_url: str | None,
    ) -> None:
        self.approved = approved
        self.payout = payout
        self.revenue = revenue
        self.coupon_codes = tuple(coupon_codes)
        self.postback_url = postback_url
