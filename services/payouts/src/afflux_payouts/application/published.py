"""Stored Statement / Adjustment events -> the public events of ``afflux.payouts.v1``.

The envelope's event_id is derived from the stored event (``publishing``), so a relay
that re-sends after a crash sends the same id and the fold drops it; ``occurred_at``
is when payouts recorded the decision.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from afflux_contracts import BalanceAdjusted, Event, StatementIssued, StatementPaid
from afflux_payouts.domain.records import ADJUSTMENT_MADE, STATEMENT_ISSUED, STATEMENT_PAID
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "payouts"


def _issued(event: Any) -> Event:
    return StatementIssued.model_validate(event.statement)


def _paid(event: Any) -> Event:
    return StatementPaid(statement_id=event.statement_id, partner_id=event.partner_id,
                         currency=event.currency, amount=Decimal(event.amount), reference=event.reference,
                         paid_at=event.timestamp)


def _adjusted(event: Any) -> Event:
    return BalanceAdjusted(adjustment_id=event.adjustment_id, partner_id=event.partner_id,
                           currency=event.currency, amount=Decimal(event.amount), reason=event.reason,
                           note=event.note, adjusted_at=event.timestamp)


TRANSLATIONS: dict[str, Translate] = {
    STATEMENT_ISSUED: _issued,
    STATEMENT_PAID: _paid,
    ADJUSTMENT_MADE: _adjusted,
}

to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
