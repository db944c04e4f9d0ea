"""Any split of the log into runs leaves the tables byte for byte as applying it one record
at a time does (a lone record is a run of one, through the same handlers): with
duplicates (the same envelope, the same decision under a new event_id), reviews in the
same run as their commission (two of one commission, a reversal), reviews of a
commission of an earlier run, a rejection, an appeal, priced clicks, a statement, a
payment and an adjustment. A run the rules refuse commits nothing, and its records one
by one dead-letter exactly what the rules refuse."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from payouts_fixtures import (
    BASE_TIME,
    attributed,
    closed,
    new_id,
    one_by_one,
    partner_created,
    rejected,
    republished,
    run_of,
    status_changed,
)
from psycopg import sql

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    BalanceAdjusted,
    ClickPriced,
    ConversionStatus,
    Envelope,
    Money,
    StatementPaid,
    StatusChange,
    encode,
)
from afflux_contracts.attribution import Appeal
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.adapters.tables import TABLES
from afflux_payouts.application.replay_fold import Fold, ShadowFold
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import Unprocessable

Log = dict[str, list[Envelope[Any]]]
STATED_UP_TO = 6
"""The attribution offset the log's statement was decided at (its log position)."""


def the_attribution_log(partner: str) -> list[Envelope[Any]]:
    sale, pending, reversed_sale, euro = (
        attributed(partner, "10.00"), attributed(partner, "3.00", status=ConversionStatus.PENDING),
        attributed(partner, "7.50", converted_at=BASE_TIME + timedelta(1)),
        attributed(partner, "4.00", "EUR"))
    later = attributed(partner, "1.10", converted_at=BASE_TIME + timedelta(2))
    rejection = rejected(partner)
    on_appeal = Appeal(rejected_reason=rejection.payload.reason, by="staff-1", reason="false positive")
    appeal = attributed(partner, "4.20", conversion_id=rejection.payload.conversion_id).payload.model_copy(
        update={"appeal": on_appeal})
    click = ClickPriced(transaction_id=new_id("tx"), partner_id=partner, offer_id="offer-cpc",
                        payout=Money(amount=Decimal("0.25"), currency="USD"), clicked_at=BASE_TIME,
                        priced_at=BASE_TIME)
    return [
        sale, pending, sale, republished(sale),
        status_changed(pending, StatusChange.APPROVED, previous=ConversionStatus.PENDING),
        status_changed(pending, StatusChange.ADJUSTED, "2.25"),
        reversed_sale, status_changed(reversed_sale, StatusChange.REVERSED), euro, rejection,
        # reviews of commissions recorded before, a new one, redeliveries, an appeal, a click
        status_changed(sale, StatusChange.ADJUSTED, "9.00"), later, republished(euro), pending,
        status_changed(later, StatusChange.REVERSED), Envelope.wrap(appeal, producer="test"),
        Envelope.wrap(click, producer="test"),
    ]


def the_payouts_log(database_url: str, partner: str, attribution: list[Envelope[Any]]) -> list[Envelope[Any]]:
    """A statement the close issues from the attribution log up to ``STATED_UP_TO``, its
    payment, and an adjustment."""
    decider = open_store(PayoutsStore, database_url, f"payouts_decider_{new_id('s').replace('-', '_')}")
    try:
        decider.apply_run(run_of(ATTRIBUTION.name, attribution[:STATED_UP_TO + 1]))
        issued = closed(decider, partner, BASE_TIME + timedelta(3))
    finally:
        decider.close()
    paid = StatementPaid(statement_id=issued.statement_id, partner_id=partner, currency="USD",
                         amount=issued.total, paid_at=BASE_TIME + timedelta(3, hours=1))
    adjusted = BalanceAdjusted(adjustment_id=new_id("adj"), partner_id=partner, currency="USD",
                               amount=Decimal("1.25"), reason="bonus", adjusted_at=BASE_TIME + timedelta(4))
    return [Envelope.wrap(e, producer="test") for e in (issued, paid, adjusted)]


def tables(store: PayoutsStore) -> dict[str, list[str]]:
    out = {}
    for table in TABLES:
        statement = sql.SQL("SELECT t::text AS row FROM {} t ORDER BY 1").format(store.table(table.name))
        rows = store.query(statement)
        out[table.name] = [row["row"] for row in rows]
    return out


def in_runs(store: PayoutsStore, topic: str, envelopes: list[Envelope[Any]], cuts: list[int]) -> None:
    """``envelopes`` applied in runs that end at ``cuts``; every run must commit as a run."""
    records = run_of(topic, envelopes)
    cuts = sorted({cut for cut in cuts if 0 < cut < len(records)})
    for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
        store.apply_run(records[start:end])


def consumer_records(topic: str, envelopes: list[Envelope[Any]]) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), [])
            for offset, value in enumerate(encode(e) for e in envelopes)]


@pytest.fixture
def stores(database_url: str) -> Iterator[list[PayoutsStore]]:
    opened = [open_store(PayoutsStore, database_url, f"payouts_runs_{new_id('s').replace('-', '_')}")
              for _ in range(4)]
    yield opened
    for store in opened:
        store.close()


def test_any_split_of_the_log_into_runs_leaves_the_tables_of_one_record_at_a_time(
    stores: list[PayoutsStore], database_url: str
) -> None:
    single, whole, halves, scattered = stores
    partner = new_id("partner")
    attribution = the_attribution_log(partner)
    log: Log = {PARTNERS.name: [partner_created(partner, minimum="5")], ATTRIBUTION.name: attribution,
                PAYOUTS.name: the_payouts_log(database_url, partner, attribution)}
    for topic, envelopes in log.items():
        assert one_by_one(single, run_of(topic, envelopes)) == []
    rng = random.Random(17)
    for store, cuts in ((whole, lambda n: []), (halves, lambda n: [n // 2]),
                        (scattered, lambda n: sorted(rng.sample(range(n), min(n, 5))))):
        for topic, envelopes in log.items():
            in_runs(store, topic, envelopes, cuts(len(envelopes)))

    expected = tables(single)
    assert tables(whole) == expected and tables(halves) == expected and tables(scattered) == expected
    assert len(expected["ledger_entries"]) == 7 and len(expected["commission_changes"]) == 12
    [statement] = single.reads.statements(partner, None, 10)
    assert (statement["status"], statement["refusal"]) == ("paid", None)
    balance = single.reads.balances(partner)["USD"]
    # earned 9.00 + 2.25 + the appeal's 4.20 + the click's 0.25 (the voided two earn nothing) and the
    # 1.25 bonus; the statement claimed 10.00 + 2.25 + 7.50 as they stood at its log position
    assert (balance.accrued, balance.paid) == (Decimal("-2.80"), Decimal("19.75"))


def test_a_run_the_rules_refuse_commits_nothing_and_its_records_dead_letter_as_one_at_a_time(
    stores: list[PayoutsStore],
) -> None:
    single, folded, *_ = stores
    partner = new_id("partner")
    sale = attributed(partner, "10.00")
    conflicting = attributed(partner, "99.00", conversion_id=sale.payload.conversion_id)
    orphan = status_changed(attributed(partner, "5.00"), StatusChange.APPROVED)
    log = [sale, status_changed(sale, StatusChange.ADJUSTED, "8.00"), conflicting, orphan,
           attributed(partner, "4.00")]

    with pytest.raises(Unprocessable):
        in_runs(folded, ATTRIBUTION.name, log, [])
    assert all(rows == [] for rows in tables(folded).values())  # the run committed nothing

    fold = ShadowFold([Fold(folded, (ATTRIBUTION.name,), folded.handlers)])
    fold.apply(consumer_records(ATTRIBUTION.name, log))
    fold.finish()
    dead = one_by_one(single, run_of(ATTRIBUTION.name, log))

    assert tables(folded) == tables(single)
    assert len(fold.report.dead_letters) == len(dead) == 2  # the conflicting decision, the orphan review
    assert "conflicting decision" in dead[0] and "not recorded yet" in dead[1]
    assert single.reads.balances(partner)["USD"].accrued == Decimal("12.00")
