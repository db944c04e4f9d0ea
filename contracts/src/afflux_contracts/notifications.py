"""Events of ``afflux.notifications.v1``: what became of each mail, keyed by recipient.

The log is read widely, so a notification's events carry no message: no body, no
subject, no address. The recipient is the SHA-256 (hex) of its address, trimmed and
lowercased (``recipient_sha256``): a reader that knows an address can find its mail,
nobody can read one off the log. A mail that carries a secret (an email verification
link, an invitation, a password reset) is never on the log at all: the service that
mints the secret hands it to the notifications service over HTTP.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from afflux_contracts.event import Event
from afflux_contracts.topics import NOTIFICATIONS
from afflux_contracts.values import UtcDatetime

Audience = Literal["partner", "staff", "caller"]
"""Who the mail was for: a partner's people, the network's staff, or whoever the caller of
``POST /v1/messages`` named (sign-up, invitations, password resets)."""


def recipient_sha256(address: str) -> str:
    """The hex SHA-256 of an address as it is keyed on the log (trimmed, lowercased)."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


class _Notification(Event):
    notification_id: str
    """One per (what it tells, recipient, template): the same news never makes two."""
    template: str
    recipient: str = Field(pattern=r"^[0-9a-f]{64}$")
    """``recipient_sha256`` of the address it was sent to."""
    audience: Audience
    partner_id: str | None = None
    source_event_id: UUID | None = None
    """The log event the mail tells of (None: a message asked for over HTTP, or a digest)."""
    attempts: int
    """SMTP conversations it took (0: it failed before any, e.g. its template)."""
    message_id: str
    """The ``Message-ID`` header it was (or would have been) sent with: the same on any
    resend an operator makes, so a mailbox can tell a repeat."""

    def partition_key(self) -> str:
        return self.recipient


class NotificationSent(_Notification):
    """The SMTP server accepted the mail (250 to the end of its DATA)."""

    topic: ClassVar = NOTIFICATIONS

    sent_at: UtcDatetime


class NotificationFailed(_Notification):
    """The mail was given up: refused for good (a 5xx to its recipient or its content),
    still failing when its retry time ran out, or its outcome is unknown."""

    topic: ClassVar = NOTIFICATIONS

    error: str
    """Why, without the address (the SMTP server's words, the address masked)."""
    outcome_unknown: bool = False
    """The message was handed over but no answer came (the connection or the process
    ended after the last byte of DATA): it may have arrived, so it is never sent again
    on its own (at most once)."""
    failed_at: UtcDatetime

