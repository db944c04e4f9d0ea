"""Report rules: what a report asks for (a window of days in a time zone, a grouping)
and the figures derived from the counters (CVR, EPC, profit). Pure: no I/O.

CVR is conversions per click in percent; EPC is payout per click (earnings per
click), both over *all* valid clicks, as Everflow shows them. Money stays Decimal:
payout and revenue are rounded to the currency's minor unit, EPC to four places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from afflux_contracts import round_money

MAX_DAYS = 400
"""The longest window one report may cover (a year and a bit)."""


class GroupBy(StrEnum):
    DAY = "day"
    OFFER = "offer"
    PARTNER = "partner"
    SUB1 = "sub1"
    SUB2 = "sub2"
    SUB3 = "sub3"
    SUB4 = "sub4"
    SUB5 = "sub5"
    COUNTRY = "country"
    DEVICE = "device"


VISITOR_GROUPINGS = (GroupBy.COUNTRY, GroupBy.DEVICE)
"""Groupings by the click's visitor (``ClickRecorded.country`` and ``device``)."""


PARTNER_GROUPINGS = tuple(g for g in GroupBy if g is not GroupBy.PARTNER)
"""What a partner may group its own report by (it has only itself to group by)."""


class InvalidReport(ValueError):
    """A report parameter a caller can fix; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Window:
    """Whole days ``first``..``last`` (inclusive) in ``zone``, as UTC instants [start, end)."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def window(first: str | None, last: str | None, tz: str | None, now: datetime) -> Window:
    """The report's days: ``from``/``to`` as ISO dates (default: the last 30 days up to
    today, in ``tz``: at 23:30 UTC it is already tomorrow in Paris), ``tz`` an IANA zone
    name (default UTC)."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise InvalidReport("tz", f"tz: not a known IANA time zone: {tz!r}") from error
    end = _day("to", last) if last else now.astimezone(zone).date()
    begin = _day("from", first) if first else end - timedelta(days=29)
    if begin > end:
        raise InvalidReport("from", "from: must not be after to")
    if (end - begin).days + 1 > MAX_DAYS:
        raise InvalidReport("from", f"from: a report covers at most {MAX_DAYS} days")
    return Window(begin, end, zone)


def _day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidReport(field, f"{field}: not a date (YYYY-MM-DD): {value!r}") from error


@dataclass(frozen=True)
class Figures:
    """The summed counters of one report row (one group, one currency)."""

    clicks: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    payout: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.clicks + other.clicks,
            self.unique_clicks + other.unique_clicks,
            self.conversions + other.conversions,
            self.payout + other.payout,
            self.revenue + other.revenue,
        )


def cvr(figures: Figures) -> Decimal:
    """Conversions per click, in percent, two places (0 without clicks)."""
    if figures.clicks == 0:
        return Decimal("0.00")
    return (Decimal(figures.conversions) * 100 / figures.clicks).quantize(Decimal("0.01"))


def epc(figures: Figures) -> Decimal:
    """Payout per click, four places (0 without clicks)."""
    if figures.clicks == 0:
        return Decimal("0.0000")
    return (figures.payout / figures.clicks).quantize(Decimal("0.0001"))


def money(amount: Decimal, currency: str) -> str:
    """An amount as the decimal string of its currency's minor unit."""
    return format(round_money(amount, currency or "USD"), "f")
