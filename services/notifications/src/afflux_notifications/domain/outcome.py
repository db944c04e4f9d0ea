"""What became of one mail: sent or failed, recorded once, published by the outbox.

The aggregate's id is a pure function of the notification id, and its one event is
version 1 of it: recording an outcome twice (two sweepers, a late answer after a
sweep) is refused by the event store, so the log tells each mail's end once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

NAMESPACE = UUID("6c0e3f4a-8b1d-4e2f-a5c7-3d9b1f6e8a20")
"""Notification ids map to aggregate ids in this namespace: never change it."""

OUTCOME = "afflux_notifications:NotificationOutcome"
SENT = "afflux_notifications:NotificationOutcome.Sent"
FAILED = "afflux_notifications:NotificationOutcome.Failed"


class NotificationOutcome(Aggregate):
    """The end of one mail."""

    TOPIC = OUTCOME

    class Created(Aggregate.Created):
        TOPIC = "afflux_notifications:NotificationOutcome.Created"

        notification_id: str
        template: str
        recipient_sha256: str
        audience: str
        partner_id: str | None
        source_event_id: str | None
        attempts: int
        message_id: str
        correlation_id: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.notification_id = self.notification_id

    class Sent(Created):
        TOPIC = SENT

    class Failed(Created):
        TOPIC = FAILED

        error: str
        outcome_unknown: bool

    @staticmethod
    def create_id(notification_id: str) -> UUID:
        return uuid5(NAMESPACE, notification_id)

    @classmethod
    def record(cls, *, notification_id: str, template: str, recipient_sha256: str, audience: str,
               partner_id: str | None, source_event_id: str | None, attempts: int, message_id: str,
               correlation_id: str | None, error: str | None, outcome_unknown: bool = False,
               at: datetime | None = None) -> NotificationOutcome.Created:
        """The mail's one event: Sent when ``error`` is None, else Failed with it (version 1
        of the aggregate the notification id names; nothing reads the aggregate back)."""
        facts: dict[str, Any] = {
            "originator_id": cls.create_id(notification_id), "originator_version": 1,
            "originator_topic": OUTCOME, "notification_id": notification_id, "template": template,
            "recipient_sha256": recipient_sha256, "audience": audience, "partner_id": partner_id,
            "source_event_id": source_event_id, "attempts": attempts, "message_id": message_id,
            "correlation_id": correlation_id,
        }
        if error is None:
            return cls.Sent(timestamp=at or cls.Sent.create_timestamp(), **facts)
        facts.update(error=error, outcome_unknown=outcome_unknown)
        return cls.Failed(timestamp=at or cls.Failed.create_timestamp(), **facts)
