"""A run of records decided together (``Payouts.apply_run``, ``run_ledger.py``) leaves the
tables byte for byte as applying the same records one at a time does: with duplicates
(the same envelope, the same decision under a new event_id), reviews in the same run
as their commission (two of one commission, a reversal), reviews of a commission of an
earlier run, a rejection, statements, a payment and an adjustment. A run the one-at-a-time
rules would refuse commits nothing, and the fold's fallback dead-letters what those rules do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from payouts_fixtures import (
    BASE_TIME,
    attributed,
    new_id,
    partner_created,
    rejected,
    republished,
    status_changed,
)
from psycopg import sql

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    BalanceAdjusted,
    ConversionStatus,
    Envelope,
    LineKind,
    StatementLine,
    StatementPaid,
    StatusChange,
    encode,
)
from afflux_payouts.application.payouts import VIEW_TABLES, Payouts
from afflux_payouts.application.replay_fold import Fold, ShadowFold
from afflux_payouts.domain.statements import Close, Terms, decide_statement
from afflux_plumbing.consume import RetryLater, Unprocessable
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.store import RunItem

Log = dict[str, list[Envelope[Any]]]


def the_log(partner: str) -> tuple[Log, int]:
    """Every kind of record payouts folds, and where the attribution log is cut in two runs."""
    sale, pending, reversed_sale, euro = (
        attributed(partner, "10.00"), attributed(partner, "3.00", status=ConversionStatus.PENDING),
        attributed(partner, "7.50", converted_at=BASE_TIME + timedelta(1)),
        attributed(partner, "4.00", "EUR"))
    later = attributed(partner, "1.10", converted_at=BASE_TIME + timedelta(2))
    attribution = [
        sale, pending, sale, republished(sale),
        status_changed(pending, StatusChange.APPROVED, previous=ConversionStatus.PENDING),
        status_changed(pending, StatusChange.ADJUSTED, "2.25"),
        reversed_sale, status_changed(reversed_sale, StatusChange.REVERSED), euro, rejected(partner),
        # the second run: reviews of commissions the first run recorded, a new one, a redelivery
        status_changed(sale, StatusChange.ADJUSTED, "9.00"), later, republished(euro), pending,
        status_changed(later, StatusChange.REVERSED),
    ]
    lines = [StatementLine(kind=LineKind.COMMISSION, ref=e.payload.conversion_id, offer_id="offer-1",
                           happened_at=e.payload.converted_at, amount=e.payload.payout.amount)
             for e in (sale, reversed_sale)]
    close = Close(partner_id=partner, currency="USD", period_end=BASE_TIME + timedelta(3), period_start=None,
                  terms=Terms(), closed_by="admin", log_position={}, issued_at=BASE_TIME + timedelta(3))
    issued = decide_statement(close, lines)
    assert issued is not None
    paid = StatementPaid(statement_id=issued.statement_id, partner_id=partner, currency="USD",
                         amount=issued.total, paid_at=BASE_TIME + timedelta(3, hours=1))
    adjusted = BalanceAdjusted(adjustment_id=new_id("adj"), partner_id=partner, currency="USD",
                               amount=Decimal("1.25"), reason="bonus", adjusted_at=BASE_TIME + timedelta(4))
    payouts = [Envelope.wrap(issued, producer="test"), Envelope.wrap(paid, producer="test"),
               Envelope.wrap(adjusted, producer="test")]
    return {ATTRIBUTION.name: attribution, PARTNERS.name: [partner_created(partner, minimum="5")],
            PAYOUTS.name: payouts}, 10


def one_at_a_time(store: Payouts, log: Log) -> None:
    """Each record in a transaction of its own, as the consumer's fallback applies it."""
    for topic, envelopes in log.items():
        for offset, envelope in enumerate(envelopes):
            position = Position(topic, 0, offset)
            if store.has_applied(envelope.event_id):
                store.record_position(position)
                continue
            try:
                store.apply(store.handle(envelope), position, envelope.event_id)
            except (Unprocessable, RetryLater):
                store.record_position(position)  # dead-lettered (a wait: at the end of the log)


def in_runs(store: Payouts, envelopes: list[Envelope[Any]], topic: str, cuts: list[int]) -> None:
    """``envelopes`` applied in runs that end at ``cuts``; every run must commit as a run."""
    start = 0
    for end in [*cuts, len(envelopes)]:
        items = [RunItem(Position(topic, 0, offset), e.event_id, partial(store.handle, e))
                 for offset, e in enumerate(envelopes[start:end], start)]
        store.apply_run(items)
        start = end


def tables(store: Payouts) -> dict[str, list[str]]:
    out = {}
    for name in VIEW_TABLES:
        rows = store.query(sql.SQL("SELECT t::text AS row FROM {} t ORDER BY 1").format(store.table(name)))
        out[name] = [row["row"] for row in rows]
    return out


def records(topic: str, envelopes: list[Envelope[Any]]) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), [])
            for offset, value in enumerate(encode(e) for e in envelopes)]


@pytest.fixture
def stores(database_url: str) -> Iterator[list[Payouts]]:
    opened = [open_store(Payouts, database_url, f"payouts_runs_{new_id('s').replace('-', '_')}")
              for _ in range(3)]
    yield opened
    for store in opened:
        store.close()


def test_runs_decided_together_leave_the_tables_of_one_record_at_a_time(stores: list[Payouts]) -> None:
    single, whole, halves = stores
    partner = new_id("partner")
    log, cut = the_log(partner)
    one_at_a_time(single, log)
    for store, cuts in ((whole, []), (halves, [cut])):
        in_runs(store, log[PARTNERS.name], PARTNERS.name, [])
        in_runs(store, log[ATTRIBUTION.name], ATTRIBUTION.name, cuts)
        in_runs(store, log[PAYOUTS.name], PAYOUTS.name, [])

    expected = tables(single)
    assert tables(whole) == expected and tables(halves) == expected
    assert len(expected["ledger_entries"]) == 5 and len(expected["commission_changes"]) == 10
    balance = single.balances(partner)["USD"]
    # earned 9.00 + 2.25 (the voided two earn nothing), the bonus 1.25, the statement claimed 17.50
    assert (balance.accrued, balance.paid) == (Decimal("-5.00"), Decimal("17.50"))


def test_a_run_the_rules_refuse_commits_nothing_and_the_fallback_dead_letters_as_one_at_a_time(
    stores: list[Payouts],
) -> None:
    single, folded, _ = stores
    partner = new_id("partner")
    sale = attributed(partner, "10.00")
    conflicting = attributed(partner, "99.00", conversion_id=sale.payload.conversion_id)
    orphan = status_changed(attributed(partner, "5.00"), StatusChange.APPROVED)
    log = [sale, status_changed(sale, StatusChange.ADJUSTED, "8.00"), conflicting, orphan,
           attributed(partner, "4.00")]

    with pytest.raises(Unprocessable):
        in_runs(folded, log, ATTRIBUTION.name, [])
    assert all(rows == [] for rows in tables(folded).values())  # the run committed nothing

    fold = ShadowFold([Fold(folded, (ATTRIBUTION.name,), folded.handle)])
    fold.apply(records(ATTRIBUTION.name, log))
    fold.finish()
    one_at_a_time(single, {ATTRIBUTION.name: log})

    assert tables(folded) == tables(single)
    assert len(fold.report.dead_letters) == 2  # the conflicting decision, the orphan review
    assert single.balances(partner)["USD"].accrued == Decimal("12.00")
