"""The notifications HTTP API: the delivery log, mail on request, a partner's opt-outs,
and the embedded catcher's mail."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from fastapi import Body, FastAPI, Header, Path, Query
from pydantic import BaseModel, Field

from afflux_notifications.application.messages import (
    IdempotencyKeyReused,
    InvalidAddress,
    MessageDesk,
    request_mail,
)
from afflux_notifications.domain.catalogue import API_KINDS, KINDS, OPTIONAL_KINDS, MissingData, UnknownKind
from afflux_plumbing.auth import Credentials, Principal, needs
from afflux_plumbing.http import ApiError, ReadinessCheck, admin_auth, service_app

Status = Literal["queued", "sending", "handing_over", "sent", "failed", "uncertain", "skipped"]
DataValue = str | int | bool | None


class AdminReads(MessageDesk, Protocol):
    def page(self, *, recipient: str | None, partner_id: str | None, status: str | None, after: int | None,
             limit: int) -> list[dict[str, Any]]: ...

    def preferences(self, partner_id: str) -> list[str]: ...

    def set_preferences(self, partner_id: str, opted_out: Sequence[str]) -> None: ...

    def caught(self, after: int, limit: int) -> list[dict[str, Any]]: ...


class NotificationOut(BaseModel):
    """One mail: what it tells (``template``, ``source``: ``event:<event_id>``,
    ``api:<caller>:<key>`` or ``digest:<topic>:<n>``), to whom, and what became of it:
    ``queued`` (due at ``next_attempt_at``), ``sending``/``handing_over`` (in a
    conversation now), ``sent``, ``failed`` (``last_error`` says why), ``uncertain``
    (handed over but no answer came: it may have arrived, and is not sent again),
    ``skipped`` (the partner opted out). Never its data or body."""

    notification_id: str
    template: str
    audience: str
    recipient: str
    partner_id: str | None
    source: str
    status: Status
    attempts: int
    subject: str | None
    message_id: str | None
    last_code: int | None
    last_error: str | None
    queued_at: str
    next_attempt_at: str | None
    updated_at: str
    ended_at: str | None


class NotificationsPage(BaseModel):
    notifications: list[NotificationOut]
    next: str | None


class MessageIn(BaseModel):
    template: str = Field(max_length=60, description=f"one of {', '.join(API_KINDS)}")
    to: str | list[str] = Field(description="an address, or up to 10")
    data: dict[str, DataValue] = Field(default_factory=dict, max_length=30,
                                       description="what the template needs (e.g. link, name)")


class MessageOut(BaseModel):
    notification_id: str
    to: str
    status: str


class MessagesOut(BaseModel):
    messages: list[MessageOut]


class PreferencesIn(BaseModel):
    opted_out: list[str] = Field(max_length=20, description=f"any of {', '.join(OPTIONAL_KINDS)}")


class PreferencesOut(BaseModel):
    partner_id: str
    opted_out: list[str]
    optional: list[str]
    """What may be opted out of; the rest is transactional."""


class CaughtOut(BaseModel):
    seq: int
    received_at: str
    mail_from: str | None
    recipients: list[str]
    subject: str | None
    message_id: str | None
    text: str | None


class CaughtPage(BaseModel):
    catching: bool
    """False: mail goes to ``AFFLUX_SMTP_URL``, nothing is caught here."""
    mail: list[CaughtOut]
    next: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        prefix, _, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        message = f"not a cursor of this list: {cursor!r}"
        raise ApiError(422, "invalid_request", message, field="after") from error


def create_app(store: AdminReads, readiness: ReadinessCheck, credentials: Credentials, *,
               catching: bool) -> FastAPI:
    app = service_app("Afflux notifications", readiness)
    admin = admin_auth(credentials)

    @app.get("/v1/notifications", tags=["notifications"], response_model=NotificationsPage,
             openapi_extra=needs("notifications.read"))
    async def notifications(
        recipient: str | None = Query(None, max_length=254, description="an address (any case)"),
        partner_id: str | None = Query(None, max_length=200),
        status: Status | None = Query(None),  # noqa: B008
        limit: int = Query(50, ge=1, le=500),
        after: str | None = Query(None, max_length=100, description="the `next` of the previous page"),
        _: Principal = admin,
    ) -> NotificationsPage:
        """The delivery log, oldest first."""
        rows = await asyncio.to_thread(store.page, recipient=recipient, partner_id=partner_id, status=status,
                                       after=decode_cursor("nt", after), limit=limit + 1)
        page = rows[:limit]
        return NotificationsPage(
            notifications=[NotificationOut(**{
                **row, "template": row["kind"], "queued_at": _iso(row["queued_at"]),
                "updated_at": _iso(row["updated_at"]), "ended_at": _iso(row["ended_at"]),
                "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == "queued" else None,
            }) for row in page],
            next=encode_cursor("nt", page[-1]["seq"]) if len(rows) > limit else None)

    @app.post("/v1/messages", tags=["notifications"], status_code=202, response_model=MessagesOut,
              openapi_extra=needs("notifications.send"),
              responses={409: {"description": "the idempotency key was used for another request"}})
    async def messages(
        body: MessageIn = Body(...),  # noqa: B008
        idempotency_key: str = Header(..., alias="Idempotency-Key", min_length=1, max_length=200),
        principal: Principal = admin,
    ) -> MessagesOut:
        """Send a transactional mail that carries a secret (an email verification link, an
        invitation, a password reset): never on the log. At most once per (caller,
        ``Idempotency-Key``, recipient, template): the same request again answers the
        same mail; the same key with another request is ``409``."""
        to = [body.to] if isinstance(body.to, str) else list(body.to)
        if not 1 <= len(to) <= 10:
            raise ApiError(422, "invalid_request", "to: one to ten addresses", field="to")
        if any(isinstance(value, str) and len(value) > 2000 for value in body.data.values()):
            raise ApiError(422, "invalid_request", "data: a value is longer than 2000 characters",
                           field="data")
        try:
            queued = await asyncio.to_thread(request_mail, store, caller=principal.name, key=idempotency_key,
                                             template=body.template, to=to, data=body.data)
        except UnknownKind as error:
            raise ApiError(422, "unknown_template", str(error), field="template") from error
        except MissingData as error:
            raise ApiError(422, "invalid_request", str(error), field=f"data.{error.name}") from error
        except InvalidAddress as error:
            raise ApiError(422, "invalid_address", str(error), field="to") from error
        except IdempotencyKeyReused as error:
            raise ApiError(409, "idempotency_key_reused", str(error), field="Idempotency-Key") from error
        return MessagesOut(messages=[MessageOut(notification_id=q.notification_id, to=q.recipient,
                                                status=q.status) for q in queued])

    @app.get("/v1/partners/{partner_id}/notification-preferences", tags=["notifications"],
             response_model=PreferencesOut, openapi_extra=needs("notifications.preferences"))
    async def preferences(partner_id: str = Path(max_length=200), _: Principal = admin) -> PreferencesOut:
        """What the partner opted out of (transactional mail cannot be)."""
        opted_out = await asyncio.to_thread(store.preferences, partner_id)
        return PreferencesOut(partner_id=partner_id, opted_out=opted_out, optional=list(OPTIONAL_KINDS))

    @app.put("/v1/partners/{partner_id}/notification-preferences", tags=["notifications"],
             response_model=PreferencesOut, openapi_extra=needs("notifications.preferences"))
    async def set_preferences(body: PreferencesIn, partner_id: str = Path(max_length=200),
                              _: Principal = admin) -> PreferencesOut:
        """Replace what the partner opted out of. Only news may be opted out of
        (``optional``); a transactional mail (a verdict, a statement, a sign-in link) is
        ``422``."""
        for name in body.opted_out:
            if name not in KINDS or KINDS[name].audience.value != "partner":
                raise ApiError(422, "unknown_template", f"{name!r} is not a mail partners receive",
                               field="opted_out")
            if name not in OPTIONAL_KINDS:
                raise ApiError(422, "transactional", f"{name!r} is transactional: it cannot be opted out of",
                               field="opted_out")
        await asyncio.to_thread(store.set_preferences, partner_id, sorted(set(body.opted_out)))
        return PreferencesOut(partner_id=partner_id, opted_out=sorted(set(body.opted_out)),
                              optional=list(OPTIONAL_KINDS))

    @app.get("/v1/mail", tags=["mail catcher"], response_model=CaughtPage,
             openapi_extra=needs("notifications.mail"))
    async def mail(limit: int = Query(50, ge=1, le=500), after: str | None = Query(None, max_length=100),
                   _: Principal = admin) -> CaughtPage:
        """What the embedded mail catcher was sent (``AFFLUX_SMTP_URL`` unset), oldest first:
        each message's recipients, subject and text part."""
        rows = await asyncio.to_thread(store.caught, decode_cursor("mail", after) or 0, limit + 1)
        page = rows[:limit]
        return CaughtPage(catching=catching, mail=[CaughtOut(
            seq=row["seq"], received_at=_iso(row["received_at"]) or "", mail_from=row["mail_from"],
            recipients=list(row["recipients"]), subject=row["subject"], message_id=row["message_id"],
            text=row["text_body"]) for row in page],
            next=encode_cursor("mail", page[-1]["seq"]) if len(rows) > limit else None)

    return app
