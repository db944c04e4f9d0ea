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
    CONVERSION_APPEALED,
    CONVERSION_ATTRIBUTED,
    CONVERSION_REJECTED,
    CONVERSION_STATUS_CHANGED,
    SUBS,
)
from afflux_attribution.domain.priced import CLICK_PRICED, IMPRESSIONS_PRICED
from afflux_contracts import (
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    DecisionTerms,
    ImpressionsPriced,
    Money,
    RejectionReason,
    RuleCheck,
    StatusChange,
)
from afflux_contracts.attribution import Appeal
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "attribution"


def _money(amount: Decimal | None, currency: str) -> Money | None:
    return Money(amount=amount, currency=currency) if amount is not None else None


def _trace(event: Any) -> tuple[RuleCheck, ...]:
    return tuple(RuleCheck.model_validate(check) for check in getattr(event, "trace", ()))


def _terms(event: Any) -> DecisionTerms | None:
    terms = getattr(event, "terms", None)
    return DecisionTerms.model_validate(terms) if terms is not None else None


def _subs(event: Any) -> dict[str, str | None]:
    subs = getattr(event, "subs", None) or {}
    return {name: subs.get(name) for name in SUBS}


def _attributed(event: Any, status: str | None = None, appeal: Appeal | None = None) -> ConversionAttributed:
    """A clickless (coupon) conversion names its coupon code as its transaction_id and
    its conversion time as its click time: the published event has no empty fields."""
    coupon = getattr(event, "coupon_code", None)
    status = status or str(getattr(event, "status", ConversionStatus.APPROVED.value))
    return ConversionAttributed(
        conversion_id=event.conversion_id,
        transaction_id=event.transaction_id or coupon,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        event=event.event,
        order_id=event.order_id,
        sale_amount=event.sale_amount,
        payout=Money(amount=event.payout, currency=event.currency),
        revenue=_money(event.revenue, event.currency),
        status=ConversionStatus(status),
        clicked_at=event.clicked_at or event.converted_at,
        converted_at=event.converted_at,
        coupon_code=coupon,
        terms=_terms(event),
        trace=_trace(event),
        reason=getattr(event, "reason", None) if status == ConversionStatus.PENDING.value else None,
        appeal=appeal,
        **_subs(event),
    )


def _appealed(event: Any) -> ConversionAttributed:
    """A conversion a rule rejected, credited on appeal: a ConversionAttributed with its
    ``appeal`` (every consumer treats it as the conversion now being credited)."""
    appeal = Appeal(rejected_reason=RejectionReason(event.rejected_reason), by=event.by, reason=event.reason)
    return _attributed(event, ConversionStatus.APPROVED.value, appeal)


def _rejected(event: Any) -> ConversionRejected:
    return ConversionRejected(
        conversion_id=event.conversion_id,
        reason=RejectionReason(event.reason),
        message=event.message,
        transaction_id=event.transaction_id,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        order_id=event.order_id,
        converted_at=event.converted_at,
        terms=_terms(event),
        trace=_trace(event),
    )


def _status_changed(event: Any) -> ConversionStatusChanged:
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


def _priced_terms(event: Any) -> DecisionTerms:
    return DecisionTerms(offer_event_id=event.offer_event_id,
                         relationship_event_id=event.relationship_event_id)


def _click_priced(event: Any) -> ClickPriced:
    return ClickPriced(
        transaction_id=event.transaction_id,
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        payout=Money(amount=event.payout, currency=event.currency),
        revenue=_money(event.revenue, event.currency),
        clicked_at=event.clicked_at,
        priced_at=event.timestamp,
        terms=_priced_terms(event),
        **_subs(event),
    )


def _impressions_priced(event: Any) -> ImpressionsPriced:
    return ImpressionsPriced(
        partner_id=event.partner_id,
        offer_id=event.offer_id,
        block=event.block,
        payout=Money(amount=event.payout, currency=event.currency),
        revenue=_money(event.revenue, event.currency),
        last_impression_id=event.last_impression_id,
        last_impressed_at=event.last_impressed_at,
        priced_at=event.timestamp,
        terms=_priced_terms(event),
    )


TRANSLATIONS: dict[str, Translate] = {
    CONVERSION_ATTRIBUTED: _attributed,
    CONVERSION_REJECTED: _rejected,
    CONVERSION_STATUS_CHANGED: _status_changed,
    CONVERSION_APPEALED: _appealed,
    CLICK_PRICED: _click_priced,
    IMPRESSIONS_PRICED: _impressions_priced,
}
"""Every stored event topic of this service that is published, and its public event."""


to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
