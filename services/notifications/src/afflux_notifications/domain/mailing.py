"""Who gets what: the mails one piece of news makes, each once.

A mail is identified by what it tells (its *source*: the log event, the caller's
idempotency key, the digest), its recipient and its kind: ``notification_id`` is a
pure function of the three, so the same news applied twice, by any instance, after
any crash, is the same mail, and the store keeps one row for it. A partner's mail
goes to each of its sendable addresses (its email and its contacts); one it opted
out of is kept as ``skipped`` (the delivery log says why), never sent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid5

from afflux_notifications.domain.addresses import distinct_sendable, same_recipient
from afflux_notifications.domain.catalogue import KINDS, Audience

NAMESPACE = UUID("0b5f7c1e-2d8a-4c6e-9f3b-7a1d5e9c2b48")
"""Sources map to notification ids in this namespace: never change it."""

OPTED_OUT = "opted_out"


def notification_id(source: str, recipient: str, kind: str) -> str:
    return uuid5(NAMESPACE, "\x1f".join((source, same_recipient(recipient), kind))).hex


def event_source(event_id: UUID) -> str:
    return f"event:{event_id}"


@dataclass(frozen=True)
class PartnerCard:
    """What the service knows of a partner to write to it (its recipients view)."""

    partner_id: str
    name: str
    email: str
    contacts: tuple[str, ...] = ()
    status: str = "active"

    def addresses(self) -> list[str]:
        return distinct_sendable([self.email, *self.contacts])


@dataclass(frozen=True)
class Mail:
    """One mail to send (or, ``skipped`` saying why, not)."""

    kind: str
    audience: Audience
    recipient: str
    source: str
    data: Mapping[str, Any]
    partner_id: str | None = None
    source_event_id: UUID | None = None
    correlation_id: str | None = None
    skipped: str | None = None
    notification_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notification_id", notification_id(self.source, self.recipient, self.kind))


def to_partner(kind: str, partner: PartnerCard, opted_out: Collection[str], data: Mapping[str, Any], *,
               source: str, source_event_id: UUID | None = None,
               correlation_id: str | None = None) -> list[Mail]:
    """``kind`` to each of the partner's addresses, its name in the data; skipped if the
    partner opted out of it (only a kind that may be opted out of ever is)."""
    spec = KINDS[kind]
    skipped = OPTED_OUT if spec.may_opt_out and kind in opted_out else None
    filled = {"partner_name": partner.name, **data}
    return [Mail(kind, Audience.PARTNER, address, source, filled, partner.partner_id, source_event_id,
                 correlation_id, skipped) for address in partner.addresses()]


def to_staff(kind: str, staff: Iterable[str], data: Mapping[str, Any], *, source: str,
             source_event_id: UUID | None = None, correlation_id: str | None = None) -> list[Mail]:
    """``kind`` to each staff address (none configured: no mail)."""
    return [Mail(kind, Audience.STAFF, address, source, data, None, source_event_id, correlation_id)
            for address in distinct_sendable(staff)]


def to_caller(kind: str, addresses: Iterable[str], data: Mapping[str, Any], *, source: str,
              partner_id: str | None = None) -> list[Mail]:
    """``kind`` to the addresses a caller named (each recipient once)."""
    return [Mail(kind, Audience.CALLER, address, source, data, partner_id)
            for address in distinct_sendable(addresses)]
