"""The edge's own marks: hard click caps counted per instance (its share of the cap; a
click over it is recorded ``over_cap`` and sent to the fallback URL) and unique clicks
remembered per instance within each offer's window (``domain/unique.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tracking_fixtures import (
    RunningTracking,
    approval,
    fresh_id,
    offer_created,
    partner_created,
    tracking_records,
)

from afflux_contracts import Cap, CapMetric, CapPeriod, ClickOutcome, ClickRecorded
from afflux_tracking.domain.click_caps import ClickCap, ClickCounter
from afflux_tracking.domain.unique import UniqueClicks

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_cap_admits_its_limit_per_period_then_refuses() -> None:
    counter = ClickCounter()
    daily = (ClickCap("day", Decimal(2)),)
    admitted = [counter.admit("o", "p", daily, NOON) for _ in range(3)]
    assert admitted == [True, True, False]
    assert counter.admit("o", "p", daily, datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC))  # a new day


def test_a_per_partner_cap_counts_each_partner_apart_and_offer_caps_all_together() -> None:
    counter = ClickCounter()
    per_partner = (ClickCap("lifetime", Decimal(1), per_partner=True),)
    assert counter.admit("o", "p1", per_partner, NOON) and counter.admit("o", "p2", per_partner, NOON)
    assert not counter.admit("o", "p1", per_partner, NOON)
    offer_wide = (ClickCap("lifetime", Decimal(1)),)
    assert counter.admit("o2", "p1", offer_wide, NOON) and not counter.admit("o2", "p2", offer_wide, NOON)


def test_a_refused_click_counts_toward_no_cap() -> None:
    counter = ClickCounter()
    caps = (ClickCap("day", Decimal(1)), ClickCap("month", Decimal(5)))
    assert counter.admit("o", "p", caps, NOON)
    assert not counter.admit("o", "p", caps, NOON)
    assert counter.counts[("o", "", "month", "2026-11")] == 1


def test_each_of_several_instances_admits_its_share_of_the_cap() -> None:
    counter = ClickCounter(instances=3)
    cap = (ClickCap("day", Decimal(10)),)
    assert sum(counter.admit("o", "p", cap, NOON) for _ in range(10)) == 4  # ceil(10 / 3)


def test_a_visitor_is_unique_once_per_link_within_its_offers_window() -> None:
    unique, hour = UniqueClicks(), 3600.0
    marks = [unique.is_unique("v1", "o", "p", now, 2 * hour) for now in (0.0, 1.0, 2 * hour - 1, 2 * hour)]
    assert marks == [True, False, False, True]  # the window counts from the click counted unique
    assert unique.is_unique("v1", "o", "p2", 1.0, 2 * hour)  # another partner's link
    assert unique.is_unique("v2", "o", "p", 1.0, 2 * hour)  # another visitor
    assert not unique.is_unique("v1", "o", "p", 2 * hour + 1, 24 * hour)  # a longer window: still seen


def test_the_unique_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    unique = UniqueClicks(max_remembered=2)
    assert all(unique.is_unique(visitor, "o", "p", 0.0, 60.0) for visitor in ("a", "b", "c"))
    assert not unique.is_unique("c", "o", "p", 1.0, 60.0)
    assert unique.is_unique("a", "o", "p", 1.0, 60.0)  # forgotten: marked unique again (the stated bound)


async def test_a_click_over_the_hard_cap_goes_to_the_fallback_and_is_recorded_over_cap(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    offer = offer_created(offer_id, "https://shop.example/?t={transaction_id}",
                          fallback_url="https://shop.example/more")
    capped = offer.model_copy(update={"caps": (Cap(metric=CapMetric.CLICKS, period=CapPeriod.DAY,
                                                    limit=Decimal(2)),)})
    await tracking.partners.publish(capped, partner_created(partner_id), approval(offer_id, partner_id))

    answers = [await tracking.client.get(f"/c/{offer_id}/{partner_id}") for _ in range(3)]

    to_the_offer = [a.headers["Location"].startswith("https://shop.example/?t=") for a in answers]
    assert to_the_offer == [True, True, False]
    assert answers[2].headers["Location"] == "https://shop.example/more"
    over = answers[2].headers["X-Afflux-Transaction-Id"]
    [click] = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ClickRecorded) and p.transaction_id == over)
    assert click.payload.outcome is ClickOutcome.OVER_CAP
