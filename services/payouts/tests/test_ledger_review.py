"""The review fold (``domain/ledger.py: review``), pure: what each ConversionStatusChanged
does to a commission and to the partner's balance, before and after a statement claimed
it (``domain/balance.py: balance_from_sums``)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from payouts_fixtures import attributed, status_changed

from afflux_contracts import ConversionAttributed, ConversionStatus, Envelope, Money, StatusChange
from afflux_payouts.domain.balance import Balance, Sums, balance_from_sums, fold_balances
from afflux_payouts.domain.ledger import (
    Bucket,
    LedgerEntry,
    ReviewMismatch,
    commission_for,
    review,
)

Decision = Envelope[ConversionAttributed]


def commission(decision: Decision) -> LedgerEntry:
    return commission_for(decision.payload, decision.event_id)


class Ledger:
    """One conversion's commission, reviewed in turn as the store does, and what statements
    claimed of it (``claimed``: on a payable or paid statement; ``paid``: of which paid)."""

    def __init__(self, decision: Decision, claimed: str = "0", paid: str = "0") -> None:
        self.entry = commission(decision)
        self.claimed, self.paid = Decimal(claimed), Decimal(paid)

    def review(self, status: StatusChange, amount: str | None = None, event_id: UUID | None = None,
               decision: Decision | None = None) -> None:
        assert decision is not None
        change = status_changed(decision, status, amount)
        self.entry = review(self.entry, change.payload, event_id or change.event_id)

    def balances(self) -> dict[str, Balance]:
        if self.claimed == 0:
            return fold_balances([self.entry])
        entry = self.entry
        earned = entry.amount if entry.bucket is Bucket.ACCRUED else Decimal(0)
        pending = entry.amount if entry.bucket is Bucket.PENDING else Decimal(0)
        sums = Sums(entry.currency, pending, earned, self.claimed, self.paid)
        return {entry.currency: balance_from_sums(sums)}


def test_a_reversal_after_approval_voids_the_commission_and_the_balance_is_zero() -> None:
    sale = attributed("p-1", "9.60")
    ledger = Ledger(sale)

    ledger.review(StatusChange.REVERSED, decision=sale)

    assert ledger.entry.bucket is Bucket.VOID
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


@pytest.mark.parametrize("paid", ["0", "9.60"])
def test_a_reversal_after_a_statement_claws_back_a_negative_accrued_amount(paid: str) -> None:
    sale = attributed("p-1", "9.60")
    ledger = Ledger(sale, claimed="9.60", paid=paid)

    ledger.review(StatusChange.REVERSED, decision=sale)

    assert ledger.entry.bucket is Bucket.VOID
    settled = {"paid": Decimal(paid), "payable": Decimal("9.60") - Decimal(paid)}
    assert ledger.balances() == {"USD": Balance("USD", accrued=Decimal("-9.60"), **settled)}


def test_an_adjustment_after_payment_then_a_reversal_nets_to_zero() -> None:
    sale = attributed("p-1", "10.00")
    ledger = Ledger(sale, claimed="10.00", paid="10.00")

    ledger.review(StatusChange.ADJUSTED, "12.50", decision=sale)
    assert ledger.balances()["USD"].accrued == Decimal("2.50")
    ledger.review(StatusChange.REVERSED, decision=sale)

    balance = ledger.balances()["USD"]
    assert (balance.paid, balance.accrued) == (Decimal("10.00"), Decimal("-10.00"))


def test_the_same_review_applied_again_under_a_new_event_id_changes_nothing_more() -> None:
    sale = attributed("p-1", "10.00")
    paid, accrued = Ledger(sale, claimed="10.00", paid="10.00"), Ledger(sale)
    for ledger in (paid, accrued):
        for _ in range(2):
            ledger.review(StatusChange.ADJUSTED, "4.00", event_id=uuid4(), decision=sale)
    assert paid.balances()["USD"] == Balance("USD", paid=Decimal("10.00"), accrued=Decimal("-6.00"))
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
            review(entry, change, uuid4())
