"""What one partner has agreed with one offer: approval, custom payout and revenue
(for the base event and per event), custom caps, coupon codes, the partner's own
postback for this offer and the targeting that narrows the offer's for its clicks.

There is at most one relationship per (offer, partner): its id is derived from the
pair, so setting it is an upsert and two writers of the same pair collide on the
aggregate's first version instead of creating two. Every event carries the whole
state, so a reader of any single event knows the relationship as it now stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.rules import (
    check_caps,
    check_coupon_codes,
    check_http_url,
    check_relationship_events,
    check_terms,
)
from afflux_partners.domain.targeting import check_targeting
from afflux_partners.domain.values import Cap, PostbackMethod, RelationshipEvent, Standing, Targeting, Terms

NAMESPACE = uuid5(NAMESPACE_URL, "urn:afflux:partners:relationship")
"""Fixed forever: changing it would orphan every stored relationship."""


def relationship_id(offer_id: str, partner_id: str) -> UUID:
    return uuid5(NAMESPACE, f"{offer_id}:{partner_id}")


def checked_custom(
    payout: Terms | None = None,
    revenue: Terms | None = None,
    coupon_codes: Iterable[str] = (),
    postback_url: str | None = None,
    events: Iterable[RelationshipEvent] = (),
    caps: Iterable[Cap] = (),
    postback_method: PostbackMethod = PostbackMethod.GET,
    postback_status_changes: bool = False,
    targeting: Targeting | None = None,
    offer_events: Iterable[str] = ("conversion",),
) -> dict[str, Any]:
    """The customisable part of a relationship, validated like the offer's own terms.
    Custom events must be events of the offer (``offer_events``); a relationship's caps
    are the partner's own, so they are per partner whatever the request said. Its
    targeting only narrows the offer's (tracking checks both), so it is checked alone:
    a rule the offer already makes stricter is no error, it just changes nothing."""
    return {
        "payout": check_terms(payout, "payout") if payout is not None else None,
        "revenue": check_terms(revenue, "revenue") if revenue is not None else None,
        "coupon_codes": check_coupon_codes(coupon_codes),
        "postback_url": check_http_url(postback_url, "postback_url") if postback_url is not None else None,
        "events": check_relationship_events(events, offer_events),
        "caps": check_caps(tuple(replace(cap, per_partner=True) for cap in caps)),
        "postback_method": PostbackMethod(postback_method),
        "postback_status_changes": bool(postback_status_changes),
        "targeting": check_targeting(targeting) if targeting is not None else None,
    }


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
RELATIONSHIP_CREATED = "afflux_partners:Relationship.Created"
RELATIONSHIP_UPDATED = "afflux_partners:Relationship.Updated"


class Relationship(Aggregate):
    """A partner's standing on an offer. ``payout``/``revenue`` override the offer's
    base event for this partner, ``events`` override named events (the most specific
    setting wins). ``application``: the partner asked to run the offer and the
    advertiser has not decided yet."""

    TOPIC = "afflux_partners:Relationship"

    @staticmethod
    def create_id(offer_id: str, partner_id: str) -> UUID:
        return relationship_id(offer_id, partner_id)

    @classmethod
    def create(cls, offer_id: str, partner_id: str, approved: bool, application: bool = False,
               **custom: Any) -> Relationship:
        """``custom``: the keyword arguments of ``checked_custom``."""
        return cls(offer_id=offer_id, partner_id=partner_id, approved=approved,
                   application=application and not approved, **checked_custom(**custom))

    @classmethod
    def apply_for(cls, offer_id: str, partner_id: str, approved: bool) -> Relationship:
        """A partner's application: approved at once on a public offer, else pending."""
        return cls.create(offer_id, partner_id, approved, application=not approved)

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
        events: tuple[RelationshipEvent, ...] = (),
        caps: tuple[Cap, ...] = (),
        postback_method: PostbackMethod = PostbackMethod.GET,
        postback_status_changes: bool = False,
        application: bool = False,
        targeting: Targeting | None = None,
    ) -> None:
        self.offer_id = offer_id
        self.partner_id = partner_id
        self._set(approved, payout, revenue, coupon_codes, postback_url, events, caps, postback_method,
                  postback_status_changes, application, targeting)

    def update(self, approved: bool, **custom: Any) -> bool:
        """The advertiser's decision: replace the whole state (PUT semantics), which ends a
        pending application; False (and no event) if nothing changes."""
        state = {"approved": approved, **checked_custom(**custom), "application": False}
        return self._replace(state)

    def _replace(self, state: dict[str, Any]) -> bool:
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
            "events": self.events,
            "caps": self.caps,
            "postback_method": self.postback_method,
            "postback_status_changes": self.postback_status_changes,
            "application": self.application,
            "targeting": self.targeting,
        }

    @property
    def standing(self) -> Standing:
        if self.approved:
            return Standing.APPROVED
        return Standing.PENDING if self.application else Standing.DECLINED

    @property
    def declined(self) -> bool:
        """The advertiser decided against the partner (not approved, no pending application)."""
        return not self.approved and not self.application

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
        events: tuple[RelationshipEvent, ...] = (),
        caps: tuple[Cap, ...] = (),
        postback_method: PostbackMethod = PostbackMethod.GET,
        postback_status_changes: bool = False,
        application: bool = False,
        targeting: Targeting | None = None,
    ) -> None:
        self._set(approved, payout, revenue, coupon_codes, postback_url, events, caps, postback_method,
                  postback_status_changes, application, targeting)

    def _set(
        self,
        approved: bool,
        payout: Terms | None,
        revenue: Terms | None,
        coupon_codes: Iterable[str],
        postback_url: str | None,
        events: Iterable[RelationshipEvent],
        caps: Iterable[Cap],
        postback_method: PostbackMethod,
        postback_status_changes: bool,
        application: bool,
        targeting: Targeting | None,
    ) -> None:
        self.approved = approved
        self.payout = payout
        self.revenue = revenue
        self.coupon_codes = tuple(coupon_codes)
        self.postback_url = postback_url
        self.events = tuple(events)
        self.caps = tuple(caps)
        self.postback_method = PostbackMethod(postback_method)
        self.postback_status_changes = postback_status_changes
        self.application = application
        self.targeting = targeting
