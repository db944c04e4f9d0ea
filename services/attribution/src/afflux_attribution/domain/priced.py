"""Clicks and impressions that earn on their own: a valid click on a CPC offer, and
each full thousand valid impressions of a partner on a CPM offer.

Each is priced once, with the terms in force when it happened, into an aggregate of
its own whose id is a pure function of what it prices (the click's transaction_id;
the offer, partner and thousand), so a redelivered click or impression cannot price
twice. The outbox publishes them as ClickPriced and ImpressionsPriced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_attribution.domain.program import base_event, choose_terms
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, RelationshipTerms
from afflux_contracts import PayoutType, round_money

NAMESPACE = UUID("5d1f3b0e-1f0c-4a6e-9a55-3c2f4be1d7a2")
"""Priced clicks and impression blocks map to aggregate ids in this namespace: never change it."""

CLICK_PRICED = "afflux_attribution:PricedClick.Priced"
IMPRESSIONS_PRICED = "afflux_attribution:PricedImpressions.Priced"
IMPRESSIONS_PER_BLOCK = 1000


@dataclass(frozen=True)
class UnitPrice:
    """What one click (CPC) or one thousand impressions (CPM) earns, and who set it."""

    payout: Decimal
    revenue: Decimal | None
    source: str


def priced_by(offer: OfferTerms, model: PayoutType) -> bool:
    """Whether the offer pays (or books) per click or per thousand impressions: its base
    event's payout or revenue is of ``model``. A partner's custom terms may change the
    amount, not the model (so a click on another offer costs no terms lookup)."""
    event = base_event(offer)
    return event.payout.type is model or (event.revenue is not None and event.revenue.type is model)


def unit_price(offer: OfferTerms, relationship: RelationshipTerms | None,
               model: PayoutType) -> UnitPrice | None:
    """The price per click (``cpc``) or per thousand impressions (``cpm``) of the offer's
    base event for this partner (its custom terms over the offer's); ``None`` when
    neither the payout nor the revenue is of that model."""
    pricing = choose_terms(offer, base_event(offer), relationship, 0)

    def amount(terms: PricingTerms | None) -> Decimal | None:
        if terms is None or terms.type is not model:
            return None
        return round_money(terms.amount or Decimal(0), offer.currency)

    payout, revenue = amount(pricing.payout), amount(pricing.revenue)
    if payout is None and revenue is None:
        return None
    return UnitPrice(payout if payout is not None else round_money(Decimal(0), offer.currency),
                     revenue, pricing.source)


class PricedClick(Aggregate):
    """A valid click on a CPC offer, priced."""

    TOPIC = "afflux_attribution:PricedClick"

    if TYPE_CHECKING:  # set by the event's ``apply``; an annotation here would become an __init__ arg
        payout: Decimal

    class Created(Aggregate.Created):
        TOPIC = CLICK_PRICED

        transaction_id: str
        partner_id: str
        offer_id: str
        currency: str
        payout: Decimal
        revenue: Decimal | None
        clicked_at: datetime
        offer_event_id: str | None
        relationship_event_id: str | None
        subs: dict[str, str | None] = field(default_factory=dict)
        """The click's sub1..sub5 (none in clicks priced before they were kept)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.payout = self.payout

    @staticmethod
    def create_id(transaction_id: str) -> UUID:
        return uuid5(NAMESPACE, f"click:{transaction_id}")

    @classmethod
    def price(cls, transaction_id: str, partner_id: str, offer: OfferTerms,
              relationship: RelationshipTerms | None, price: UnitPrice, clicked_at: datetime,
              subs: Mapping[str, str | None]) -> PricedClick:
        return cls._create(
            cls.Created, id=cls.create_id(transaction_id), transaction_id=transaction_id,
            partner_id=partner_id, offer_id=offer.offer_id, currency=offer.currency, payout=price.payout,
            revenue=price.revenue, clicked_at=clicked_at, offer_event_id=offer.event_id,
            relationship_event_id=relationship.event_id if relationship else None, subs=dict(subs),
        )


class PricedImpressions(Aggregate):
    """One full thousand valid impressions of a partner on a CPM offer, priced."""

    TOPIC = "afflux_attribution:PricedImpressions"

    if TYPE_CHECKING:
        payout: Decimal

    class Created(Aggregate.Created):
        TOPIC = IMPRESSIONS_PRICED

        partner_id: str
        offer_id: str
        block: int
        currency: str
        payout: Decimal
        revenue: Decimal | None
        last_impression_id: str
        last_impressed_at: datetime
        offer_event_id: str | None
        relationship_event_id: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.payout = self.payout

    @staticmethod
    def create_id(offer_id: str, partner_id: str, block: int) -> UUID:
        return uuid5(NAMESPACE, f"impressions:{offer_id}:{partner_id}:{block}")

    @classmethod
    def price(cls, partner_id: str, offer: OfferTerms, relationship: RelationshipTerms | None,
              price: UnitPrice, block: int, last_impression_id: str,
              last_impressed_at: datetime) -> PricedImpressions:
        return cls._create(
            cls.Created, id=cls.create_id(offer.offer_id, partner_id, block), partner_id=partner_id,
            offer_id=offer.offer_id, block=block, currency=offer.currency, payout=price.payout,
            revenue=price.revenue, last_impression_id=last_impression_id,
            last_impressed_at=last_impressed_at, offer_event_id=offer.event_id,
            relationship_event_id=relationship.event_id if relationship else None,
        )
