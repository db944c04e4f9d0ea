"""``make bench``: closing statements for 10,000 partners, beside a baseline from the same run.

- the close of every partner (``Statements.close``, what ``POST /v1/statements/close``
  runs): one snapshot of the unclaimed lines, 10,000 statements decided and recorded in
  the outbox;
- folding those 10,000 StatementIssued back (``apply_run``, runs of ``RUN_LIMIT``), each
  judged against the ledger (its lines as of its log position) before it makes its
  commissions payable;
- baseline: bare PostgreSQL inserts of the same 10,000 statement rows and their lines in
  one transaction.

Target (issue 12): the close in under 10 s. The ledger is filled by folding
attribution decisions (two commissions per partner) exactly as the consumer does;
the result is checked (every partner stated, every cent payable), so a fast wrong
answer fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from afflux_contracts import (
    ATTRIBUTION,
    PAYOUTS,
    ConversionAttributed,
    Envelope,
    Money,
    utc_now,
)
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.published import to_envelope
from afflux_payouts.application.statements import Statements
from afflux_plumbing.consume import RUN_LIMIT
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import record_of

PARTNERS = int(os.environ.get("AFFLUX_BENCH_PARTNERS", "10000"))
TARGET_SECONDS = 10.0
CONVERTED = utc_now() - timedelta(days=2)


def decisions() -> list[Envelope[Any]]:
    return [Envelope.wrap(ConversionAttributed(
        conversion_id=f"bench-conv-{p}-{n}", transaction_id=f"bench-tx-{p}-{n}",
        partner_id=f"bench-p-{p:05d}",
        offer_id="bench-offer", event="sale", payout=Money(amount=Decimal("4.80") + n, currency="USD"),
        clicked_at=CONVERTED, converted_at=CONVERTED), producer="bench")
        for p in range(PARTNERS) for n in range(2)]


def fold(store: PayoutsStore, topic: str, envelopes: list[Envelope[Any]]) -> float:
    """Seconds to apply ``envelopes`` as the consumer would (runs of RUN_LIMIT)."""
    started = time.perf_counter()
    for start in range(0, len(envelopes), RUN_LIMIT):
        run = envelopes[start:start + RUN_LIMIT]
        store.apply_run([record_of(e, Position(topic, 0, start + i)) for i, e in enumerate(run)])
    return time.perf_counter() - started


def bare_inserts(database_url: str) -> float:
    """The same rows a close writes, inserted by hand in one transaction."""
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE bare_statements (statement_id text PRIMARY KEY, partner_id text, "
                     "currency text, total numeric, body text)")
        conn.execute("CREATE TEMP TABLE bare_lines (statement_id text, ref text, amount numeric, "
                     "PRIMARY KEY (statement_id, ref))")
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bare_statements VALUES (%s, %s, 'USD', %s, %s)",
                            [(f"st-{p}", f"bench-p-{p:05d}", Decimal("10.60"), "x" * 600)
                             for p in range(PARTNERS)])
            cur.executemany("INSERT INTO bare_lines VALUES (%s, %s, %s)",
                            [(f"st-{p}", f"bench-conv-{p}-{n}", Decimal("4.80") + n)
                             for p in range(PARTNERS) for n in range(2)])
        conn.commit()
        return time.perf_counter() - started


@pytest.fixture
def store(database_url: str) -> Iterator[PayoutsStore]:
    app = open_store(PayoutsStore, database_url, "payouts")
    yield app
    app.close()


def test_closing_statements_for_10000_partners(store: PayoutsStore, database_url: str) -> None:
    fold(store, ATTRIBUTION.name, decisions())
    statements = Statements(store)

    started = time.perf_counter()
    issued = statements.close(utc_now() - timedelta(days=1))
    close_seconds = time.perf_counter() - started
    recorder = store.tracked_recorder
    stored = recorder.select_notifications(None, 2 * PARTNERS, None, (), inclusive_of_start=True)
    published = [to_envelope(store.mapper.to_domain_event(n)) for n in stored]
    fold_seconds = fold(store, PAYOUTS.name, [e for e in published if e is not None])
    baseline = bare_inserts(database_url)

    print(f"\nstatements for {PARTNERS:,} partners:")
    verdict = "met" if close_seconds < TARGET_SECONDS else "MISSED"
    print(f"  close (decide + record in the outbox)  {close_seconds:6.2f} s   "
          f"target < {TARGET_SECONDS:.0f} s: {verdict}")
    print(f"  fold of the StatementIssued back       {fold_seconds:6.2f} s")
    print(f"  baseline: bare inserts of the same rows {baseline:5.2f} s "
          f"(close = {close_seconds / baseline:.1f}x)")

    assert len(issued) == PARTNERS
    assert statements.wait_folded(timeout=0)
    balance = store.reads.balances("bench-p-00042")["USD"]
    assert not store.reads.statements(None, "refused", 1)  # every statement proven, none refused
    assert (balance.payable, balance.accrued) == (Decimal("10.60"), Decimal(0))
