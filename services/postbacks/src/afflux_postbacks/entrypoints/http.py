"""The postbacks admin API: the delivery log."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Literal

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel

from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import ApiError, NotFound, ReadinessCheck, admin_auth, service_app
from afflux_postbacks.application.schedule import Delivery, DeliveryLog

Status = Literal["owed", "pending", "delivered", "failed", "skipped"]
Kind = Literal["attributed", "status_changed"]
Method = Literal["get", "post"]


class AttemptOut(BaseModel):
    attempt: int
    url: str
    status_code: int | None
    latency_ms: str
    error: str | None
    attempted_at: str


class DeliveryOut(BaseModel):
    """One partner postback: the news of a conversion's attribution or of a change of its
    status (``kind``). ``url`` is the URL called with its secrets masked (none yet while
    ``owed``), with ``method`` (``post`` sends the macros as a JSON body); ``status``:
    ``owed`` (URL not filled yet), ``pending`` (to be called or retried at
    ``next_attempt_at``), ``delivered``, ``failed`` (given up) or ``skipped`` (not sent:
    ``last_error`` says why: no postback URL, an offer event that does not fire partner
    postbacks, a status change the partner did not ask for)."""

    delivery_id: str
    conversion_id: str
    partner_id: str
    offer_id: str
    kind: Kind
    conversion_status: str | None
    """The conversion's status this news tells (``{status}``)."""
    status: Status
    url: str | None
    method: Method
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    owed_at: str
    updated_at: str
    attempt_log: list[AttemptOut]


class PausedHost(BaseModel):
    host: str
    paused_at: str
    reason: str
    waiting: int


class PausedHosts(BaseModel):
    hosts: list[PausedHost]


class Resumed(BaseModel):
    host: str
    resumed: int
    """Deliveries made due at once."""


class DeliveriesPage(BaseModel):
    postbacks: list[DeliveryOut]
    next: str | None


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"pb:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != "pb":
            raise ValueError(prefix)
        return int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        message = f"not a postbacks cursor: {cursor!r}"
        raise ApiError(422, "invalid_request", message, field="after") from error


def create_app(store: DeliveryLog, readiness: ReadinessCheck, admin_token: str | Credentials) -> FastAPI:
    app = service_app("Afflux postbacks", readiness)

    @app.get("/v1/postbacks", tags=["postbacks"], dependencies=[admin_auth(admin_token)],
             response_model=DeliveriesPage, openapi_extra=needs("postbacks.read"))
    async def postbacks(
        partner_id: str | None = Query(None, max_length=200),
        status: Status | None = Query(None),  # noqa: B008
        limit: int = Query(50, ge=1, le=500, description="page size"),
        after: str | None = Query(None, max_length=100,
                                  description="the `next` cursor of the previous page"),
    ) -> DeliveriesPage:
        """The delivery log, oldest first: each postback owed to a partner, its URL (secrets
        masked), status, attempts and last error, with every attempt."""
        after_seq = decode_cursor(after) if after is not None else None
        rows = await asyncio.to_thread(store.page, partner_id=partner_id, status=status, after=after_seq,
                                       limit=limit + 1)
        page = rows[:limit]
        attempts = await asyncio.to_thread(store.attempts, [row.delivery_id for row in page]) if page else []
        by_delivery: dict[str, list[AttemptOut]] = {}
        for attempt in attempts:
            by_delivery.setdefault(attempt["delivery_id"], []).append(AttemptOut(
                attempt=attempt["attempt"], url=attempt["url"], status_code=attempt["status_code"],
                latency_ms=str(attempt["latency_ms"]), error=attempt["error"],
                attempted_at=_iso(attempt["attempted_at"])))
        return DeliveriesPage(
            postbacks=[_out(row, by_delivery.get(row.delivery_id, [])) for row in page],
            next=encode_cursor(page[-1].seq) if len(rows) > limit else None,
        )

    @app.get("/v1/postbacks/paused-hosts", tags=["postbacks"], dependencies=[admin_auth(admin_token)],
             response_model=PausedHosts, openapi_extra=needs("postbacks.read"))
    async def paused_hosts() -> PausedHosts:
        """Hosts whose postbacks kept failing until one was given up: nothing more is called
        there (their deliveries wait, ``pending``) until resumed."""
        rows = await asyncio.to_thread(store.paused_hosts)
        return PausedHosts(hosts=[PausedHost(host=row["host"], paused_at=_iso(row["paused_at"]),
                                             reason=row["reason"], waiting=row["waiting"]) for row in rows])

    @app.post("/v1/postbacks/paused-hosts/{host}/resume", tags=["postbacks"],
              dependencies=[admin_auth(admin_token)], response_model=Resumed,
              responses={404: {"description": "the host is not paused"}},
              openapi_extra=needs("postbacks.resume"))
    async def resume(host: str = Path(max_length=300)) -> Resumed:
        """Call a paused host again: its waiting deliveries are due at once (each keeps its
        retry schedule after that)."""
        resumed = await asyncio.to_thread(store.resume_host, host)
        if resumed is None:
            raise NotFound("host_not_paused", f"postbacks to {host} are not paused")
        return Resumed(host=host, resumed=resumed)

    return app


def _out(row: Delivery, attempts: list[AttemptOut]) -> DeliveryOut:
    waiting = row.status in ("owed", "pending")
    return DeliveryOut(
        delivery_id=row.delivery_id, conversion_id=row.conversion_id, partner_id=row.partner_id,
        offer_id=row.offer_id, kind=row.kind, conversion_status=row.facts.get("status"), status=row.status,
        url=row.url_masked, method=row.method, attempts=row.attempts, last_status_code=row.last_status_code,
        last_error=row.last_error, next_attempt_at=_iso(row.next_attempt_at) if waiting else None,
        owed_at=_iso(row.owed_at), updated_at=_iso(row.updated_at), attempt_log=attempts,
    )
