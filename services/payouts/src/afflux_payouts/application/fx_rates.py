"""Recording exchange rates, and totalling money in one chosen currency at them.

A rate is recorded in payouts' event store (``ExchangeRate``) and published by the relay
as ``FxRateSet``; it is in force only once the fold has it (``fx_rates``), like every
other fact. Recording a rate already in force for its day, at the same value, records
nothing, so uploading the same ECB file twice is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from afflux_contracts import round_money, utc_now
from afflux_payouts.application.payouts import Payouts
from afflux_payouts.application.statements import InvalidField
from afflux_payouts.domain.fx import Rate, RateBook, convert_amount
from afflux_payouts.domain.records import ExchangeRate

MAX_RATE = Decimal(10) ** 9
SAVE_CHUNK = 500


class InvalidRate(InvalidField):
    """A rate between a currency and itself, not positive, or for a day to come."""


@dataclass(frozen=True)
class Recorded:
    """Rates recorded now, and whether the fold has them in force yet."""

    recorded: list[Rate]
    unchanged: int
    in_force: bool


@dataclass(frozen=True)
class Total:
    """Amounts per currency totalled in ``currency``: each converted at the rate in force on
    ``day`` and rounded once, the total their sum."""

    currency: str
    day: date
    amounts: dict[str, Decimal]
    rates: dict[str, Rate]

    @property
    def total(self) -> Decimal:
        return round_money(sum(self.amounts.values(), Decimal(0)), self.currency)


class FxRates:
    def __init__(self, store: Payouts, *, clock: Callable[[], datetime] = utc_now,
                 fold_timeout: float = 10.0) -> None:
        self.store = store
        self.clock = clock
        self.fold_timeout = fold_timeout

    def record(self, rates: Sequence[Rate], source: str) -> Recorded:
        """Record each rate not in force at that value yet; wait (a while) until the fold
        has them in force, so a close right after converts with them."""
        for rate in rates:
            check_rate(rate, self.clock().date())
        book = self.store.desk.rates()
        new = [rate for rate in dict.fromkeys(rates) if _value(book, rate) != rate.rate]
        for start in range(0, len(new), SAVE_CHUNK):
            self.store.save(*(ExchangeRate.record(rate.base, rate.quote, rate.day.isoformat(),
                                                  format(rate.rate, "f"), source)
                              for rate in new[start:start + SAVE_CHUNK]))
        return Recorded(new, len(rates) - len(new), self._wait_in_force(new))

    def _wait_in_force(self, rates: Sequence[Rate]) -> bool:
        deadline = time.monotonic() + self.fold_timeout
        while rates:
            book = self.store.desk.rates()
            if all(_value(book, rate) == rate.rate for rate in rates):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def total(self, amounts: Mapping[str, Decimal], currency: str, day: date) -> Total:
        """``amounts`` (per currency) in ``currency`` at the rates in force on ``day``
        (``MissingRate`` naming the first pair and day without one)."""
        book = self.store.desk.rates()
        rates = {code: book.in_force(code, currency, day) for code in sorted(amounts) if code != currency}
        converted = {code: convert_amount(amount, currency, rates[code]) if code in rates
                     else round_money(amount, currency) for code, amount in amounts.items()}
        return Total(currency, day, converted, rates)


def _value(book: RateBook, rate: Rate) -> Decimal | None:
    return book.rates.get((rate.base, rate.quote), {}).get(rate.day)


def check_rate(rate: Rate, today: date) -> None:
    """A rate is between two currencies, positive, and for a day that has begun."""
    if rate.base == rate.quote:
        raise InvalidRate("quote", f"a rate converts between two currencies, not {rate.base} to itself")
    if not rate.rate.is_finite() or not 0 < rate.rate < MAX_RATE:
        raise InvalidRate("rate", f"the rate {rate.base}/{rate.quote} {rate.rate} is not a positive number "
                                  f"under {MAX_RATE:,}")
    if rate.rate.as_tuple().exponent < -12:  # type: ignore[operator]
        raise InvalidRate("rate", f"the rate {rate.rate} has more than 12 decimal places")
    if rate.day > today:
        raise InvalidRate("date", f"{rate.day.isoformat()} ({rate.base}/{rate.quote}) has not begun yet")
