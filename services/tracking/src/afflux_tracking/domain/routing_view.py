"""The routing view in memory: everything a click or a postback needs to be decided
without a database round trip.

Partners events arrive in order per key only, so each group of facts (an offer's
details, its status, a partner's status, a relationship) keeps the ``occurred_at`` of
the event that set it, and an older event never overwrites a newer one (last writer
wins per group). Any arrival order and any redelivery leave the same view, the same
rule the view's PostgreSQL tables follow, so the memory can be rebuilt from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from afflux_contracts import OfferStatus, PartnerStatus, Visibility
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.routing import LinkState, OfferRoute, PartnerRoute
from afflux_tracking.domain.security import PostbackSecurity


@dataclass(frozen=True)
class OfferDetails:
    destination_url: str
    visibility: Visibility
    fallback_url: str | None
    security: PostbackSecurity | None
    click_caps: tuple[ClickCap, ...] = ()


@dataclass
class _Offer:
    details: OfferDetails | None = None
    details_at: datetime | None = None
    status: OfferStatus | None = None
    status_at: datetime | None = None


@dataclass(frozen=True)
class _Relationship:
    approved: bool
    coupon_codes: tuple[str, ...]
    set_at: datetime
    click_caps: tuple[ClickCap, ...] = ()


def _newer(current: datetime | None, candidate: datetime) -> bool:
    return current is None or current <= candidate


@dataclass
class RoutingView:
    """Offers, partners, relationships and the coupon register, newest fact per group."""

    _offers: dict[str, _Offer] = field(default_factory=dict)
    _partners: dict[str, tuple[PartnerStatus, datetime]] = field(default_factory=dict)
    _relationships: dict[tuple[str, str], _Relationship] = field(default_factory=dict)
    _coupons: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def set_offer_details(self, offer_id: str, details: OfferDetails, at: datetime) -> None:
        offer = self._offers.setdefault(offer_id, _Offer())
        if _newer(offer.details_at, at):
            offer.details, offer.details_at = details, at

    def set_offer_status(self, offer_id: str, status: OfferStatus, at: datetime) -> None:
        offer = self._offers.setdefault(offer_id, _Offer())
        if _newer(offer.status_at, at):
            offer.status, offer.status_at = status, at

    def set_partner_status(self, partner_id: str, status: PartnerStatus, at: datetime) -> None:
        current = self._partners.get(partner_id)
        if current is None or _newer(current[1], at):
            self._partners[partner_id] = (status, at)

    def set_relationship(self, offer_id: str, partner_id: str, approved: bool,
                         coupon_codes: tuple[str, ...], at: datetime,
                         click_caps: tuple[ClickCap, ...] = ()) -> None:
        key = (offer_id, partner_id)
        current = self._relationships.get(key)
        if current is not None and not _newer(current.set_at, at):
            return
        for code in current.coupon_codes if current is not None else ():
            self._coupons.get(code.upper(), set()).discard(key)
        self._relationships[key] = _Relationship(approved, coupon_codes, at, click_caps)
        for code in coupon_codes:
            self._coupons.setdefault(code.upper(), set()).add(key)

    def offer(self, offer_id: str) -> OfferRoute | None:
        """A routable offer: one whose details are known (a status change can arrive first)."""
        offer = self._offers.get(offer_id)
        if offer is None or offer.details is None:
            return None
        details = offer.details
        return OfferRoute(offer_id, details.destination_url, offer.status or OfferStatus.ACTIVE,
                          details.visibility, details.fallback_url, details.security)

    def link(self, offer_id: str, partner_id: str) -> LinkState:
        partner = self._partners.get(partner_id)
        relationship = self._relationships.get((offer_id, partner_id))
        offer = self._offers.get(offer_id)
        caps = offer.details.click_caps if offer is not None and offer.details is not None else ()
        if relationship is not None:  # the partner's own caps count its clicks only
            caps += tuple(ClickCap(cap.period, cap.limit, per_partner=True)
                          for cap in relationship.click_caps)
        return LinkState(
            offer=self.offer(offer_id),
            partner=PartnerRoute(partner_id, partner[0]) if partner is not None else None,
            approved=relationship.approved if relationship is not None else None,
            click_caps=caps,
        )

    def coupon_offers(self, code: str) -> list[str]:
        """The offers a coupon code (any case) is registered on, in a stable order."""
        return sorted({offer_id for offer_id, _ in self._coupons.get(code.upper(), ())})
