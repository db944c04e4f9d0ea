"""What the consumers' handlers change in the store, against real PostgreSQL, delivered
the way the tracked consumer does it (runs, committed by ``apply_run``)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
from attribution_fixtures import cpa, cps, fresh_id
from store_runs import deliver

from afflux_attribution.application.attribution import Attribution
from afflux_attribution.domain.conversion import Conversion
from afflux_contracts import (
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
from afflux_plumbing.runs import RetryLater

HOUR_AGO = utc_now() - timedelta(hours=1)

E = TypeVar("E", bound=Event)


def envelope(event: E, occurred_at: datetime | None = None) -> Envelope[E]:
    return Envelope.wrap(event, producer="test", occurred_at=occurred_at)


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


def test_of_two_conversions_racing_for_one_order_on_two_partitions_one_is_a_duplicate(
    store: Attribution,
) -> None:
    deliver(store, offer_created("offer-1"))
    first_click, second_click = click("offer-1"), click("offer-1")
    deliver(store, first_click, second_click)
    first, second = reported(first_click, order_id="order-1"), reported(second_click, order_id="order-1")
    appliers = [threading.Thread(target=deliver, args=(store, report), kwargs={"partition": partition})
                for partition, report in enumerate((first, second))]
    for applier in appliers:
        applier.start()
    for applier in appliers:
        applier.join()

    decided = [store.conversion(report.payload.conversion_id) for report in (first, second)]
    assert sorted((d["status"], d["reason"]) for d in decided if d is not None) == \
        [("approved", None), ("rejected", "duplicate")]


def test_a_decided_conversion_reported_again_changes_nothing(store: Attribution) -> None:
    deliver(store, offer_created("offer-1"))
    a_click = click("offer-1")
    deliver(store, a_click)
    report = reported(a_click)
    deliver(store, report)

    deliver(store, envelope(report.payload))  # the same report, under a new event_id

    conversion_id = report.payload.conversion_id
    assert store.repository.get(Conversion.create_id(conversion_id)).version == 1
    decided = store.conversion(conversion_id)
    assert decided is not None
    assert (decided["payout"], decided["revenue"]) == (Decimal("9.60"), Decimal("3.00"))


def test_status_change_of_an_offer_not_known_yet_waits_for_the_offer(store: Attribution) -> None:
    with pytest.raises(RetryLater):
        deliver(store, envelope(OfferStatusChanged(offer_id="offer-x", status=OfferStatus.PAUSED)))


def test_status_change_adds_a_version_with_the_offers_terms_and_the_new_status(store: Attribution) -> None:
    deliver(store, offer_created("offer-1"))
    paused_at = HOUR_AGO + timedelta(minutes=30)
    deliver(store, envelope(OfferStatusChanged(offer_id="offer-1", status=OfferStatus.PAUSED),
                            occurred_at=paused_at))

    created, paused = store.views.offer_terms({"offer-1"})["offer-1"]

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
