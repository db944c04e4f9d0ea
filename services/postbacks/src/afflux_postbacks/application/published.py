"""Stored PostbackOutcome events -> the public events of ``afflux.postbacks.v1``."""

from __future__ import annotations

from typing import Any

from afflux_contracts import PartnerPostbackDelivered, PartnerPostbackFailed
from afflux_plumbing.relay import Translate, publishing
from afflux_postbacks.domain.outcome import POSTBACK_DELIVERED, POSTBACK_FAILED

PRODUCER = "postbacks"


def _delivered(event: Any) -> PartnerPostbackDelivered:
    return PartnerPostbackDelivered(
        delivery_id=event.delivery_id, conversion_id=event.conversion_id, partner_id=event.partner_id,
        offer_id=event.offer_id, url=event.url, attempts=event.attempts, status_code=event.status_code,
        delivered_at=event.timestamp, **_news(event))


def _failed(event: Any) -> PartnerPostbackFailed:
    return PartnerPostbackFailed(
        delivery_id=event.delivery_id, conversion_id=event.conversion_id, partner_id=event.partner_id,
        offer_id=event.offer_id, url=event.url, attempts=event.attempts, status_code=event.status_code,
        error=event.error, failed_at=event.timestamp, **_news(event))


def _news(event: Any) -> dict[str, Any]:
    """What the postback told; events stored before status changes were sent lack it."""
    return {"kind": getattr(event, "kind", "attributed"),
            "conversion_status": getattr(event, "conversion_status", None)}


TRANSLATIONS: dict[str, Translate] = {POSTBACK_DELIVERED: _delivered, POSTBACK_FAILED: _failed}

to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
