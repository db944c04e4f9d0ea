"""The projection's batched runs count exactly what one-by-one application counts: a
re-published click (another event_id) once, a redelivered event once, each record's
position and event_id recorded with the run."""

from __future__ import annotations

from functools import partial

from gateway_fixtures import DAY, click
from psycopg import sql

from afflux_contracts import TRACKING, Envelope, Event
from afflux_gateway.application.projection import Gateway
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.store import RunItem


def run_of(store: Gateway, envelopes: list[Envelope[Event]], first_offset: int = 0) -> list[RunItem]:
    return [
        RunItem(
            Position(TRACKING.name, 0, first_offset + n), e.event_id, partial(store.apply_tracking_event, e)
        )
        for n, e in enumerate(envelopes)
    ]


def figures(store: Gateway, partner_id: str) -> list[tuple[str, int, int]]:
    rows = store.query(
        sql.SQL(
            "SELECT 'by_sub:' || sub1 AS row, clicks, unique_clicks FROM {} WHERE partner_id = %s "
            "UNION ALL SELECT 'total', clicks, unique_clicks FROM {} WHERE partner_id = %s ORDER BY 1"
        ).format(store.table("counters"), store.table("totals")),
        (partner_id, partner_id),
    )
    return [(row["row"], row["clicks"], row["unique_clicks"]) for row in rows]


def test_a_run_counts_each_click_once_like_one_by_one_application(database_url: str) -> None:
    store = open_store(Gateway, database_url, "gateway")
    try:
        first = click("t-1", "o-1", "p-1", sub1="a")
        second = click("t-2", "o-1", "p-1", sub1="b", unique=False)
        republished = click("t-1", "o-1", "p-1", sub1="a")
        applied = store.apply_run(run_of(store, [first, second, first, republished]))
        assert applied == [True, True, False, True]
        assert figures(store, "p-1") == [("by_sub:a", 1, 1), ("by_sub:b", 1, 0), ("total", 2, 1)]
        assert store.stored_offset(TRACKING.name, 0) == 3

        third = click("t-3", "o-1", "p-1", sub1="a", at=DAY)
        assert store.apply(store.apply_tracking_event(third), Position(TRACKING.name, 0, 4), third.event_id)
        assert not store.apply(
            store.apply_tracking_event(third), Position(TRACKING.name, 0, 5), third.event_id
        )
        assert figures(store, "p-1") == [("by_sub:a", 2, 2), ("by_sub:b", 1, 0), ("total", 3, 2)]
    finally:
        store.close()
