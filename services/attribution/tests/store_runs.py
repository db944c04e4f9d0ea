"""Driving attribution's store the way its consumers do, without a broker: records in
runs (a lone record is a run of one), each run committed by ``apply_run``."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import (
    Envelope,
    OfferCreated,
    PartnerCreated,
    PayoutType,
    RelationshipSet,
    Terms,
    utc_now,
)
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Record, record_of

offsets = itertools.count()
HOUR_AGO = utc_now() - timedelta(hours=1)


def program(offer_id: str, partner_id: str, **offer: Any) -> list[Envelope[Any]]:
    """An offer with its program (``offer``'s fields over a 5.00 CPA), an approved active
    partner (``relationship``: its fields), in force since an hour ago."""
    relationship = offer.pop("relationship", {})
    fields: dict[str, Any] = {"offer_id": offer_id, "name": "o", "destination_url": "https://shop.example/",
                              "currency": "USD", "payout": Terms(type=PayoutType.CPA, amount=Decimal("5.00")),
                              **offer}
    return [Envelope.wrap(event, producer="test", occurred_at=HOUR_AGO) for event in (
        PartnerCreated(partner_id=partner_id, name="p", email="p@example.com"), OfferCreated(**fields),
        RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=True, **relationship))]


def records(*messages: Envelope[Any], partition: int = 0) -> list[Record[Any]]:
    """``messages`` as consecutive records of one partition of their topic."""
    return [record_of(m, Position(m.payload.topic.name, partition, next(offsets))) for m in messages]


def deliver(store: Attribution, *messages: Envelope[Any], partition: int = 0) -> list[bool]:
    """Apply ``messages`` as one run, as the consumer does."""
    return store.apply_run(records(*messages, partition=partition))


def one_by_one(store: Attribution, *messages: Envelope[Any], partition: int = 0) -> None:
    """Apply ``messages`` as runs of one (the consumer's path after a failed run)."""
    for message in messages:
        deliver(store, message, partition=partition)
