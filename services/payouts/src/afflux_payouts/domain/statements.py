"""Closing a billing period: which lines a statement holds, and whether they become payable.

The ledger is a sum of facts, so a close never rewrites a commission. A
commission's *claimed* amount is what payable (or paid) statements hold for it;
the line a new statement adds is the difference between what the conversion
earned as of the period end and what it has claimed so far: a new commission, a
raise after an adjustment, or a negative amount when a paid commission was
reversed (a claw back). Balance adjustments are lines too, claimed once.

A statement's total decides it: at or above the partner's minimum payout (and not
negative) it is ``payable`` and claims its lines; below the minimum, or negative,
it is ``carried_over``: nothing becomes payable and its lines stay unclaimed, so
the next close lists them again (``carried_over`` then says how much of its total
came from before its period). The minimum applies in the partner's billing
currency; other currencies have none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from afflux_contracts import (
    StatementIssued,
    StatementLine,
    StatementStatus,
    round_money,
    statement_digest,
)

ZERO = Decimal(0)


def statement_id_for(partner_id: str, currency: str, period_end: datetime) -> str:
    """A pure function of what the statement closes: the same close decided twice (a retry,
    a crash before the answer, two schedulers) is the same statement."""
    key = "\x1f".join((partner_id, currency, period_end.astimezone(UTC).isoformat()))
    return "st_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Terms:
    """What a partner's billing says about closing its periods (the defaults: no minimum)."""

    currency: str | None = None
    minimum_payout: Decimal = ZERO
    frequency: str | None = None

    def minimum_in(self, currency: str) -> Decimal:
        return self.minimum_payout if currency == self.currency else ZERO


@dataclass(frozen=True)
class Close:
    """One close of one partner in one currency: what it knows when it decides."""

    partner_id: str
    currency: str
    period_end: datetime
    period_start: datetime | None
    terms: Terms
    closed_by: str
    log_position: dict[str, int]
    issued_at: datetime


def decide_statement(close: Close, lines: Sequence[StatementLine]) -> StatementIssued | None:
    """The statement ``close`` issues for the unclaimed ``lines`` (None: nothing to state)."""
    kept = tuple(sorted((line for line in lines if line.amount != 0), key=lambda line: (line.kind, line.ref)))
    if not kept:
        return None
    total = round_money(sum((line.amount for line in kept), ZERO), close.currency)
    minimum = close.terms.minimum_in(close.currency)
    status = StatementStatus.PAYABLE if total >= 0 and total >= minimum else StatementStatus.CARRIED_OVER
    start = close.period_start
    carried = sum((line.amount for line in kept if start is not None and line.happened_at <= start), ZERO)
    statement_id = statement_id_for(close.partner_id, close.currency, close.period_end)
    return StatementIssued(
        statement_id=statement_id,
        partner_id=close.partner_id,
        currency=close.currency,
        period_start=start,
        period_end=close.period_end,
        status=status,
        lines=kept,
        total=total,
        carried_over=round_money(carried, close.currency),
        minimum_payout=minimum,
        frequency=close.terms.frequency,
        closed_by=close.closed_by,
        log_position=close.log_position,
        digest=statement_digest(statement_id, close.partner_id, close.currency, close.period_end, kept),
        issued_at=close.issued_at,
    )
