"""Currency events of ``afflux.payouts.v1``: exchange rates, and a statement converted to the
currency its partner is paid in.

An exchange rate is a fact with the day it applies to (``FxRateSet``: one ``base`` is worth
``rate`` of ``quote`` on ``day``), entered by finance or imported from the European
Central Bank's reference rates; it is keyed by its pair (``EUR/USD``), so the rates of a
pair are read in the order they were recorded and the last one set for a day is the one
in force. A rate set again for a day corrects it for what is converted afterwards; a
conversion already recorded keeps the rate it names.

A partner whose billing says ``conversion`` (``earned_day`` or ``period_end``) is paid in
its billing currency: each payable statement in another currency is converted line by
line (``StatementConverted``), each converted line keeping the original amount's
reference, the rate and the rate's day. A statement that cannot be converted because a
rate is missing is held (``StatementHeld`` with the reason ``missing_rate EUR/USD
2026-12-01``) and converted and released once the rate is on the log.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.payouts import LineKind
from afflux_contracts.topics import PAYOUTS
from afflux_contracts.values import Currency, DecimalString, UtcDatetime


class FxRateSet(Event):
    """One ``base`` is worth ``rate`` of ``quote`` on ``day`` (``source``: ``finance`` for a
    rate entered by hand, ``ecb`` for one imported from the ECB's reference rates)."""

    topic: ClassVar = PAYOUTS

    base: Currency
    quote: Currency
    day: date
    rate: DecimalString = Field(gt=Decimal(0))
    source: str = "finance"
    set_at: UtcDatetime

    def partition_key(self) -> str:
        return f"{self.base}/{self.quote}"


class ConvertedLine(BaseModel):
    """A statement line in the currency the partner is paid in. ``amount`` is the line's
    amount (in the statement's currency) times the rate of ``pair`` (divided by it when
    the pair is the other way round), rounded once to the paid currency's minor unit."""

    model_config = ConfigDict(frozen=True)

    kind: LineKind
    ref: str
    original: DecimalString
    """The line's amount in the statement's currency."""
    amount: DecimalString
    pair: str = Field(pattern=r"^[A-Z]{3}/[A-Z]{3}$")
    """The recorded rate's pair (``EUR/USD``: one EUR in USD)."""
    rate: DecimalString
    rate_day: date


class StatementConverted(Event):
    """A payable statement converted to the currency its partner is paid in: ``total`` (the
    sum of the converted lines) in ``paid_currency`` is what paying it pays."""

    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    """The statement's own currency (the one its lines were earned in)."""
    paid_currency: Currency
    total: DecimalString
    lines: tuple[ConvertedLine, ...]
    converted_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id
