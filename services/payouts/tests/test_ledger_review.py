"""The review fold (``domain/ledger.py: review``), pure: what each ConversionStatusChanged
does to a commission, before and after it is settled, and to the partner's balance."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from payouts_fixtures import attributed, status_changed

from afflux_contracts import ConversionAttributed, ConversionStatus, Envelope, Money, StatusChange
from afflux_payouts.domain.balance import Balance, fold_balances
from afflux_payouts.domain.ledger import (
    Bucket,
    Correction,
    LedgerEntry,
    ReviewMismatch,
    commission_for,
    review,
)

Decision = Envelope[ConversionAttributed]


def commission(decision: Decision) -> LedgerEntry:
    return commission_for(decision.payload, decision.event_id)


class Ledger:
    """One conversion's commission and corrections, reviewed in turn as the store does."""

    def __init__(self, decision: Decision, settled_in: Bucket | None = None) -> None:
        entry = commission(decision)
        self.entry = replace(entry, bucket=settled_in) if settled_in else entry
        self.corrections: list[Correction] = []

    def review(self, status: StatusChange, amount: str | None = None, event_id: UUID | None = None,
               decision: Decision | None = None) -> None:
        assert decision is not None
        change = status_changed(decision, status, amount)
        reviewed = review(self.entry, self.corrections, change.payload, event_id or change.event_id)
        self.entry = reviewed.entry
        if reviewed.correction is not None:
            self.corrections.append(reviewed.correction)

    def balances(self) -> dict[str, Balance]:
        return fold_balances([self.entry], self.corrections)


def test_a_reversal_after_approval_voids_the_commission_and_the_balance_is_zero() -> None:
    sale = attributed("p-1", "9.60")
    ledger = Ledger(sale)

    ledger.review(StatusChange.REVERSED, decision=sale)

    assert ledger.entry.bucket is Bucket.VOID and ledger.corrections == []
    assert ledger.balances() == {"USD": Balance("USD")}
    assert fold_balances([ledger.entry, commission(attributed("p-1", "1.00"))]) == \
        {"USD": Balance("USD", accrued=Decimal("1.00"))}


def test_an_adjustment_replaces_the_amount_and_remembers_the_decision() -> None:
    sale = attributed("p-1", "12.00")
    ledger = Ledger(sale)

    ledger.review(StatusChange.ADJUSTED, "7.35", decision=sale)

    assert (ledger.entry.amount, ledger.entry.bucket) == (Decimal("7.35"), Bucket.ACCRUED)
    assert ledger.balances() == {"USD": Balance("USD", accrued=Decimal("7.35"))}
    # The same decision, re-published after the review, is still the same commission.
    assert ledger.entry.same_commission(commission(sale))
    assert not ledger.entry.same_commission(commission(attributed("p-1", "7.35",
                                                                  conversion_id=sale.payload.conversion_id)))


def test_a_pending_commission_accrues_when_approved() -> None:
    held = attributed("p-1", "3.00", status=ConversionStatus.PENDING)
    ledger = Ledger(held)
    assert ledger.balances() == {"USD": Balance("USD", pending=Decimal("3.00"))}

    ledger.review(StatusChange.APPROVED, decision=held)

    assert ledger.balances() == {"USD": Balance("USD", accrued=Decimal("3.00"))}


def test_a_rejected_commission_accrues_again_on_appeal() -> None:
    held = attributed("p-1", "3.00", status=ConversionStatus.PENDING)
    ledger = Ledger(held)
    ledger.review(StatusChange.REJECTED, decision=held)
    assert ledger.balances() == {"USD": Balance("USD")}

    ledger.review(StatusChange.APPROVED, decision=held)

    assert ledger.balances() == {"USD": Balance("USD", accrued=Decimal("3.00"))}


@pytest.mark.parametrize("settled", [Bucket.PAID, Bucket.PAYABLE])
def test_a_reversal_after_settlement_claws_back_a_negative_accrued_amount(settled: Bucket) -> None:
    sale = attributed("p-1", "9.60")
    ledger = Ledger(sale, settled_in=settled)

    ledger.review(StatusChange.REVERSED, decision=sale)

    assert ledger.entry.bucket is settled and ledger.entry.amount == Decimal("9.60")
    [claw_back] = ledger.corrections
    assert (claw_back.amount, claw_back.bucket) == (Decimal("-9.60"), Bucket.ACCRUED)
    assert claw_back.happened_at == sale.payload.converted_at + timedelta(days=3)
    assert ledger.balances() == {"USD": Balance("USD", accrued=Decimal("-9.60"),
                                                **{settled.value: Decimal("9.60")})}


def test_an_adjustment_after_payment_then_a_reversal_nets_to_zero() -> None:
    sale = attributed("p-1", "10.00")
    ledger = Ledger(sale, settled_in=Bucket.PAID)

    ledger.review(StatusChange.ADJUSTED, "12.50", decision=sale)
    assert [c.amount for c in ledger.corrections] == [Decimal("2.50")]
    ledger.review(StatusChange.REVERSED, decision=sale)

    assert [c.amount for c in ledger.corrections] == [Decimal("2.50"), Decimal("-12.50")]
    balance = ledger.balances()["USD"]
    assert (balance.paid, balance.accrued) == (Decimal("10.00"), Decimal("-10.00"))


def test_the_same_review_applied_again_under_a_new_event_id_changes_nothing_more() -> None:
    sale = attributed("p-1", "10.00")
    paid, accrued = Ledger(sale, settled_in=Bucket.PAID), Ledger(sale)
    for ledger in (paid, accrued):
        for _ in range(2):
            ledger.review(StatusChange.ADJUSTED, "4.00", event_id=uuid4(), decision=sale)
    assert paid.balances()["USD"] == Balance("USD", paid=Decimal("10.00"), accrued=Decimal("-6.00"))
    assert len(paid.corrections) == 1
    assert accrued.balances()["USD"] == Balance("USD", accrued=Decimal("4.00"))


def test_a_review_naming_another_partner_or_currency_is_refused() -> None:
    sale = attributed("p-1", "10.00")
    entry = commission(sale)
    other_currency = status_changed(sale, StatusChange.REVERSED).payload.model_copy(
        update={"payout": Money(amount=Decimal("10.00"), currency="EUR")})
    other_partner = status_changed(sale, StatusChange.REVERSED).payload.model_copy(
        update={"partner_id": "p-2"})
    for change in (other_currency, other_partner):
        with pytest.raises(ReviewMismatch, match=sale.payload.conversion_id):
            review(entry, [], change, uuid4())
