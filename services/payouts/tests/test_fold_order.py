"""The payouts fold is a function of the log, not of how its topics interleave: the same
records of the attribution, partners and payouts logs, applied in different orders
across topics (each topic's own order kept, as Kafka keeps it per key), with
duplicates, leave byte-identical tables and the same balances. A statement read before
the attribution records it was decided from waits for them (it is parked, as the
consumer parks it), so it is judged the same whatever the order; and it is re-derived
from the log up to its log position."""

from __future__ import annotations

import itertools
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
    partner_created,
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
    Envelope,
    StatementPaid,
    StatusChange,
    encode,
)
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.adapters.tables import TABLES
from afflux_payouts.application.replay_fold import Fold, ShadowFold
from afflux_payouts.application.statements import Statements
from afflux_plumbing.eventstore import open_store

Batch = list[ConsumerRecord[bytes, bytes]]


def records(topic: str, envelopes: list[Envelope[Any]]) -> Batch:
    return [ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), [])
            for offset, value in enumerate(encode(e) for e in envelopes)]


def the_log(decider: PayoutsStore) -> dict[str, Batch]:
    """One partner's history on the three topics: two sales, a statement of them that the
    close decides (on ``decider``), a payment, a reversal after it, an adjustment."""
    partner = "p-order"
    sale = attributed(partner, "10.00")
    other = attributed(partner, "2.50", converted_at=BASE_TIME + timedelta(1))
    reversal = status_changed(sale, StatusChange.REVERSED)
    attribution = [sale, other, republished(sale), reversal]
    decider.apply_run(run_of(ATTRIBUTION.name, attribution[:3]))
    issued = closed(decider, partner, BASE_TIME + timedelta(2))
    paid = StatementPaid(statement_id=issued.statement_id, partner_id=partner, currency="USD",
                         amount=issued.total, paid_at=BASE_TIME + timedelta(2, hours=1))
    adjusted = BalanceAdjusted(adjustment_id="adj_1", partner_id=partner, currency="USD",
                               amount=Decimal("1.25"), reason="bonus", adjusted_at=BASE_TIME + timedelta(4))
    return {
        ATTRIBUTION.name: records(ATTRIBUTION.name, attribution),
        PARTNERS.name: records(PARTNERS.name, [partner_created(partner, minimum="5")]),
        PAYOUTS.name: records(PAYOUTS.name, [Envelope.wrap(e, producer="test")
                                             for e in (issued, paid, adjusted)]),
    }


def interleavings(log: dict[str, Batch]) -> Iterator[list[Batch]]:
    """Each topic whole, attribution first and payouts first; and round robin, a record at
    a time (each topic's records in their order)."""
    attribution_first = (ATTRIBUTION.name, PARTNERS.name, PAYOUTS.name)
    for order in (attribution_first, tuple(reversed(attribution_first))):
        yield [log[topic] for topic in order]
    rounds = itertools.zip_longest(*log.values())
    yield [[record] for group in rounds for record in group if record is not None]


def fold(store: PayoutsStore, batches: list[Batch]) -> None:
    shadow = ShadowFold([Fold(store, (ATTRIBUTION.name, PARTNERS.name, PAYOUTS.name), store.handlers)])
    for batch in [*batches, *batches[:1]]:  # and a redelivery, which changes nothing
        shadow.apply(batch)
    shadow.finish()
    assert shadow.report.dead_letters == []


def tables(store: PayoutsStore) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for table in TABLES:
        statement = sql.SQL("SELECT t::text AS row FROM {} t ORDER BY 1").format(store.table(table.name))
        out[table.name] = [row["row"] for row in store.query(statement)]
    return out


@pytest.fixture
def stores(database_url: str) -> Iterator[list[PayoutsStore]]:
    opened = [open_store(PayoutsStore, database_url, f"payouts_order_{n}") for n in range(4)]
    yield opened
    for store in opened:
        store.close()


def test_every_interleaving_of_the_topics_folds_to_the_same_tables(stores: list[PayoutsStore]) -> None:
    decider, *folded = stores
    log = the_log(decider)
    results = []
    for store, batches in zip(folded, interleavings(log), strict=True):
        fold(store, batches)
        results.append((tables(store), store.reads.balances("p-order")))
    first_tables, first_balance = results[0]
    assert all(r == results[0] for r in results[1:])
    assert first_balance["USD"].paid == Decimal("12.50")
    assert first_balance["USD"].accrued == Decimal("-8.75")  # the reversal clawed back, the bonus added
    assert len(first_tables["statement_lines"]) == 2
    assert [row["status"] for row in folded[0].reads.statements("p-order", None, 10)] == ["paid"]


def test_a_statement_is_rederived_from_the_log_up_to_its_log_position(stores: list[PayoutsStore]) -> None:
    live, replayed, later, _ = stores
    partner = new_id("partner")
    sales = [attributed(partner, "7.10"), attributed(partner, "2.05", converted_at=BASE_TIME + timedelta(1))]
    attribution = [*sales, status_changed(sales[1], StatusChange.ADJUSTED, "3.00")]
    partners = [partner_created(partner)]
    live.apply_run(run_of(ATTRIBUTION.name, attribution))
    live.apply_run(run_of(PARTNERS.name, partners))

    issued = closed(live, partner, BASE_TIME + timedelta(5))

    assert issued.log_position == {f"{ATTRIBUTION.name}#0": 2, f"{PARTNERS.name}#0": 0}
    beyond = attributed(partner, "1.00", converted_at=BASE_TIME + timedelta(2))
    for store, extra in ((replayed, []), (later, [beyond])):  # later: the log goes on after the statement
        store.apply_run(run_of(PARTNERS.name, partners))  # another order, the same records
        store.apply_run(run_of(ATTRIBUTION.name, [*attribution, *extra]))
        store.apply_run(run_of(PAYOUTS.name, [Envelope.wrap(issued, producer="test")]))
        [proof] = Statements(store).rederive(issued.statement_id)
        assert proof.equal and proof.digest == issued.digest
        assert sorted(line.amount for line in proof.lines) == [Decimal("3.00"), Decimal("7.10")]
    live.apply_run(run_of(PAYOUTS.name, [Envelope.wrap(issued, producer="test")]))
    [live_proof] = Statements(live).rederive()
    assert live_proof.statement.statement_id == issued.statement_id and live_proof.equal
