"""The logs' news applied in runs on a real PostgreSQL, without a broker: however the log
is cut into runs, and however often a record comes again, the same mails are queued once;
a record whose partner the views do not know yet waits (RetryLater), never losing it."""

from __future__ import annotations

from typing import Any

import pytest
from notifications_fixtures import (
    SessionInfra,
    offer,
    offer_status,
    partner,
    relationship,
    statement_paid,
)
from psycopg import sql

from afflux_contracts import PARTNERS, PAYOUTS, Envelope
from afflux_notifications.adapters.store import NotificationsStore
from afflux_notifications.application.news import News
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, RetryLater, record_of

PARTNERS_LOG = [
    offer("o1", "Winter"), partner("p1", "one@p1.example", "two@p1.example"), partner("p2", "p2@p2.example"),
    relationship("o1", "p1", approved=False, application=True), relationship("o1", "p1", approved=True),
    relationship("o1", "p2", approved=True), offer_status("o1", "paused"),
]
PAYOUTS_LOG = [statement_paid("p1", "st-9"), statement_paid("p2", "st-8")]


def queued(store: NotificationsStore) -> list[tuple[Any, ...]]:
    statement = sql.SQL("SELECT kind, recipient, source, status FROM {} ORDER BY kind, recipient")
    rows = store.query(statement.format(store.table("notifications")))
    return [tuple(row.values()) for row in rows]


def apply(store: NotificationsStore, topic: str, log: list[Envelope[Any]], cuts: list[int],
          at: int = 0) -> None:
    """``log`` from offset ``at``, cut into runs before the offsets in ``cuts``."""
    handlers = Handlers.of(News(store, ["ops@network.example"]))
    records = [record_of(envelope, Position(topic, 0, at + offset)) for offset, envelope in enumerate(log)]
    for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
        if start < end:
            store.apply_run(records[start:end], handlers)


@pytest.mark.parametrize("cuts", [[], [1, 2, 3, 4, 5, 6]], ids=["one run", "runs of one"])
def test_any_cut_of_the_log_into_runs_queues_the_same_mails_once(infra: SessionInfra,
                                                                 cuts: list[int]) -> None:
    store = open_store(NotificationsStore, infra.new_database(), "notifications")
    apply(store, PARTNERS.name, PARTNERS_LOG, cuts)
    apply(store, PAYOUTS.name, PAYOUTS_LOG, cuts[:1])
    apply(store, PARTNERS.name, PARTNERS_LOG, [], at=100)  # all of it again, redelivered further on
    assert queued(store) == sorted([
        ("offer_paused", "one@p1.example", f"event:{PARTNERS_LOG[6].event_id}", "queued"),
        ("offer_paused", "p2@p2.example", f"event:{PARTNERS_LOG[6].event_id}", "queued"),
        ("offer_paused", "two@p1.example", f"event:{PARTNERS_LOG[6].event_id}", "queued"),
        ("relationship_approved", "one@p1.example", f"event:{PARTNERS_LOG[4].event_id}", "queued"),
        ("relationship_approved", "two@p1.example", f"event:{PARTNERS_LOG[4].event_id}", "queued"),
        ("staff_offer_application", "ops@network.example", f"event:{PARTNERS_LOG[3].event_id}", "queued"),
        ("statement_paid", "one@p1.example", f"event:{PAYOUTS_LOG[0].event_id}", "queued"),
        ("statement_paid", "p2@p2.example", f"event:{PAYOUTS_LOG[1].event_id}", "queued"),
        ("statement_paid", "two@p1.example", f"event:{PAYOUTS_LOG[0].event_id}", "queued"),
    ])


def test_a_statement_of_a_partner_not_in_the_views_yet_waits(infra: SessionInfra) -> None:
    store = open_store(NotificationsStore, infra.new_database(), "notifications")
    with pytest.raises(RetryLater, match="partner p-late"):
        apply(store, PAYOUTS.name, [statement_paid("p-late", "st-1")], [])
    assert queued(store) == []
    apply(store, PARTNERS.name, [partner("p-late", "late@p.example")], [])
    apply(store, PAYOUTS.name, [statement_paid("p-late", "st-1")], [], at=1)
    assert [row[:2] for row in queued(store)] == [("statement_paid", "late@p.example")]
