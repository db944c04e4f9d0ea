"""Converting a statement to the currency its partner is paid in (issue 23, item 1): the
rate in force on a line's day, rounding once per line to the paid currency's minor unit,
totals as sums of rounded lines, a missing rate named, never guessed; and the ECB's
reference rates files read as finance uploads them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from afflux_contracts import (
    BillingConversion,
    LineKind,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatementStatus,
)
from afflux_payouts.adapters.ecb_rates import UnreadableRates, read_ecb_rates
from afflux_payouts.domain.fx import (
    MissingRate,
    Rate,
    RateBook,
    convert_amount,
    convert_statement,
    needs_conversion,
    reconversion_error,
)
from afflux_payouts.domain.ledger_fold import Source
from afflux_payouts.domain.records import Statement
from afflux_payouts.domain.statement_fold import Books, Converted, Paid, Standing, fold
from afflux_payouts.domain.statement_fold import NotPayable as FoldRefused

DEC_1 = date(2026, 12, 1)
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def line(ref: str, amount: str, day: int) -> StatementLine:
    return StatementLine(kind=LineKind.COMMISSION, ref=ref, offer_id="o1",
                         happened_at=datetime(2026, 12, day, 15, tzinfo=UTC), amount=Decimal(amount))


def statement(*lines: StatementLine, status: StatementStatus = StatementStatus.PAYABLE) -> StatementIssued:
    total = sum((found.amount for found in lines), Decimal(0))
    return StatementIssued(statement_id="st_" + "1" * 24, partner_id="p1", currency="EUR",
                           period_end=datetime(2026, 12, 4, 23, 59, tzinfo=UTC), status=status, lines=lines,
                           total=total, digest="0" * 64, issued_at=NOW)


BOOK = RateBook.of([Rate("EUR", "USD", DEC_1, Decimal("1.0842")),
                    Rate("EUR", "USD", date(2026, 12, 2), Decimal("1.0850")),
                    Rate("EUR", "USD", date(2026, 12, 4), Decimal("1.1000"))])


def test_each_line_converts_at_the_rate_of_the_day_it_was_earned_and_rounds_once() -> None:
    converted = convert_statement(statement(line("c1", "10.00", 1), line("c2", "10.00", 2)), "USD",
                                  BillingConversion.EARNED_DAY, BOOK, NOW)
    assert [(x.amount, x.rate, x.rate_day) for x in converted.lines] == [
        (Decimal("10.84"), Decimal("1.0842"), DEC_1),
        (Decimal("10.85"), Decimal("1.0850"), date(2026, 12, 2))]
    assert converted.total == Decimal("21.69") and converted.paid_currency == "USD"
    assert [x.original for x in converted.lines] == [Decimal("10.00"), Decimal("10.00")]


def test_the_total_is_the_sum_of_the_rounded_lines_not_the_rounded_sum() -> None:
    # 3 x 0.05 EUR at 1.0842 = 0.05421 each -> 0.05 each, 0.15; the unrounded sum 0.16263 would give 0.16
    lines = [line(f"c{i}", "0.05", 1) for i in range(3)]
    converted = convert_statement(statement(*lines), "USD", BillingConversion.EARNED_DAY, BOOK, NOW)
    assert converted.total == Decimal("0.15")


def test_at_close_every_line_takes_the_rate_of_the_period_end() -> None:
    converted = convert_statement(statement(line("c1", "10.00", 1)), "USD", BillingConversion.PERIOD_END,
                                  BOOK, NOW)
    assert (converted.lines[0].rate_day, converted.total) == (date(2026, 12, 4), Decimal("11.00"))


def test_a_day_without_a_rate_takes_the_last_before_it_once_a_later_day_has_one() -> None:
    monday = Rate("EUR", "USD", date(2026, 12, 7), Decimal("1.1"))
    book = RateBook.of([*(Rate("EUR", "USD", day, rate) for days in BOOK.rates.values()
                          for day, rate in days.items()), monday])
    assert book.in_force("EUR", "USD", date(2026, 12, 6)).day == date(2026, 12, 4)  # the weekend
    assert BOOK.in_force("EUR", "USD", date(2026, 12, 3)).day == date(2026, 12, 2)  # a holiday


def test_the_latest_day_without_its_rate_waits_for_it_and_a_gap_beyond_a_week_is_missing() -> None:
    with pytest.raises(MissingRate, match="missing_rate EUR/USD 2026-12-05"):
        BOOK.in_force("EUR", "USD", date(2026, 12, 5))  # not entered yet: never yesterday's
    with pytest.raises(MissingRate) as missing:
        BOOK.in_force("EUR", "USD", date(2026, 11, 30))
    assert missing.value.reason == "missing_rate EUR/USD 2026-11-30"


def test_a_pair_recorded_the_other_way_round_divides() -> None:
    rate = BOOK.in_force("USD", "EUR", DEC_1)
    assert rate.pair == "EUR/USD"
    assert convert_amount(Decimal("108.42"), "EUR", rate) == Decimal("100.00")


def test_rounding_is_the_one_rule_for_money_to_the_minor_unit_of_the_paid_currency() -> None:
    yen = Rate("EUR", "JPY", DEC_1, Decimal("163.25"))
    assert convert_amount(Decimal("10.00"), "JPY", yen) == Decimal("1633")  # 1632.5, half up: no minor unit
    dollar = Rate("EUR", "USD", DEC_1, Decimal("1.01"))
    assert convert_amount(Decimal("0.50"), "USD", dollar) == Decimal("0.51")  # 0.505, half up


def test_a_missing_rate_names_the_pair_and_day_and_converts_nothing() -> None:
    with pytest.raises(MissingRate, match="missing_rate EUR/GBP 2026-12-01"):
        convert_statement(statement(line("c1", "10.00", 1)), "GBP", BillingConversion.EARNED_DAY, BOOK, NOW)


def test_with_several_rates_missing_the_hold_names_the_earliest_day() -> None:
    lines = (line("a-later", "1.00", 3), line("b-earlier", "1.00", 1))
    with pytest.raises(MissingRate, match="missing_rate EUR/GBP 2026-12-01"):
        convert_statement(statement(*lines), "GBP", BillingConversion.EARNED_DAY, BOOK, NOW)


def test_a_later_rate_for_the_same_day_is_the_one_in_force() -> None:
    book = RateBook.of([Rate("EUR", "USD", DEC_1, Decimal("1.08")),
                        Rate("EUR", "USD", DEC_1, Decimal("1.09"))])
    assert book.in_force("EUR", "USD", DEC_1).rate == Decimal("1.09")


def test_only_payable_statements_in_another_currency_of_converting_partners_are_converted() -> None:
    payable = statement(line("c1", "10.00", 1))
    assert needs_conversion(payable, "USD", BillingConversion.EARNED_DAY)
    assert not needs_conversion(payable, "USD", BillingConversion.NONE)
    assert not needs_conversion(payable, "EUR", BillingConversion.EARNED_DAY)
    assert not needs_conversion(statement(line("c1", "10.00", 1), status=StatementStatus.CARRIED_OVER), "USD",
                                BillingConversion.EARNED_DAY)


def test_a_recorded_conversion_is_re_derived_from_its_lines_and_the_rates_on_the_log() -> None:
    converted = convert_statement(statement(line("c1", "10.00", 1)), "USD", BillingConversion.EARNED_DAY,
                                  BOOK, NOW)
    originals = {("commission", "c1"): Decimal("10.00")}
    recorded = {("EUR/USD", DEC_1): {Decimal("1.0842")}}
    assert reconversion_error(converted, originals, recorded) is None
    assert "no rate EUR/USD" in (reconversion_error(converted, originals, {}) or "")
    forged = converted.model_copy(update={"total": Decimal("11.00")})
    assert "is not the sum" in (reconversion_error(forged, originals, recorded) or "")


DAILY_CSV = b"Date, USD, JPY, BGN, \n04 December 2026, 1.0842, 163.25, 1.9558, \n"
HIST_CSV = b"Date,USD,JPY,CYP,\n2026-12-04,1.0842,163.25,N/A,\n2026-12-03,1.0831,162.90,N/A,\n"
DAILY_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
  xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube><Cube time='2026-12-04'><Cube currency='USD' rate='1.0842'/><Cube currency='JPY' rate='163.25'/>
  </Cube></Cube>
</gesmes:Envelope>"""


def test_the_ecb_daily_csv_gives_each_currency_against_the_euro_on_its_day() -> None:
    rates = read_ecb_rates(DAILY_CSV)
    assert Rate("EUR", "USD", date(2026, 12, 4), Decimal("1.0842")) in rates and len(rates) == 3


def test_the_ecb_history_csv_skips_the_currencies_without_a_rate() -> None:
    rates = read_ecb_rates(HIST_CSV)
    assert len(rates) == 4 and all(rate.quote != "CYP" for rate in rates)


def test_the_ecb_xml_gives_the_same_rates() -> None:
    assert set(read_ecb_rates(DAILY_XML)) == {Rate("EUR", "USD", date(2026, 12, 4), Decimal("1.0842")),
                                             Rate("EUR", "JPY", date(2026, 12, 4), Decimal("163.25"))}


@pytest.mark.parametrize("content", [b"", b"name,amount\nx,1\n", b"Date,USD\n2026-13-40,1.0\n",
                                     b"Date,USD\n2026-12-04,-1\n", b"<Envelope><Cube time='x'/></Envelope>",
                                     b"<not xml"])
def test_a_file_that_is_not_an_ecb_rates_file_is_refused_with_where(content: bytes) -> None:
    with pytest.raises(UnreadableRates):
        read_ecb_rates(content)


def test_a_converted_statement_pays_its_converted_total_in_the_paid_currency_and_never_reconverts() -> None:
    issued = statement(line("c1", "10.00", 1))
    aggregate = Statement.issue(issued)
    aggregate.hold("missing_rate EUR/USD 2026-12-01")
    aggregate.hold("missing_rate EUR/USD 2026-12-01")  # the same reason again: nothing
    converted = convert_statement(issued, "USD", BillingConversion.EARNED_DAY, BOOK, NOW)
    aggregate.convert(converted)
    aggregate.convert(converted.model_copy(update={"total": Decimal("99.00")}))  # never changes
    aggregate.release()
    aggregate.pay("wire-1")
    events = aggregate.collect_events()
    assert [type(e).__name__ for e in events] == ["Issued", "Held", "Converted", "Released", "Paid"]
    assert (events[-1].currency, events[-1].amount) == ("USD", "10.84")  # type: ignore[attr-defined]


def test_the_fold_refuses_a_payment_of_a_converted_statement_in_its_own_currency() -> None:
    source = Source(event_id=uuid4(), known_on=NOW, log_offset=1, recorded_from="afflux.payouts.v1#0@1")
    books = Books(standings={"st-1": Standing("st-1", "p1", "EUR", "payable", Decimal("10.00"), "d" * 64)})
    converted = convert_statement(statement(line("c1", "10.00", 1)), "USD", BillingConversion.EARNED_DAY,
                                  BOOK, NOW).model_copy(update={"statement_id": "st-1"})
    fold(books, [Converted(converted, source)])
    assert books.standings["st-1"].payment == ("USD", Decimal("10.84"))
    in_euros = StatementPaid(statement_id="st-1", partner_id="p1", currency="EUR", amount=Decimal("10.00"),
                             paid_at=NOW)
    with pytest.raises(FoldRefused):
        fold(books, [Paid(in_euros, source)])
    paid = fold(books, [Paid(in_euros.model_copy(update={"currency": "USD", "amount": Decimal("10.84")}),
                             source)])
    assert len(paid.payments) == 1
