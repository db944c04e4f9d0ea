"""What the consumers' handlers change in the store, against real PostgreSQL, delivered
the way the tracked consumer does it (handler, then one committing ``apply``)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from attribution_fixtures import cpa, cps, fresh_id
from eventsourcing.persistence import IntegrityError

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import (
    TRACKING,
    ClickOutcome,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    utc_now,
)
from afflux_plumbing.consume import RetryLater
from afflux_plumbing.positions import Position
from afflux_plumbing.store import Changes

HOUR_AGO = utc_now() - timedelta(hours=1)
offsets = itertools.count()


E = TypeVar("E", bound=Event)


def envelope(event: E, occurred_at: datetime | None = None) -> Envelope[E]:
    return Envelope.wrap(event, producer="test", occurred_at=occurred_at)


def deliver(store: Attribution, message: Envelope[Any]) -> None:
    """Apply one message as its consumer would."""
    topic = message.payload.topic.name
    handler = store.apply_tracking_event if topic == TRACKING.name else store.apply_partners_event
    store.apply(handler(message), Position(topic, 0, next(offsets)), message.event_id)


def decide(store: Attribution, report: Envelope[Any]) -> Changes:
    """What deciding ``report`` would commit (computed, not committed)."""
    return store.decide(report.payload, causation_id=str(report.event_id))


def offer_created(offer_id: str) -> Envelope[OfferCreated]:
    return envelope(OfferCreated(offer_id=offer_id, name="o", destination_url="https://shop.example/",
                                 currency="USD", payout=cps("8"), revenue=cpa("3.00")), HOUR_AGO)


def click(
    offer_id: str, transaction_id: str | None = None, outcome: ClickOutcome = ClickOutcome.VALID
) -> Envelope[ClickRecorded]:
    return envelope(ClickRecorded(transaction_id=transaction_id or fresh_id("tx"), offer_id=offer_id,
                                  partner_id="partner-1", clicked_at=utc_now(), outcome=outcome))


def reported(a_click: Envelope[ClickRecorded], order_id: str | None = None) -> Envelope[ConversionReported]:
    """A report of a 120.00 USD sale on ``a_click``, a second after it."""
    return envelope(ConversionReported(
        conversion_id=fresh_id("conv"), transaction_id=a_click.payload.transaction_id,
        amount=Decimal("120.00"), order_id=order_id,
        reported_at=a_click.payload.clicked_at + timedelta(seconds=1),
    ))


def test_of_two_conversions_racing_for_one_order_the_loser_is_decided_again_as_duplicate(
    store: Attribution,
) -> None:
    deliver(store, offer_created("offer-1"))
    first_click, second_click = click("offer-1"), click("offer-1")
    deliver(store, first_click)
    deliver(store, second_click)
    first, second = reported(first_click, order_id="order-1"), reported(second_click, order_id="order-1")
    first_changes = decide(store, first)
    second_changes = decide(store, second)  # decided before the first commits

    store.apply(first_changes, Position(TRACKING.name, 0, next(offsets)), first.event_id)
    with pytest.raises(IntegrityError):
        store.apply(second_changes, Position(TRACKING.name, 1, next(offsets)), second.event_id)
    assert store.conversion(second.payload.conversion_id) is None  # nothing of the loser was kept
    deliver(store, second)  # the consumer's retry

    winner = store.conversion(first.payload.conversion_id)
    assert winner is not None and winner["status"] == "approved"
    loser = store.conversion(second.payload.conversion_id)
    assert loser is not None and (loser["status"], loser["reason"]) == ("rejected", "duplicate")


def test_a_decided_conversion_reported_again_changes_nothing(store: Attribution) -> None:
    deliver(store, offer_created("offer-1"))
    a_click = click("offer-1")
    deliver(store, a_click)
    report = reported(a_click)
    deliver(store, report)

    again = decide(store, envelope(report.payload))

    assert (list(again.aggregates), list(again.writes)) == ([], [])
    decided = store.conversion(report.payload.conversion_id)
    assert decided is not None
    assert (decided["payout"], decided["revenue"]) == (Decimal("9.60"), Decimal("3.00"))


def test_status_change_of_an_offer_not_known_yet_waits_for_the_offer(store: Attribution) -> None:
    with pytest.raises(RetryLater):
        store.apply_partners_event(
            envelope(OfferStatusChanged(offer_id="offer-x", status=OfferStatus.PAUSED))
        )


def test_status_change_adds_a_version_with_the_offers_terms_and_the_new_status(store: Attribution) -> None:
    deliver(store, offer_created("offer-1"))
    paused_at = HOUR_AGO + timedelta(minutes=30)
    deliver(store, envelope(OfferStatusChanged(offer_id="offer-1", status=OfferStatus.PAUSED),
                            occurred_at=paused_at))

    created, paused = store.offer_terms("offer-1")

    assert (created.status, created.effective_from) == (OfferStatus.ACTIVE, HOUR_AGO)
    assert (paused.status, paused.effective_from) == (OfferStatus.PAUSED, paused_at)
    assert (paused.currency, paused.payout, paused.revenue, paused.attribution_window_days) == \
        (created.currency, created.payout, created.revenue, created.attribution_window_days)


def test_conversion_after_the_offer_was_paused_is_rejected_as_inactive_offer(store: Attribution) -> None:
    deliver(store, offer_created("offer-1"))
    a_click = click("offer-1")
    deliver(store, a_click)
    deliver(store, envelope(OfferStatusChanged(offer_id="offer-1", status=OfferStatus.PAUSED)))
    report = reported(a_click)
    deliver(store, report)

    decided = store.conversion(report.payload.conversion_id)
    assert decided is not None and decided["reason"] == "inactive_offer"


def test_a_transaction_id_indexed_twice_keeps_its_first_click(store: Attribution) -> None:
    deliver(store, click("offer-1", "tx-1"))
    deliver(store, click("offer-2", "tx-1", outcome=ClickOutcome.OFFER_PAUSED))

    indexed = store.click("tx-1")

    assert indexed is not None and (indexed.offer_id, indexed.outcome) == ("offer-1", ClickOutcome.VALID)
