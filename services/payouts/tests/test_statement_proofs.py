"""Every statement provable (issue 16, item 7), on the store over a real PostgreSQL: the fold
moves money for a ``StatementIssued`` only if each of its lines is what the ledger holds
unclaimed for it (as of the statement's period end and log position); anything else, a
statement put on the log by hand with a digest recomputed by the published rule, say, is
kept as ``refused`` with its reason, pays nothing, is never paid, and re-deriving it from
the log names it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from payouts_fixtures import BASE_TIME, attributed, closed, new_id, run_of, status_changed

from afflux_contracts import (
    ATTRIBUTION,
    PAYOUTS,
    Envelope,
    LineKind,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatusChange,
    statement_digest,
)
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.statements import Statements
from afflux_payouts.domain.balance import Balance
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import RetryLater, Unprocessable

PERIOD_END = BASE_TIME + timedelta(days=2)


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[PayoutsStore, PayoutsStore]]:
    """The store that decides (its close) and the one that folds what it published."""
    opened = tuple(open_store(PayoutsStore, database_url, f"payouts_{name}") for name in ("decides", "folds"))
    yield opened  # type: ignore[misc]
    for store in opened:
        store.close()


def forged(genuine: StatementIssued, *lines: StatementLine,
           statement_id: str | None = None) -> StatementIssued:
    """``genuine`` with ``lines`` (its own, else), under a new id unless one is given, its total
    and digest recomputed by the published rule: what anyone with the producer's rights can do."""
    stated = lines or genuine.lines
    named = statement_id or f"st_{secrets.token_hex(12)}"
    total = sum((line.amount for line in stated), Decimal(0))
    return genuine.model_copy(update={
        "statement_id": named, "lines": stated, "total": total,
        "digest": statement_digest(named, genuine.partner_id, genuine.currency, genuine.period_end, stated)})


class Ledger:
    """A partner with two sales (10.00, 2.50) folded by both stores, and the statement the close
    issues for them on the deciding store."""

    def __init__(self, decides: PayoutsStore, folds: PayoutsStore) -> None:
        self.partner = new_id("partner")
        self.folds, self.offset = folds, 0
        sales = [attributed(self.partner, "10.00"), attributed(self.partner, "2.50")]
        for store in (decides, folds):
            store.apply_run(run_of(ATTRIBUTION.name, sales))
        self.genuine = closed(decides, self.partner, PERIOD_END)

    def publish(self, *payloads: Any) -> None:
        """``payloads`` on the payouts log, folded as one run."""
        envelopes = [Envelope.wrap(payload, producer="test") for payload in payloads]
        self.folds.apply_run(run_of(PAYOUTS.name, envelopes, self.offset))
        self.offset += len(envelopes)

    def statuses(self) -> dict[str, tuple[str, str | None]]:
        return {row["statement_id"]: (row["status"], row["refusal"])
                for row in self.folds.reads.statements(self.partner, None, 10)}

    def balance(self) -> Balance:
        return self.folds.reads.balances(self.partner)["USD"]


@pytest.fixture
def ledger(stores: tuple[PayoutsStore, PayoutsStore]) -> Ledger:
    return Ledger(*stores)


def test_a_statement_the_close_issued_is_proven_and_claims_its_lines(ledger: Ledger) -> None:
    ledger.publish(ledger.genuine)

    assert ledger.statuses() == {ledger.genuine.statement_id: ("payable", None)}
    assert ledger.balance() == Balance("USD", payable=Decimal("12.50"))
    [proof] = Statements(ledger.folds).rederive()
    assert proof.equal and proof.digest == ledger.genuine.digest


def test_a_forged_statement_with_a_consistent_digest_pays_nothing_and_is_kept_refused(ledger: Ledger) -> None:
    extra = StatementLine(kind=LineKind.COMMISSION, ref=new_id("conv"), offer_id="offer-1",
                          happened_at=BASE_TIME, amount=Decimal("500.00"))
    forgery = forged(ledger.genuine, *ledger.genuine.lines, extra)

    ledger.publish(forgery)

    status, reason = ledger.statuses()[forgery.statement_id]
    assert status == "refused" and reason is not None
    assert f"commission {extra.ref} (500.00 USD: it holds nothing)" in reason
    assert ledger.balance() == Balance("USD", accrued=Decimal("12.50"))  # nothing became payable
    [proof] = Statements(ledger.folds).rederive(forgery.statement_id)
    assert not proof.equal and proof.digest != forgery.digest
    with pytest.raises(Unprocessable, match="refused and not payable"):
        ledger.publish(StatementPaid(statement_id=forgery.statement_id, partner_id=ledger.partner,
                                     currency="USD", amount=forgery.total, paid_at=PERIOD_END))


def test_a_genuine_statement_copied_under_a_new_id_is_refused_its_lines_being_claimed(ledger: Ledger) -> None:
    copy = forged(ledger.genuine)

    ledger.publish(ledger.genuine, copy)

    assert ledger.statuses() == {
        ledger.genuine.statement_id: ("payable", None),
        copy.statement_id: ("refused", ledger.statuses()[copy.statement_id][1])}
    assert "it holds nothing" in (ledger.statuses()[copy.statement_id][1] or "")
    assert ledger.balance() == Balance("USD", payable=Decimal("12.50"))  # claimed once
    assert [p.equal for p in Statements(ledger.folds).rederive()] == [True, False]


def test_a_line_in_another_amount_than_the_ledger_holds_is_refused(ledger: Ledger) -> None:
    low, high = sorted(ledger.genuine.lines, key=lambda line: line.amount)
    inflated = forged(ledger.genuine, low, high.model_copy(update={"amount": Decimal("10.01")}))

    ledger.publish(inflated)

    [(status, reason)] = ledger.statuses().values()
    assert status == "refused" and f"commission {high.ref} (10.01 USD: it holds 10.00, offer offer-1" in (
        reason or "")


def test_a_statement_read_before_the_records_it_was_decided_from_waits_for_them(
    stores: tuple[PayoutsStore, PayoutsStore],
) -> None:
    decides, folds = stores
    partner = new_id("partner")
    sale = attributed(partner, "4.00")
    decides.apply_run(run_of(ATTRIBUTION.name, [sale]))
    issued = closed(decides, partner, PERIOD_END)
    envelope = Envelope.wrap(issued, producer="test")

    with pytest.raises(RetryLater, match=f"{ATTRIBUTION.name}#0 up to offset 0"):
        folds.apply_run(run_of(PAYOUTS.name, [envelope]))
    folds.apply_run(run_of(ATTRIBUTION.name, [sale]))
    folds.apply_run(run_of(PAYOUTS.name, [envelope]))

    assert folds.reads.balances(partner)["USD"] == Balance("USD", payable=Decimal("4.00"))


def test_a_provable_statement_takes_the_place_of_a_forgery_of_its_id(ledger: Ledger) -> None:
    first, *_ = ledger.genuine.lines
    forgery = forged(ledger.genuine, first.model_copy(update={"amount": Decimal("99.00")}),
                     statement_id=ledger.genuine.statement_id)

    ledger.publish(forgery)
    assert ledger.statuses()[ledger.genuine.statement_id][0] == "refused"
    ledger.publish(ledger.genuine)

    assert ledger.statuses() == {ledger.genuine.statement_id: ("payable", None)}
    stated = ledger.folds.reads.statement_lines(ledger.genuine.statement_id)
    assert sorted(line["amount"] for line in stated) == sorted(line.amount for line in ledger.genuine.lines)
    assert ledger.balance() == Balance("USD", payable=Decimal("12.50"))


def test_a_statement_is_judged_as_of_its_log_position_not_as_the_ledger_stands_later(
    stores: tuple[PayoutsStore, PayoutsStore],
) -> None:
    """A reversal folded after the close (and before the statement comes back) does not make
    the statement unprovable: its lines are judged from the records up to its log position."""
    decides, folds = stores
    partner = new_id("partner")
    sale = attributed(partner, "8.00")
    decides.apply_run(run_of(ATTRIBUTION.name, [sale]))
    issued = closed(decides, partner, PERIOD_END)
    folds.apply_run(run_of(ATTRIBUTION.name, [sale, status_changed(sale, StatusChange.REVERSED)]))

    folds.apply_run(run_of(PAYOUTS.name, [Envelope.wrap(issued, producer="test")]))

    assert [row["status"] for row in folds.reads.statements(partner, None, 10)] == ["payable"]
    balance = folds.reads.balances(partner)["USD"]
    assert (balance.payable, balance.accrued) == (Decimal("8.00"), Decimal("-8.00"))  # clawed back next
