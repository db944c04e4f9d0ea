"""The payouts fold is a function of the log, not of how its topics interleave: the same
records of the attribution, partners and payouts logs, applied in different orders
across topics (each topic's own order kept, as Kafka keeps it per key), and with
duplicates, leave byte-identical tables and the same balances."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from payouts_fixtures import BASE_TIME, attributed, partner_created, republished, status_changed
from psycopg import sql

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    BalanceAdjusted,
    Envelope,
    LineKind,
    StatementLine,
    StatementPaid,
    StatusChange,
)
from afflux_payouts.application.payouts import VIEW_TABLES, Payouts
from afflux_payouts.application.statements import Statements
from afflux_payouts.domain.statements import Close, Terms, decide_statement
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position

Record = tuple[Position, Envelope[Any]]


def the_log() -> dict[str, list[Record]]:
    """One partner's history on the three topics: two sales, a statement that pays them,
    a payment, a reversal after it, an adjustment."""
    partner = "p-order"
    sale = attributed(partner, "10.00")
    other = attributed(partner, "2.50", converted_at=BASE_TIME + timedelta(1))
    reversal = status_changed(sale, StatusChange.REVERSED)
    lines = [StatementLine(kind=LineKind.COMMISSION, ref=e.payload.conversion_id, offer_id="offer-1",
                           happened_at=e.payload.converted_at, amount=e.payload.payout.amount)
             for e in (sale, other)]
    close = Close(partner_id=partner, currency="USD", period_end=BASE_TIME + timedelta(2), period_start=None,
                  terms=Terms(), closed_by="admin", log_position={}, issued_at=BASE_TIME + timedelta(2))
    issued = decide_statement(close, lines)
    assert issued is not None
    paid = StatementPaid(statement_id=issued.statement_id, partner_id=partner, currency="USD",
                         amount=issued.total, paid_at=BASE_TIME + timedelta(2, hours=1))
    adjusted = BalanceAdjusted(adjustment_id="adj_1", partner_id=partner, currency="USD",
                               amount=Decimal("1.25"), reason="bonus", adjusted_at=BASE_TIME + timedelta(4))
    topics = {
        ATTRIBUTION.name: [sale, other, republished(sale), reversal],
        PARTNERS.name: [partner_created(partner, minimum="5")],
        PAYOUTS.name: [Envelope.wrap(issued, producer="test"), Envelope.wrap(paid, producer="test"),
                       Envelope.wrap(adjusted, producer="test")],
    }
    return {topic: [(Position(topic, 0, offset), e) for offset, e in enumerate(records)]
            for topic, records in topics.items()}


def interleavings(log: dict[str, list[Record]]) -> Iterator[list[Record]]:
    """Each topic whole, attribution first and payouts first; and round robin."""
    attribution_first = (ATTRIBUTION.name, PARTNERS.name, PAYOUTS.name)
    for order in (attribution_first, tuple(reversed(attribution_first))):
        yield [record for topic in order for record in log[topic]]
    yield [r for group in itertools.zip_longest(*log.values()) for r in group if r is not None]


def fold(store: Payouts, records: list[Record]) -> None:
    for position, envelope in records:
        store.apply(store.handle(envelope), position, envelope.event_id)
    for position, envelope in records[:2]:  # a redelivery changes nothing
        store.apply(store.handle(envelope), position, envelope.event_id)


def tables(store: Payouts) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for name in VIEW_TABLES:
        rows = store.query(sql.SQL("SELECT t::text AS row FROM {} t ORDER BY 1").format(store.table(name)))
        out[name] = [row["row"] for row in rows]
    return out


@pytest.fixture
def stores(database_url: str) -> Iterator[list[Payouts]]:
    opened = [open_store(Payouts, database_url, f"payouts_order_{n}") for n in range(3)]
    yield opened
    for store in opened:
        store.close()


def test_every_interleaving_of_the_topics_folds_to_the_same_tables(stores: list[Payouts]) -> None:
    log = the_log()
    results = []
    for store, records in zip(stores, interleavings(log), strict=True):
        fold(store, records)
        results.append((tables(store), store.balances("p-order")))
    first_tables, first_balance = results[0]
    assert all(r == results[0] for r in results[1:])
    assert first_balance["USD"].paid == Decimal("12.50")
    assert first_balance["USD"].accrued == Decimal("-8.75")  # the reversal clawed back, the bonus added
    assert len(first_tables["statement_lines"]) == 2


def test_a_statement_is_rederived_from_the_log_up_to_its_log_position(stores: list[Payouts]) -> None:
    live, replayed, later = stores
    partner = "p-rederive"
    sales = [attributed(partner, "7.10"), attributed(partner, "2.05", converted_at=BASE_TIME + timedelta(1))]
    records = {ATTRIBUTION.name: [*sales, status_changed(sales[1], StatusChange.ADJUSTED, "3.00")],
               PARTNERS.name: [partner_created(partner)]}
    log = {topic: [(Position(topic, 0, n), e) for n, e in enumerate(rs)] for topic, rs in records.items()}
    fold(live, log[ATTRIBUTION.name] + log[PARTNERS.name])

    [issued] = Statements(live).close(BASE_TIME + timedelta(5), partner)

    assert issued.log_position == {f"{ATTRIBUTION.name}#0": 2, f"{PARTNERS.name}#0": 0}
    fold(replayed, log[PARTNERS.name] + log[ATTRIBUTION.name])  # another order, the same records
    assert Statements(replayed).rederived_digest(issued) == issued.digest
    beyond = attributed(partner, "1.00", converted_at=BASE_TIME + timedelta(2))
    fold(later, log[ATTRIBUTION.name] + [(Position(ATTRIBUTION.name, 0, 3), beyond)])
    assert Statements(later).rederived_digest(issued) != issued.digest
