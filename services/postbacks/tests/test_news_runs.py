"""The logs' news applied in runs, on a real PostgreSQL without a broker: any split of the
logs into runs leaves the same tables; a status change carries the facts (subs among
them) of its attribution, even one in the same run; the newest partners state wins
whatever order it comes in; a decision without subs (published before decisions carried
them) fills its sub macros empty."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import psycopg
from postbacks_fixtures import BASE_TIME, attributed, offer, partner, relationship, status_changed

from afflux_contracts import ATTRIBUTION, PARTNERS, Envelope
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, record_of
from afflux_postbacks.adapters.store import PostbacksStore
from afflux_postbacks.application.news import News
from afflux_postbacks.application.schedule import resolve_owed

TEMPLATE = "?cid={conversion_id}&tid={transaction_id}&st={status}&s1={sub1}&s5={sub5}"


def at(envelope: Envelope[Any], minutes: int) -> Envelope[Any]:
    """``envelope``'s event as published ``minutes`` after the tests' base time."""
    when = BASE_TIME + timedelta(minutes=minutes)
    return Envelope.wrap(envelope.payload, producer="test", occurred_at=when)


def logs() -> dict[str, list[Envelope[Any]]]:
    """The partners log (the newer relationship published before the older) and the
    attribution log (a duplicate, status changes right after their attributions)."""
    with_subs = attributed("tx-1", "o1", "p1", conversion_id="c1", sub1="mail & co", sub5="z")
    without_subs = attributed("tx-2", "o1", "p1", conversion_id="c2")
    return {
        PARTNERS.name: [
            offer("o1", silent=("upsell",)),
            at(relationship("o1", "p1", "https://new.example/pb" + TEMPLATE, status_changes=True), 2),
            at(relationship("o1", "p1", "https://old.example/pb" + TEMPLATE), 1),
            at(partner("p2", "https://p2.example/pb", method="post"), 1),
            at(partner("p2", None), 3),
        ],
        ATTRIBUTION.name: [
            with_subs, status_changed(with_subs, "reversed", payout="0.00"), without_subs, with_subs,
            attributed("tx-3", "o1", "p1", conversion_id="c3", event="upsell"),
            status_changed(without_subs, "adjusted", payout="4.00"),
        ],
    }


LOGS = logs()


def applied_in(store: PostbacksStore, cuts: dict[str, list[int]]) -> None:
    """Each log applied in runs cut before the offsets in ``cuts``."""
    handlers = Handlers.of(News(store))
    for topic, envelopes in LOGS.items():
        records = [record_of(each, Position(topic, 0, offset)) for offset, each in enumerate(envelopes)]
        bounds = [0, *cuts[topic], len(records)]
        for start, end in itertools.pairwise(bounds):
            store.apply_run(records[start:end], handlers)

TABLES = {
    "relationships": "SELECT * FROM {s}.relationships ORDER BY offer_id, partner_id",
    "partner_postbacks": "SELECT * FROM {s}.partner_postbacks ORDER BY partner_id",
    "offers": "SELECT * FROM {s}.offers ORDER BY offer_id",
    "deliveries": "SELECT seq, delivery_id, conversion_id, partner_id, offer_id, facts::text, "
                  "correlation_id, status FROM {s}.deliveries ORDER BY seq",
}


def tables(database_url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as connection:
        return {name: connection.execute(statement.format(s=schema)).fetchall()
                for name, statement in TABLES.items()}


def test_any_split_of_the_logs_into_runs_leaves_the_same_tables(database_url: str) -> None:
    rng = random.Random(17)
    splits: list[dict[str, list[int]]] = [
        {topic: [] for topic in LOGS}, {topic: list(range(1, len(log))) for topic, log in LOGS.items()}]
    splits += [{topic: sorted(rng.sample(range(1, len(log)), rng.randint(1, len(log) - 1)))
                for topic, log in LOGS.items()} for _ in range(2)]
    seen = []
    for number, cuts in enumerate(splits):
        store = open_store(PostbacksStore, database_url, f"postbacks_{number}")
        try:
            applied_in(store, cuts)
        finally:
            store.close()
        seen.append(tables(database_url, f"postbacks_{number}"))
    assert all(each == seen[0] for each in seen[1:]), [cuts for cuts, each in zip(splits, seen, strict=True)
                                                      if each != seen[0]]
    assert len(seen[0]["deliveries"]) == 5  # the duplicate owes nothing more


def test_the_news_fills_its_macros_from_the_decision_and_the_newest_postback(database_url: str) -> None:
    store = open_store(PostbacksStore, database_url, "postbacks")
    try:
        applied_in(store, {topic: [] for topic in LOGS})  # one run each: changes beside their attributions
        owed = store.claim_owed(100, 30.0)
        assert resolve_owed(store, owed, final=True) == ([], 1)  # the status changes wait their turn
        rows = store.page(partner_id="p1", status=None, after=None, limit=10)
    finally:
        store.close()
    by_news = {(row.conversion_id, row.kind): row for row in rows}
    assert by_news["c1", "attributed"].url == (
        "https://new.example/pb?cid=c1&tid=tx-1&st=approved&s1=mail%20%26%20co&s5=z")
    change = by_news["c1", "status_changed"]
    assert change.status == "owed" and change.url is None
    carried = {name: change.facts.get(name) for name in ("transaction_id", "event", "sub1", "sub5", "status")}
    assert carried == {"transaction_id": "tx-1", "event": "sale", "sub1": "mail & co", "sub5": "z",
                       "status": "reversed"}
    assert by_news["c2", "attributed"].url == "https://new.example/pb?cid=c2&tid=tx-2&st=approved&s1=&s5="
    assert by_news["c3", "attributed"].status == "skipped"
    assert by_news["c3", "attributed"].last_error == (
        "the offer's event 'upsell' does not fire partner postbacks")
