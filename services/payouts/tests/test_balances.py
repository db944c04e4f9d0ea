"""Balances as the pure fold of ledger entries, and money's JSON form."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from afflux_payouts.domain.balance import (
    Balance,
    balances_from_totals,
    fold_balances,
    format_money,
    formatted_balances,
)
from afflux_payouts.domain.ledger import Bucket, LedgerEntry


def entry(amount: str, currency: str = "USD", bucket: Bucket = Bucket.ACCRUED) -> LedgerEntry:
    return LedgerEntry(
        conversion_id=f"conv-{uuid4()}", partner_id="partner-1", offer_id="offer-1",
        amount=Decimal(amount), currency=currency, bucket=bucket,
        converted_at=datetime(2026, 3, 1, tzinfo=UTC), event_id=uuid4(),
    )


def test_entries_fold_into_one_balance_per_currency() -> None:
    balances = fold_balances([entry("9.60"), entry("5.00", "EUR"), entry("0.40")])
    assert balances == {
        "EUR": Balance("EUR", accrued=Decimal("5.00")),
        "USD": Balance("USD", accrued=Decimal("10.00")),
    }
    assert formatted_balances(balances) == {
        "EUR": {"accrued": "5.00", "pending": "0.00", "payable": "0.00", "paid": "0.00"},
        "USD": {"accrued": "10.00", "pending": "0.00", "payable": "0.00", "paid": "0.00"},
    }


def test_each_entry_counts_in_its_own_bucket_only() -> None:
    balance = fold_balances([
        entry("1.00"), entry("2.00", bucket=Bucket.PENDING), entry("4.00", bucket=Bucket.PAYABLE),
        entry("8.00", bucket=Bucket.PAID), entry("0.50", bucket=Bucket.PENDING),
    ])["USD"]
    assert balance.formatted() == {"accrued": "1.00", "pending": "2.50", "payable": "4.00", "paid": "8.00"}


def test_no_entries_is_no_balances() -> None:
    assert fold_balances([]) == {}


def test_summing_many_cents_is_exact() -> None:
    assert fold_balances([entry("0.10")] * 1000)["USD"].formatted()["accrued"] == "100.00"


def test_totals_summed_by_the_database_fold_like_the_entries() -> None:
    entries = [entry("9.60"), entry("3", "JPY", Bucket.PENDING), entry("0.40"), entry("7", "JPY")]
    totals = [("JPY", Bucket.PENDING, Decimal(3)), ("JPY", Bucket.ACCRUED, Decimal(7)),
              ("USD", Bucket.ACCRUED, Decimal("10.00"))]
    assert balances_from_totals(totals) == fold_balances(entries)


def test_money_is_shown_in_the_currencys_minor_units() -> None:
    assert format_money(Decimal("9.6"), "USD") == "9.60"
    assert format_money(Decimal(0), "USD") == "0.00"
    assert format_money(Decimal("1200"), "JPY") == "1200"
    assert format_money(Decimal(0), "JPY") == "0"
    assert format_money(Decimal(0), "KWD") == "0.000"
    assert format_money(Decimal("1E+3"), "EUR") == "1000.00"


def test_balance_with_nothing_in_a_bucket_shows_zero_in_minor_units() -> None:
    assert Balance("JPY", accrued=Decimal(1200)).formatted() == {
        "accrued": "1200", "pending": "0", "payable": "0", "paid": "0",
    }
