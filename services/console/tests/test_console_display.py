"""How the console writes days, instants and money on its pages (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from afflux_console.entrypoints.display import day, money


def test_a_day_is_written_the_same_from_a_date_an_instant_or_an_api_string() -> None:
    expected = '<time datetime="2026-11-08">Nov 8, 2026</time>'
    assert str(day(date(2026, 11, 8))) == expected
    assert str(day(datetime(2026, 11, 8, 23, 30, tzinfo=UTC))) == expected
    assert str(day("2026-11-08T23:30:00Z")) == expected
    assert str(day(None)) == str(day("not a day")) == '<span class="none">—</span>'


def test_money_keeps_every_digit_the_ledger_has_grouped_for_reading() -> None:
    assert money("1234.50", "USD") == "1,234.50 USD"
    assert money({"amount": "0.005", "currency": "EUR"}) == "0.005 EUR"
    assert money(None) == "—"
