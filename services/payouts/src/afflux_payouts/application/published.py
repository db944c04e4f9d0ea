"""Stored Statement / Adjustment events -> the public events of ``afflux.payouts.v1``.

The envelope's event_id is derived from the stored event (``publishing``), so a relay
that re-sends after a crash sends the same id and the fold drops it; ``occurred_at``
is when payouts recorded the decision.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from afflux_contracts import (
    BalanceAdjusted,
    FailedPayment,
    FxRateSet,
    InvoiceIssued,
    PaymentMethodKind,
    PaymentRunConfirmed,
    PaymentRunCreated,
    RunPayment,
    StatementConverted,
    StatementHeld,
    StatementIssued,
    StatementPaid,
    StatementPaymentFailed,
    StatementReleased,
)
from afflux_payouts.domain.invoices import INVOICE_ISSUED
from afflux_payouts.domain.payment_runs import PAYMENT_RUN_CONFIRMED, PAYMENT_RUN_CREATED
from afflux_payouts.domain.records import (
    ADJUSTMENT_MADE,
    RATE_SET,
    STATEMENT_CONVERTED,
    STATEMENT_HELD,
    STATEMENT_ISSUED,
    STATEMENT_PAID,
    STATEMENT_PAYMENT_FAILED,
    STATEMENT_RELEASED,
)
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "payouts"


def _issued(event: Any) -> StatementIssued:
    return StatementIssued.model_validate(event.statement)


def _paid(event: Any) -> StatementPaid:
    return StatementPaid(statement_id=event.statement_id, partner_id=event.partner_id,
                         currency=event.currency, amount=Decimal(event.amount), reference=event.reference,
                         paid_at=event.timestamp, payment_run_id=getattr(event, "payment_run_id", None))


def _payment_failed(event: Any) -> StatementPaymentFailed:
    return StatementPaymentFailed(**_statement_of(event), amount=Decimal(event.amount),
                                  payment_run_id=event.payment_run_id, reason=event.reason,
                                  failed_at=event.timestamp)


def _invoice_issued(event: Any) -> InvoiceIssued:
    return InvoiceIssued.model_validate(event.invoice)


def _run_created(event: Any) -> PaymentRunCreated:
    return PaymentRunCreated(payment_run_id=event.payment_run_id, method=PaymentMethodKind(event.method),
                             payments=tuple(RunPayment(**payment) for payment in event.payments),
                             due_by=event.due_by, created_at=event.created_at)


def _run_confirmed(event: Any) -> PaymentRunConfirmed:
    return PaymentRunConfirmed(payment_run_id=event.payment_run_id, paid=tuple(event.paid),
                               failed=tuple(FailedPayment(**failure) for failure in event.failed),
                               confirmed_at=event.confirmed_at)


def _adjusted(event: Any) -> BalanceAdjusted:
    return BalanceAdjusted(adjustment_id=event.adjustment_id, partner_id=event.partner_id,
                           currency=event.currency, amount=Decimal(event.amount), reason=event.reason,
                           note=event.note, adjusted_at=event.timestamp)


def _converted(event: Any) -> StatementConverted:
    return StatementConverted.model_validate(event.conversion)


def _rate_set(event: Any) -> FxRateSet:
    return FxRateSet(base=event.base, quote=event.quote, day=event.day, rate=Decimal(event.rate),
                     source=event.source, set_at=event.timestamp)


def _held(event: Any) -> StatementHeld:
    return StatementHeld(**_statement_of(event), reason=event.reason, held_at=event.timestamp)


def _released(event: Any) -> StatementReleased:
    return StatementReleased(**_statement_of(event), released_at=event.timestamp)


def _statement_of(event: Any) -> dict[str, Any]:
    """The statement a hold or a release names (its stored event keeps them)."""
    return {"statement_id": event.statement_id, "partner_id": event.partner_id, "currency": event.currency}


TRANSLATIONS: dict[str, Translate] = {
    STATEMENT_ISSUED: _issued,
    STATEMENT_PAID: _paid,
    ADJUSTMENT_MADE: _adjusted,
    STATEMENT_HELD: _held,
    STATEMENT_RELEASED: _released,
    STATEMENT_PAYMENT_FAILED: _payment_failed,
    PAYMENT_RUN_CREATED: _run_created,
    PAYMENT_RUN_CONFIRMED: _run_confirmed,
    INVOICE_ISSUED: _invoice_issued,
    STATEMENT_CONVERTED: _converted,
    RATE_SET: _rate_set,
}

to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
