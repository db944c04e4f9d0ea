"""Stored Conversion events -> the public events of ``afflux.attribution.v1``.

The only module that knows both the domain and the published contract. Stored events
are matched by their stored topic (fixed forever). The envelope's event_id is derived
from the stored event, so a relay that re-sends after a crash sends the same id, and
``occurred_at`` is when the decision was made. The causation id is the
ConversionReported envelope the decision answers (a review has none); the correlation id is the click's
transaction_id, which ties click, conversion and commission together.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from afflux_attribution.domain.conversion import (
    CONVERSION_ATTRIBUTED,
    CONVERSION_REJECTED,
    CONVERSION_STATUS_CHANGED,
)
from afflux_contracts import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    Event,
    Money,
    RejectionReason,
    StatusChange,
)
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "attribution"


def _money(amount: Decimal | None, currency: str) -> Money | None:
    return Money(amount=amount, currency=currency) if amount is not None else None


def _attributed(event: Any) -> Event:
    return ConversionAttributed(
        conversion_id=event.conversion_id,
        transaction_id=event.transaction_id,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        event=event.event,
        order_id=event.order_id,
        sale_amount=event.sale_amount,
        payout=Money(amount=event.payout, currency=event.currency),
        revenue=_money(event.revenue, event.currency),
        status=ConversionStatus.APPROVED,
        clicked_at=event.clicked_at,
        converted_at=event.converted_at,
    )


def _rejected(event: Any) -> Event:
    return ConversionRejected(
        conversion_id=event.conversion_id,
        reason=RejectionReason(event.reason),
        message=event.message,
        transaction_id=event.transaction_id,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        order_id=event.order_id,
        converted_at=event.converted_at,
    )


def _status_changed(event: Any) -> Event:
    return ConversionStatusChanged(
        conversion_id=event.conversion_id,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        status=StatusChange(event.change),
        previous_status=ConversionStatus(event.previous_status),
        payout=Money(amount=event.payout, currency=event.currency),
        reason=event.reason,
        note=event.note,
        changed_at=event.timestamp,
    )


TRANSLATIONS: dict[str, Translate] = {
    CONVERSION_ATTRIBUTED: _attributed,
    CONVERSION_REJECTED: _rejected,
    CONVERSION_STATUS_CHANGED: _status_changed,
}
"""Every stored event topic of this service that is published, and its public event."""


to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
