"""The rule that turns attribution decisions into ledger entries (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from afflux_contracts import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    Money,
    RejectionReason,
)
from afflux_payouts.domain.ledger import (
    Bucket,
    NotCommissionable,
    commission_for,
    rejection_for,
)

CONVERTED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def decision(
    amount: str = "9.60", currency: str = "USD", status: ConversionStatus = ConversionStatus.APPROVED
) -> ConversionAttributed:
    return ConversionAttributed(
        conversion_id="conv-1", transaction_id="tx-1", partner_id="partner-1", offer_id="offer-1",
        event="sale", payout=Money(amount=Decimal(amount), currency=currency), status=status,
        clicked_at=CONVERTED_AT, converted_at=CONVERTED_AT,
    )


def test_approved_conversion_accrues_its_attributed_payout() -> None:
    event_id = uuid4()
    entry = commission_for(decision("9.60"), event_id)
    assert (entry.conversion_id, entry.partner_id, entry.offer_id) == ("conv-1", "partner-1", "offer-1")
    assert (entry.amount, entry.currency, entry.bucket) == (Decimal("9.60"), "USD", Bucket.ACCRUED)
    assert (entry.converted_at, entry.event_id) == (CONVERTED_AT, event_id)


def test_attributed_status_accrues_like_approved() -> None:
    assert commission_for(decision(status=ConversionStatus.ATTRIBUTED), uuid4()).bucket is Bucket.ACCRUED


def test_pending_conversion_goes_to_the_pending_bucket() -> None:
    assert commission_for(decision(status=ConversionStatus.PENDING), uuid4()).bucket is Bucket.PENDING


@pytest.mark.parametrize("status", [ConversionStatus.REJECTED, ConversionStatus.REVERSED])
def test_attribution_with_a_status_that_earns_nothing_is_not_a_commission(status: ConversionStatus) -> None:
    with pytest.raises(NotCommissionable, match=f"status '{status.value}'"):
        commission_for(decision(status=status), uuid4())


def test_negative_payout_is_not_a_commission() -> None:
    with pytest.raises(NotCommissionable, match=r"negative payout -1\.00 USD"):
        commission_for(decision("-1.00"), uuid4())


@pytest.mark.parametrize(
    ("amount", "currency", "held"),
    [("0.125", "USD", "0.13"), ("0.124", "USD", "0.12"), ("100.5", "JPY", "101"), ("1.0005", "KWD", "1.001")],
)
def test_commission_is_held_in_the_currencys_minor_units_rounding_half_up(
    amount: str, currency: str, held: str
) -> None:
    entry = commission_for(decision(amount, currency), uuid4())
    assert str(entry.amount) == held


def test_redecision_with_same_terms_is_the_same_commission_but_other_terms_are_not() -> None:
    first = commission_for(decision("9.60"), uuid4())
    assert first.same_commission(commission_for(decision("9.6"), uuid4()))
    assert not first.same_commission(commission_for(decision("9.61"), uuid4()))
    assert not first.same_commission(commission_for(decision(status=ConversionStatus.PENDING), uuid4()))


def test_rejection_keeps_its_reason_and_carries_no_money() -> None:
    rejection = rejection_for(
        ConversionRejected(conversion_id="conv-2", reason=RejectionReason.OUTSIDE_WINDOW,
                           message="clicked 45 days ago", partner_id="partner-1", converted_at=CONVERTED_AT),
        uuid4(),
    )
    assert (rejection.conversion_id, rejection.reason, rejection.offer_id) == (
        "conv-2", "outside_attribution_window", None)
    assert not hasattr(rejection, "amount")
