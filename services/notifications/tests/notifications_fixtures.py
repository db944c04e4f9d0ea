"""Builders of the events the notifications service reads, a restartable service in the
test's event loop, and an SMTP server of the test's own (aiosmtpd) that keeps what it
is sent and can be told to refuse."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from afflux_contracts import (
    Contact,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatus,
    PayoutType,
    RelationshipSet,
    StatementIssued,
    StatementPaid,
    StatementStatus,
    Terms,
)
from afflux_contracts import Envelope as Record
from afflux_infra.testing import RunningService
from afflux_notifications.adapters.store import NotificationsStore
from afflux_notifications.entrypoints.main import build
from afflux_notifications.settings import NotificationsSettings
from afflux_plumbing.auth import service_token_entry

ADMIN_TOKEN = "notifications-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SENDER_TOKEN = "notifications-test-sender-token"
SENDER = {"Authorization": f"Bearer {SENDER_TOKEN}"}
"""A service token with only ``notifications.send`` (as the gateway's will have)."""
WHEN = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


class SessionInfra(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


def partner(partner_id: str, email: str, *contacts: str, status: str = "active") -> Record[Any]:
    return Record.wrap(PartnerCreated(partner_id=partner_id, name=f"Partner {partner_id}", email=email,
                                      status=PartnerStatus(status),
                                      contacts=tuple(Contact(name="ops", email=c) for c in contacts)),
                       producer="partners")


def offer(offer_id: str, name: str = "Spring sale") -> Record[Any]:
    return Record.wrap(OfferCreated(offer_id=offer_id, name=name, destination_url="https://shop.example/",
                                    currency="USD", payout=Terms(type=PayoutType.CPA, amount=Decimal(5))),
                       producer="partners")


def offer_status(offer_id: str, status: str) -> Record[Any]:
    return Record.wrap(OfferStatusChanged(offer_id=offer_id, status=OfferStatus(status)), producer="partners")


def relationship(offer_id: str, partner_id: str, *, approved: bool, application: bool = False) -> Record[Any]:
    return Record.wrap(RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=approved,
                                       application=application), producer="partners")


def statement_issued(partner_id: str, statement_id: str, total: str = "42.50") -> Record[Any]:
    return Record.wrap(StatementIssued(statement_id=statement_id, partner_id=partner_id, currency="USD",
                                       period_end=WHEN, status=StatementStatus.PAYABLE, lines=(),
                                       total=Decimal(total), digest="0" * 64, issued_at=WHEN),
                       producer="payouts")


def statement_paid(partner_id: str, statement_id: str, amount: str = "42.50") -> Record[Any]:
    return Record.wrap(StatementPaid(statement_id=statement_id, partner_id=partner_id, currency="USD",
                                     amount=Decimal(amount), reference="wire 77", paid_at=WHEN),
                       producer="payouts")


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    subject: str
    text: str
    message_id: str
    authenticated_as: str | None
    tls: bool


@dataclass
class ScriptedSmtp:
    """An SMTP server on 127.0.0.1 in the test's loop. ``refuse(recipient)`` gives the
    reply code for a recipient (e.g. 450, 550; 0: accept); ``hang_after_data`` closes the
    connection after reading a message without answering (the ambiguous case)."""

    smtp_options: dict[str, Any] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refuse: Callable[[str], int] = lambda recipient: 0
    hang_after_data: bool = False
    port: int = 0
    _server: asyncio.Server | None = None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        code = self.refuse(address)
        if code:
            return f"{code} {'4.2.0 try later' if code < 500 else f'5.1.1 <{address}>: no such user'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        self.received.append(Received(
            envelope.mail_from or "", list(envelope.rcpt_tos), str(message["Subject"]),
            body.get_content() if body is not None else "", str(message["Message-ID"]),
            getattr(session.auth_data, "login", b"").decode() if session.auth_data else None,
            session.ssl is not None))
        if self.hang_after_data:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 never sent"
        return "250 OK kept"

    async def start(self) -> ScriptedSmtp:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="test-smtp", loop=loop, **self.smtp_options), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def to(self, address: str) -> list[Received]:
        return [mail for mail in self.received if address in mail.recipients]


class RunningNotifications(RunningService[NotificationsSettings]):
    """The notifications service as its tests run it: the admin and sender tokens admitted,
    quick retries (0.1 s, at most 0.5 s); a test's ``settings`` (its mail server) go over."""

    headers = ADMIN

    def __init__(self, database_url: str, kafka_bootstrap: str, **settings: Any) -> None:
        super().__init__(NotificationsSettings, build, database_url, kafka_bootstrap, **{
            "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
            "AFFLUX_SERVICE_TOKENS": service_token_entry("sender", SENDER_TOKEN, ["notifications.send"]),
            "AFFLUX_NOTIFICATIONS_RETRY_FIRST": 0.1, "AFFLUX_NOTIFICATIONS_RETRY_CAP": 0.5,
            **settings,
        })

    @property
    def store(self) -> NotificationsStore:
        """The store ``build`` wired (for what HTTP does not show)."""
        store: NotificationsStore = self.app.state.notifications
        return store

    def log_of(self, **params: Any) -> list[dict[str, Any]]:
        """The delivery log's rows (blocking: from a thread)."""
        rows: list[dict[str, Any]] = self.get_json("/v1/notifications", limit=500, **params)["notifications"]
        return rows

    def ended(self, count: int, **params: Any) -> list[dict[str, Any]] | None:
        """The log's rows (filtered) once ``count`` of them have ended, else None."""
        rows = self.log_of(**params)
        done = [row for row in rows if row["status"] in ("sent", "failed", "uncertain", "skipped")]
        return rows if len(done) >= count else None
