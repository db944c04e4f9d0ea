"""Events of ``afflux.payouts.v1``: statements and balance adjustments, keyed by partner_id.

Payouts decides these and publishes them through its outbox; it also reads them
back, and only folding them moves money between its buckets (a statement's
commissions become *payable* when ``StatementIssued`` is folded, *paid* when
``StatementPaid`` is). So the ledger stays a pure fold of the log: a replay from
offset 0 re-derives every statement, and ``digest`` lets anyone check the lines.

The digest is the hex SHA-256 of the statement's canonical lines: the UTF-8 bytes
of the compact JSON array (no spaces, keys sorted) of
``[statement_id, partner_id, currency, period_end (RFC 3339, "Z"), [[kind, ref, offer_id,
amount], ...]]`` with the lines sorted by (kind, ref) and amounts as plain decimal
strings in the currency's minor units (``statement_digest`` computes it).

A consistent digest proves only that the lines are the ones stated. What makes a
statement *provable* is that the log gives its lines: payouts folds a
``StatementIssued`` into money only if each line is what the ledger holds unclaimed
for that commission or adjustment as of its ``period_end``, from the records up to
its ``log_position``, less what the statements before it claimed; any other statement
(one put on the log by hand, say) is kept as refused and pays nothing. Consumers that
show statements should show payouts' verdict (``GET /v1/statements/{id}``), not
trust a ``StatementIssued`` alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.topics import PAYOUTS
from afflux_contracts.values import Currency, DecimalString, UtcDatetime, round_money


class LineKind(StrEnum):
    """What a statement line pays: a conversion's commission (or what changed in it since
    an earlier statement: a claw back is negative), or a balance adjustment."""

    COMMISSION = "commission"
    ADJUSTMENT = "adjustment"


class StatementLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: LineKind
    ref: str
    """The conversion_id (commission) or adjustment_id (adjustment) the line pays."""
    offer_id: str | None = None
    happened_at: UtcDatetime
    amount: DecimalString
    """Signed: negative for a deduction (a reversal after payment)."""


class StatementStatus(StrEnum):
    """``payable``: its lines are owed to the partner; ``carried_over``: its total was below
    the partner's minimum payout (or negative), so nothing became payable and its lines
    go on to the next statement; ``paid``: money moved."""

    PAYABLE = "payable"
    CARRIED_OVER = "carried_over"
    PAID = "paid"


class StatementIssued(Event):
    """A closed billing period of one partner in one currency."""

    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    period_start: UtcDatetime | None = None
    """The previous statement's period end (exclusive); None for the partner's first."""
    period_end: UtcDatetime
    """Every line happened at or before it."""
    status: StatementStatus
    lines: tuple[StatementLine, ...]
    total: DecimalString
    carried_over: DecimalString = Field(default=Decimal(0))
    """The part of ``total`` from lines that happened at or before ``period_start``: what
    earlier statements carried over (a deduction when negative)."""
    minimum_payout: DecimalString = Field(default=Decimal(0))
    frequency: str | None = None
    """The partner's billing frequency the period follows (None: closed by an admin)."""
    closed_by: str = "admin"
    """``admin`` (``POST /v1/statements/close``) or ``schedule`` (the billing frequency)."""
    log_position: dict[str, int] = Field(default_factory=dict)
    """``topic#partition`` -> the last offset of the attribution, partners and payouts
    logs that payouts had folded when it decided the statement."""
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    issued_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class StatementPaid(Event):
    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    amount: DecimalString
    reference: str | None = None
    """The payment's reference (a wire id, a PayPal transaction)."""
    paid_at: UtcDatetime
    payment_run_id: str | None = None
    """The payment run that paid it (None: marked paid on its own)."""

    def partition_key(self) -> str:
        return self.partner_id


class BalanceAdjusted(Event):
    """An admin's adjustment of a partner's balance (a bonus, a penalty, a correction made
    outside any conversion): it accrues and is paid on the next statement."""

    topic: ClassVar = PAYOUTS

    adjustment_id: str
    partner_id: str
    currency: Currency
    amount: DecimalString
    reason: str
    note: str | None = None
    adjusted_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def statement_digest(statement_id: str, partner_id: str, currency: str, period_end: datetime,
                     lines: Sequence[StatementLine]) -> str:
    """The hex SHA-256 of a statement's canonical lines (see the module docstring)."""
    canonical = [
        [line.kind.value, line.ref, line.offer_id, format(round_money(line.amount, currency), "f")]
        for line in sorted(lines, key=lambda line: (line.kind.value, line.ref))
    ]
    body = [statement_id, partner_id, currency, _instant(period_end), canonical]
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
