"""Stored NotificationOutcome events -> the public events of ``afflux.notifications.v1``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from afflux_contracts import NotificationFailed, NotificationSent
from afflux_notifications.domain.outcome import FAILED, SENT
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "notifications"


def _common(event: Any) -> dict[str, Any]:
    return {"notification_id": event.notification_id, "template": event.template,
            "recipient": event.recipient_sha256, "audience": event.audience, "partner_id": event.partner_id,
            "source_event_id": UUID(event.source_event_id) if event.source_event_id else None,
            "attempts": event.attempts, "message_id": event.message_id}


def _sent(event: Any) -> NotificationSent:
    return NotificationSent(**_common(event), sent_at=event.timestamp)


def _failed(event: Any) -> NotificationFailed:
    return NotificationFailed(**_common(event), error=event.error, outcome_unknown=event.outcome_unknown,
                              failed_at=event.timestamp)


TRANSLATIONS: dict[str, Translate] = {SENT: _sent, FAILED: _failed}

to_envelope = publishing(PRODUCER, TRANSLATIONS)
"""What the outbox relay publishes for a stored domain event."""
