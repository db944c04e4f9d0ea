"""Converting a statement to the currency its partner is paid in, at recorded rates.

Rates are facts on the log (``FxRateSet``), each for one day; payouts never guesses one.
The rate *in force* on a day is the last one recorded for that day. A day without one
takes the closest day before it, at most ``LOOKBACK_DAYS`` back, only once a later day
has a rate: then the day had none published (the ECB publishes nothing on weekends and
TARGET holidays); until then its own rate may simply not be entered yet, and waiting
for it is right. A pair recorded the other way round (``USD/EUR`` when ``EUR/USD`` is
asked) serves by division. No rate in force → ``MissingRate``, whose
reason (``missing_rate EUR/USD 2026-12-01``) is what the statement is held with.

Each line is converted once and rounded once, to the paid currency's minor unit with the
one rounding rule for money (``round_money``); the total is the sum of the rounded lines,
so the total never differs from what the lines add up to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from afflux_contracts import (
    BillingConversion,
    ConvertedLine,
    StatementConverted,
    StatementIssued,
    StatementStatus,
    round_money,
)

LOOKBACK_DAYS = 7
"""How far before a day a rate still serves it (a long weekend with a holiday fits)."""


@dataclass(frozen=True)
class Rate:
    """One ``base`` is worth ``rate`` of ``quote`` on ``day``."""

    base: str
    quote: str
    day: date
    rate: Decimal

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"


class MissingRate(LookupError):
    """No rate in force for a pair on a day: the conversion waits for one."""

    def __init__(self, base: str, quote: str, day: date) -> None:
        self.reason = f"missing_rate {base}/{quote} {day.isoformat()}"
        super().__init__(self.reason)
        self.base, self.quote, self.day = base, quote, day


@dataclass
class RateBook:
    """The rates recorded so far: the last one set for each pair and day."""

    rates: dict[tuple[str, str], dict[date, Decimal]] = field(default_factory=dict)

    @classmethod
    def of(cls, rates: Iterable[Rate]) -> RateBook:
        """The book of ``rates`` in the order they were recorded (a later one of a day wins)."""
        book = cls()
        for rate in rates:
            book.rates.setdefault((rate.base, rate.quote), {})[rate.day] = rate.rate
        return book

    def in_force(self, base: str, quote: str, day: date) -> Rate:
        """The rate converting ``base`` to ``quote`` on ``day`` (``MissingRate`` if none):
        the pair's own, else the inverse pair's; of that day, or (a later day having a
        rate) of the closest day at most ``LOOKBACK_DAYS`` before."""
        pairs = [pair for pair in ((base, quote), (quote, base)) if pair in self.rates]
        passed = any(recorded > day for pair in pairs for recorded in self.rates[pair])
        for back in range(LOOKBACK_DAYS + 1 if passed else 1):
            wanted = day - timedelta(days=back)
            for pair in pairs:
                found = self.rates[pair].get(wanted)
                if found is not None:
                    return Rate(pair[0], pair[1], wanted, found)
        raise MissingRate(base, quote, day)


def convert_amount(amount: Decimal, to: str, rate: Rate) -> Decimal:
    """``amount`` in ``to`` at ``rate`` (multiplied, or divided for the inverse pair), rounded
    once to ``to``'s minor unit."""
    exact = amount * rate.rate if rate.quote == to else amount / rate.rate
    return round_money(exact, to)


def rate_day(conversion: BillingConversion, happened_at: datetime, period_end: datetime) -> date:
    """The day whose rate converts a line: the day it was earned, or the period's end (UTC)."""
    moment = happened_at if conversion is BillingConversion.EARNED_DAY else period_end
    return moment.astimezone(UTC).date()


def needs_conversion(issued: StatementIssued, paid_in: str | None, conversion: BillingConversion) -> bool:
    """A payable statement of a partner paid in another currency than the statement's."""
    return (conversion is not BillingConversion.NONE and paid_in is not None
            and paid_in != issued.currency and issued.status is StatementStatus.PAYABLE)


def convert_statement(issued: StatementIssued, paid_in: str, conversion: BillingConversion,
                      book: RateBook, converted_at: datetime) -> StatementConverted:
    """``issued`` converted to ``paid_in`` line by line (``MissingRate``: the earliest day
    a rate is missing for)."""
    lines, missing = [], []
    for line in issued.lines:
        day = rate_day(conversion, line.happened_at, issued.period_end)
        try:
            rate = book.in_force(issued.currency, paid_in, day)
        except MissingRate as error:
            missing.append(error)
            continue
        original = round_money(line.amount, issued.currency)
        lines.append(ConvertedLine(kind=line.kind, ref=line.ref, original=original,
                                   amount=convert_amount(original, paid_in, rate), pair=rate.pair,
                                   rate=rate.rate, rate_day=rate.day))
    if missing:
        raise min(missing, key=lambda error: error.day)
    total = round_money(sum((line.amount for line in lines), Decimal(0)), paid_in)
    return StatementConverted(statement_id=issued.statement_id, partner_id=issued.partner_id,
                              currency=issued.currency, paid_currency=paid_in, total=total,
                              lines=tuple(lines), converted_at=converted_at)


def reconversion_error(converted: StatementConverted, originals: Mapping[tuple[str, str], Decimal],
                       recorded: Mapping[tuple[str, date], set[Decimal]]) -> str | None:
    """What is wrong with a recorded conversion, judged from the log (None: nothing):
    its lines must be the statement's (``originals``: (kind, ref) -> amount), each at a
    rate recorded for its pair and day (``recorded``), converted and rounded by the rule,
    and its total their sum."""
    mine = {(line.kind.value, line.ref): line for line in converted.lines}
    if set(mine) != set(originals):
        return "its lines are not the statement's"
    for key, line in sorted(mine.items()):
        if round_money(originals[key], converted.currency) != line.original:
            return f"{key[0]} {key[1]}: original {line.original} is not the statement's {originals[key]}"
        if line.rate not in recorded.get((line.pair, line.rate_day), set()):
            return f"{key[0]} {key[1]}: no rate {line.pair} {line.rate} was recorded for {line.rate_day}"
        base, quote = line.pair.split("/")
        rate = Rate(base, quote, line.rate_day, line.rate)
        expected = convert_amount(line.original, converted.paid_currency, rate)
        if expected != line.amount:
            return f"{key[0]} {key[1]}: {line.amount} {converted.paid_currency} is not {expected}"
    total = round_money(sum((line.amount for line in converted.lines), Decimal(0)), converted.paid_currency)
    if total != round_money(converted.total, converted.paid_currency):
        return f"its total {converted.total} is not the sum of its lines ({total})"
    return None
