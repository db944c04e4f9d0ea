"""What a payment run may pay, pure (``domain/payment_runs.py``): a statement named must be
payable, of a partner paid by the run's method and in no open run, a SEPA run pays EUR;
without names, every such statement; and a run is confirmed once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from afflux_payouts.domain.payment_runs import Candidate, PaymentRun, RunRefused, chosen

AT = datetime(2026, 12, 3, tzinfo=UTC)


def candidate(statement_id: str, *, status: str = "payable", method: str | None = "sepa",
              currency: str = "EUR", in_open_run: bool = False, total: str = "10.00") -> Candidate:
    return Candidate(statement_id, f"p-{statement_id}", currency, Decimal(total), status, method, in_open_run)


@pytest.mark.parametrize(("named", "why"), [
    (candidate("s1", status="on_hold"), "it is on_hold, not payable"),
    (candidate("s1", method="paypal"), "its partner is paid by paypal, not sepa"),
    (candidate("s1", method=None), "its partner is paid by no payment method yet, not sepa"),
    (candidate("s1", in_open_run=True), "it is in a payment run not confirmed yet"),
    (candidate("s1", currency="USD"), "a SEPA credit transfer pays EUR, not USD"),
])
def test_a_statement_named_that_cannot_be_paid_is_refused_with_the_reason(named: Candidate, why: str) -> None:
    with pytest.raises(RunRefused, match=why) as refused:
        chosen("sepa", [named], ["s1"])
    assert refused.value.field == "statement_ids"


def test_without_names_a_run_takes_every_statement_it_can_pay() -> None:
    found = chosen("sepa", [candidate("s1"), candidate("s2", status="paid"), candidate("s3", currency="USD"),
                            candidate("s4")], None)
    assert [c.statement_id for c in found] == ["s1", "s4"]
    with pytest.raises(RunRefused, match="no payable statement"):
        chosen("wire", [candidate("s1")], None)


def test_a_run_is_confirmed_once_and_only_with_its_own_statements() -> None:
    run = PaymentRun.select("run_1", "sepa", [candidate("s1"), candidate("s2")], None, AT)
    with pytest.raises(RunRefused, match="not in run"):
        run.failures({"s9": "closed"})
    run.confirm(["s1"], run.failures({"s2": "account closed"}), AT)
    assert run.confirmed and run.paid == ["s1"]
    assert run.failed == [{"statement_id": "s2", "reason": "account closed"}]
    assert [p["amount"] for p in run.payments] == ["10.00", "10.00"]
