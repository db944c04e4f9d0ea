"""Decisions as the tracking consumer applies them, against real PostgreSQL: a report
whose click may still come waits for it, a held conversion says why, and a conversion a
rule rejected is credited on appeal with the terms of its time and counted."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from attribution_fixtures import cpa, fresh_id
from psycopg import sql
from store_runs import deliver, program

from afflux_attribution.adapters.freshness import TrackingEnds
from afflux_attribution.application.attribution import Attribution
from afflux_attribution.application.published import to_envelope
from afflux_attribution.domain.conversion import Conversion
from afflux_contracts import (
    TRACKING,
    Cap,
    CapMetric,
    CapPeriod,
    ClickRecorded,
    ConversionAttributed,
    ConversionReported,
    ConversionSecurity,
    Envelope,
    Event,
    OfferUpdated,
    StatusChange,
    utc_now,
)
from afflux_contracts.attribution import Appeal
from afflux_plumbing.runs import RetryLater

E = TypeVar("E", bound=Event)


def envelope(event: E, occurred_at: datetime | None = None) -> Envelope[E]:
    return Envelope.wrap(event, producer="test", occurred_at=occurred_at)


def click(offer_id: str, partner_id: str, **fields: Any) -> Envelope[ClickRecorded]:
    return envelope(ClickRecorded(transaction_id=fresh_id("tx"), offer_id=offer_id, partner_id=partner_id,
                                  clicked_at=utc_now() - timedelta(minutes=5), **fields))


def on(a_click: Envelope[ClickRecorded], **fields: Any) -> Envelope[ConversionReported]:
    return envelope(ConversionReported(conversion_id=fresh_id("conv"), reported_at=utc_now(),
                                       transaction_id=a_click.payload.transaction_id, **fields))


class EndsAsSeen(TrackingEnds):
    """The tracking log's end offsets as a broker would answer them (the rest is the real
    adapter: the store's committed positions are compared with them)."""

    def __init__(self, store: Attribution, seen: Mapping[int, int]) -> None:
        super().__init__(store, "unused:9092")
        self.seen = seen

    def ends(self) -> Mapping[int, int] | None:
        return self.seen


def test_a_report_whose_click_may_still_come_waits_pending_then_is_credited(store: Attribution) -> None:
    deliver(store, *program("offer-w", "partner-w"))
    deliver(store, click("offer-w", "partner-w"), partition=0)  # partition 0 is applied up to here
    late_click = click("offer-w", "partner-w")  # acknowledged before the report, on partition 0
    report = on(late_click)
    store.click_wait = EndsAsSeen(store, {0: store.stored_offset(TRACKING.name, 0) + 2, 1: 0})  # type: ignore[operator]

    with pytest.raises(RetryLater):
        deliver(store, report, partition=1)
    held = store.held(report.payload.conversion_id)
    assert held is not None and (held.reason, store.conversion(report.payload.conversion_id)) == \
        ("awaiting_click", None)

    deliver(store, late_click, partition=0)
    deliver(store, report, partition=1)
    decided = store.conversion(report.payload.conversion_id)
    assert decided is not None and (decided["status"], decided["partner_id"]) == ("approved", "partner-w")
    assert store.held(report.payload.conversion_id) is None


def test_a_report_whose_click_never_came_is_click_not_found_once_the_log_is_read_up_to_it(
    store: Attribution,
) -> None:
    deliver(store, *program("offer-n", "partner-n"))
    deliver(store, click("offer-n", "partner-n"), partition=0)
    unknown = envelope(ConversionReported(conversion_id=fresh_id("conv"), reported_at=utc_now(),
                                          transaction_id=fresh_id("tx-unknown")))
    store.click_wait = EndsAsSeen(store, {0: store.stored_offset(TRACKING.name, 0) + 2})  # type: ignore[operator]
    with pytest.raises(RetryLater):
        deliver(store, unknown, partition=1)

    store.click_wait = EndsAsSeen(store, {0: 10**9})  # asked again: the ends first seen are kept
    deliver(store, click("offer-n", "partner-n"), partition=0)
    deliver(store, unknown, partition=1)

    decided = store.conversion(unknown.payload.conversion_id)
    assert decided is not None and (decided["status"], decided["reason"]) == ("rejected", "click_not_found")


def test_a_pixel_conversion_is_held_with_why_and_the_clicks_subs(store: Attribution) -> None:
    security = ConversionSecurity(pixel_allowed=True)
    deliver(store, *program("offer-p", "partner-p", conversion_security=security))
    a_click = click("offer-p", "partner-p", sub1="feed", sub3="story-9")
    pixel = on(a_click, method="pixel")
    deliver(store, a_click, pixel)

    held = store.conversion(pixel.payload.conversion_id)
    assert held is not None and (held["status"], held["reason"]) == ("pending", "pixel_review")
    assert (held["sub1"], held["sub3"]) == ("feed", "story-9")
    published = to_envelope(events_of(store, pixel.payload.conversion_id)[0])
    assert published is not None and isinstance(published.payload, ConversionAttributed)
    assert (published.payload.reason, published.payload.sub3) == ("pixel_review", "story-9")


def events_of(store: Attribution, conversion_id: str) -> list[Any]:
    return list(store.events.get(Conversion.create_id(conversion_id)))


def test_a_conversion_rejected_over_cap_is_credited_on_appeal_with_the_terms_of_its_time(
    store: Attribution,
) -> None:
    cap = Cap(metric=CapMetric.CONVERSIONS, period=CapPeriod.DAY, limit=Decimal(1))
    deliver(store, *program("offer-a", "partner-a", caps=(cap,)))
    first, second = click("offer-a", "partner-a"), click("offer-a", "partner-a", sub2="deal")
    paid, over = on(first), on(second)
    deliver(store, first, second, paid, over)
    assert store.conversion(over.payload.conversion_id)["reason"] == "over_cap"  # type: ignore[index]
    repriced = OfferUpdated(offer_id="offer-a", name="o", destination_url="https://shop.example/",
                            currency="USD", payout=cpa("9.00"), caps=(cap,))
    deliver(store, envelope(repriced))  # a new payout after the conversion does not reach back to it

    appealed = store.change_status(over.payload.conversion_id, StatusChange.APPROVED, "false positive",
                                   by="ops-lead")

    assert (appealed.status.value, appealed.payout) == ("approved", Decimal("5.00"))
    published = to_envelope(events_of(store, appealed.conversion_id)[-1])
    assert published is not None and isinstance(published.payload, ConversionAttributed)
    assert published.payload.appeal == Appeal(rejected_reason="over_cap", by="ops-lead",
                                              reason="false positive")
    assert published.payload.sub2 == "deal"
    assert "approved on appeal by ops-lead" in (published.payload.trace[-2].detail or "")
    tallied = sql.SQL("SELECT conversions, approved, payout FROM {} WHERE offer_id = 'offer-a' "
                      "AND partner_id = '' AND period = 'lifetime'").format(store.table("program_counts"))
    lifetime = store.query(tallied)
    assert [(r["conversions"], r["approved"], r["payout"]) for r in lifetime] == [(2, 2, Decimal("10.00"))]
