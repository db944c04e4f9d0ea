"""Closing a period, pure (``domain/statements.py``, ``domain/periods.py``): the minimum
payout, carry-over, negative totals, the digest, and when billing frequencies end periods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from afflux_contracts import (
    BillingFrequency,
    LineKind,
    StatementIssued,
    StatementLine,
    StatementStatus,
    statement_digest,
)
from afflux_payouts.domain.periods import last_period_end
from afflux_payouts.domain.statements import (
    Close,
    Terms,
    decide_statement,
    line_key,
    refusal,
    statement_id_for,
)

END = datetime(2026, 11, 1, tzinfo=UTC)
START = datetime(2026, 10, 1, tzinfo=UTC)


def line(ref: str, amount: str, day: int = 10, month: int = 10, kind: LineKind = LineKind.COMMISSION
         ) -> StatementLine:
    return StatementLine(kind=kind, ref=ref, offer_id="o-1" if kind is LineKind.COMMISSION else None,
                         happened_at=datetime(2026, month, day, tzinfo=UTC), amount=Decimal(amount))


def close(minimum: str = "0", currency: str = "USD", start: datetime | None = START) -> Close:
    return Close(partner_id="p-1", currency=currency, period_end=END, period_start=start,
                 terms=Terms(currency="USD", minimum_payout=Decimal(minimum), frequency="monthly"),
                 closed_by="admin", log_position={"afflux.attribution.v1#0": 7},
                 issued_at=datetime(2026, 11, 2, tzinfo=UTC))


def test_a_total_at_or_above_the_minimum_is_payable() -> None:
    statement = decide_statement(close(minimum="50"), [line("c-1", "30.00"), line("c-2", "20.00")])
    assert statement is not None
    assert (statement.status, statement.total) == (StatementStatus.PAYABLE, Decimal("50.00"))
    assert [x.ref for x in statement.lines] == ["c-1", "c-2"]


def test_a_total_below_the_minimum_carries_over_and_the_next_close_pays_it_with_what_came_since() -> None:
    first = decide_statement(close(minimum="50"), [line("c-1", "30.00")])
    assert first is not None and first.status is StatementStatus.CARRIED_OVER
    assert first.total == Decimal("30.00") and first.carried_over == Decimal("0.00")

    # Nothing was claimed, so the next close lists c-1 again, with what happened since.
    later = Close(**{**close(minimum="50").__dict__, "period_start": END,
                     "period_end": datetime(2026, 12, 1, tzinfo=UTC)})
    second = decide_statement(later, [line("c-1", "30.00"), line("c-2", "25.00", month=11)])
    assert second is not None
    assert (second.status, second.total, second.carried_over) == \
        (StatementStatus.PAYABLE, Decimal("55.00"), Decimal("30.00"))


def test_a_negative_total_carries_over_as_a_deduction_whatever_the_minimum() -> None:
    clawed = decide_statement(close(minimum="0"), [line("c-1", "-9.60"), line("c-2", "4.00")])
    assert clawed is not None
    assert (clawed.status, clawed.total) == (StatementStatus.CARRIED_OVER, Decimal("-5.60"))


def test_the_minimum_applies_in_the_billing_currency_only() -> None:
    euros = decide_statement(close(minimum="50", currency="EUR"), [line("c-1", "3.00")])
    assert euros is not None and euros.status is StatementStatus.PAYABLE and euros.minimum_payout == 0


def test_lines_netting_to_nothing_are_left_out_and_no_lines_is_no_statement() -> None:
    assert decide_statement(close(), [line("c-1", "0")]) is None
    assert decide_statement(close(), []) is None


def test_adjustments_are_lines_beside_commissions() -> None:
    bonus = line("adj_1", "-2.50", kind=LineKind.ADJUSTMENT)
    statement = decide_statement(close(), [line("c-1", "10.00"), bonus])
    assert statement is not None and statement.total == Decimal("7.50")
    assert [x.kind for x in statement.lines] == [LineKind.ADJUSTMENT, LineKind.COMMISSION]


def test_the_digest_is_rederivable_from_the_lines_and_independent_of_their_order() -> None:
    lines = [line("c-2", "20.00"), line("c-1", "30.00")]
    statement = decide_statement(close(), lines)
    assert statement is not None
    rederived = statement_digest(statement.statement_id, "p-1", "USD", END, list(reversed(lines)))
    assert statement.digest == rederived
    changed = decide_statement(close(), [line("c-2", "20.01"), line("c-1", "30.00")])
    assert changed is not None and changed.digest != statement.digest


def test_a_statement_id_is_a_pure_function_of_partner_currency_and_period_end() -> None:
    assert statement_id_for("p-1", "USD", END) == statement_id_for("p-1", "USD", END.astimezone())
    assert len({statement_id_for("p-1", "USD", END), statement_id_for("p-1", "EUR", END),
                statement_id_for("p-2", "USD", END), statement_id_for("p-1", "USD", START)}) == 4


NOW = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(("frequency", "expected"), [
    (BillingFrequency.WEEKLY, datetime(2026, 11, 23, tzinfo=UTC)),
    (BillingFrequency.BIMONTHLY, datetime(2026, 11, 16, tzinfo=UTC)),
    (BillingFrequency.MONTHLY, datetime(2026, 11, 1, tzinfo=UTC)),
    (BillingFrequency.TWO_MONTHS, datetime(2026, 11, 1, tzinfo=UTC)),
    (BillingFrequency.QUARTERLY, datetime(2026, 10, 1, tzinfo=UTC)),
    (BillingFrequency.MANUAL, None),
])
def test_each_billing_frequency_ends_its_last_period_at_a_utc_midnight(
    frequency: BillingFrequency, expected: datetime | None
) -> None:
    assert last_period_end(frequency, NOW) == expected


def test_period_ends_at_the_turn_of_the_year_and_mid_month() -> None:
    new_year = datetime(2027, 1, 1, tzinfo=UTC)
    for frequency in (BillingFrequency.MONTHLY, BillingFrequency.TWO_MONTHS, BillingFrequency.QUARTERLY):
        assert last_period_end(frequency, new_year) == new_year
    assert last_period_end(BillingFrequency.TWO_MONTHS, datetime(2027, 2, 28, tzinfo=UTC)) == new_year
    assert last_period_end(BillingFrequency.BIMONTHLY, datetime(2026, 11, 15, 23, 59, tzinfo=UTC)) == \
        datetime(2026, 11, 1, tzinfo=UTC)
    assert last_period_end(BillingFrequency.WEEKLY, datetime(2026, 11, 23, tzinfo=UTC)) == \
        datetime(2026, 11, 23, tzinfo=UTC)
    biweekly = last_period_end(BillingFrequency.BIWEEKLY, NOW)
    assert biweekly is not None and biweekly.weekday() == 0 and (NOW - biweekly).days < 14


def _held(statement: StatementIssued) -> dict[tuple[LineKind, str], StatementLine]:
    """What the ledger holds when a statement is exactly what the close decided."""
    return {line_key(x): x for x in statement.lines}


def _redigested(statement: StatementIssued, **update: object) -> StatementIssued:
    changed = statement.model_copy(update=update)
    digest = statement_digest(changed.statement_id, changed.partner_id, changed.currency, changed.period_end,
                              changed.lines)
    return changed.model_copy(update={"digest": digest})


def test_a_statement_as_the_close_decided_it_is_provable() -> None:
    statement = decide_statement(close(minimum="50"), [line("c-1", "30.00"), line("c-2", "20.00")])
    assert statement is not None
    assert refusal(statement, _held(statement)) is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": StatementStatus.PAID}, "issued payable or carried over, not paid"),
    ({"status": StatementStatus.CARRIED_OVER}, "carried_over with a total of 50.00 and a minimum payout"),
    ({"total": Decimal("500.00")}, "its total 500.00 is not the sum of its lines (50.00)"),
    ({"lines": ()}, "it has no lines"),
    ({"issued_at": datetime(2026, 10, 2, tzinfo=UTC)}, "after it was issued"),
    ({"digest": "0" * 64}, "is not the one of its lines"),
])
def test_a_statement_that_contradicts_itself_is_refused(change: dict[str, object], reason: str) -> None:
    statement = decide_statement(close(minimum="50"), [line("c-1", "30.00"), line("c-2", "20.00")])
    assert statement is not None
    changed = statement.model_copy(update=change)
    found = refusal(changed, _held(statement))
    assert found is not None and reason in found


def test_a_line_stated_twice_or_not_held_is_refused_with_every_such_line_named() -> None:
    statement = decide_statement(close(), [line("c-1", "30.00"), line("c-2", "20.00")])
    assert statement is not None
    twice = _redigested(statement, lines=(*statement.lines, statement.lines[0]), total=Decimal("80.00"))
    assert "it states commission c-1 more than once" in (refusal(twice, _held(statement)) or "")

    held = {line_key(line("c-1", "30.00")): line("c-1", "25.00")}
    found = refusal(statement, held) or ""
    assert "commission c-1 (30.00 USD: it holds 25.00, offer o-1" in found
    assert "commission c-2 (20.00 USD: it holds nothing)" in found
