"""The gateway's HTTP API: ``/v1/me/...`` for the partner its ``X-Api-Key`` names, and
the admin report. Every partner route takes the partner from the key, never from the
request, so ids of another partner in a path or query find nothing of theirs.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.partners_client import PartnersClient, PartnersUnavailable
from afflux_gateway.application.projection import Gateway
from afflux_gateway.application.reads import ConversionKey, KeyHolder, ReportRow
from afflux_gateway.domain.access import MAX_SUB_LENGTH, SUB_NAMES, may_run, tracking_link
from afflux_gateway.domain.report import PARTNER_GROUPINGS, GroupBy, InvalidReport, Window, window
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_gateway.entrypoints.present import (
    STATEMENT_COLUMNS,
    balance_out,
    conversion_out,
    postback_out,
    report_out,
    statement_out,
    to_csv,
)
from afflux_plumbing.http import ApiError, NotFound, admin_auth


def report_window(first: str | None, last: str | None, tz: str | None) -> Window:
    try:
        return window(first, last, tz, datetime.now(UTC).date())
    except InvalidReport as error:
        raise ApiError(422, "invalid_request", str(error), field=error.field) from error


def read_report(store: Gateway, span: Window, group_by: GroupBy, partner_id: str | None) -> list[ReportRow]:
    try:
        return store.report(span, group_by, partner_id)
    except InvalidReport as error:
        raise ApiError(422, "invalid_request", str(error), field=error.field) from error


def grouping(value: str, allowed: tuple[GroupBy, ...]) -> GroupBy:
    try:
        group_by = GroupBy(value)
    except ValueError:
        group_by = None
    if group_by not in allowed:
        names = "|".join(g.value for g in allowed)
        raise ApiError(422, "invalid_request", f"group_by: one of {names}", field="group_by")
    assert group_by is not None
    return group_by


def encode_cursor(key: ConversionKey) -> str:
    raw = json.dumps([key.converted_at.isoformat(), key.conversion_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ConversionKey:
    try:
        at, conversion_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        instant = datetime.fromisoformat(at)
        if not isinstance(conversion_id, str) or instant.tzinfo is None:
            raise ValueError(cursor)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ApiError(422, "invalid_request", "after: not a cursor this API gave", field="after") from error
    return ConversionKey(instant, conversion_id)


def offer_of(store: Gateway, partner_id: str, offer_id: str) -> dict[str, Any]:
    """The offer as this partner sees it; 404 when it may not see it (or it is unknown)."""
    offers = store.offers_for(partner_id, offer_id)
    if not offers:
        raise NotFound("offer_not_found", f"no offer {offer_id!r} available to you")
    return offers[0]


def partner_router(store: Gateway, guard: Guard, partners: PartnersClient, tracking_url: str) -> APIRouter:
    router = APIRouter(prefix="/v1/me", tags=["partner"])
    me = partner_auth(guard)

    @router.get("")
    def who_am_i(holder: KeyHolder = me) -> dict[str, Any]:
        """The partner this key belongs to."""
        row = store.partner(holder.partner_id)
        return {
            "partner_id": holder.partner_id,
            "key_id": holder.key_id,
            "name": row["name"] if row else None,
            "email": row["email"] if row else None,
            "status": row["status"] if row else None,
        }

    @router.get("/offers")
    def offers(holder: KeyHolder = me) -> dict[str, Any]:
        """Active offers this partner may run or apply for, with its own payout terms."""
        return {"offers": store.offers_for(holder.partner_id)}

    @router.post("/offers/{offer_id}/apply", status_code=201, response_model=None)
    async def apply(offer_id: str, holder: KeyHolder = me) -> JSONResponse:
        """Apply for an offer you can see: a public one approves you at once, one that
        requires approval becomes a pending application the advertiser decides on (the
        partners service records it and puts it on the log). Idempotent: applying again
        answers 200 with the relationship as it is; a declined one is 409."""
        await run_in_threadpool(offer_of, store, holder.partner_id, offer_id)
        try:
            answer = await partners.apply(offer_id, holder.partner_id)
        except PartnersUnavailable as error:
            raise ApiError(
                503,
                "unavailable",
                "applications cannot be taken right now; retry later",
                headers={"Retry-After": "5"},
            ) from error
        if answer.status >= 400:
            found = answer.body.get("error")
            refusal = found if isinstance(found, dict) else {}
            raise ApiError(
                answer.status,
                str(refusal.get("code", "refused")),
                str(refusal.get("message", "the application was refused")),
            )
        approved = answer.body.get("approved") is True
        return JSONResponse(
            {"offer_id": offer_id, "relationship": "approved" if approved else "pending"},
            status_code=answer.status,
        )

    @router.get("/offers/{offer_id}/tracking-link")
    def link(
        offer_id: str,
        holder: KeyHolder = me,
        sub1: str | None = Query(None, max_length=MAX_SUB_LENGTH),
        sub2: str | None = Query(None, max_length=MAX_SUB_LENGTH),
        sub3: str | None = Query(None, max_length=MAX_SUB_LENGTH),
        sub4: str | None = Query(None, max_length=MAX_SUB_LENGTH),
        sub5: str | None = Query(None, max_length=MAX_SUB_LENGTH),
    ) -> dict[str, Any]:
        """This partner's tracking link to the offer, with sub1..sub5 filled in."""
        offer = offer_of(store, holder.partner_id, offer_id)
        approved = {"approved": True, "refused": False}.get(offer["relationship"])
        if not may_run(offer["visibility"], approved):
            raise ApiError(403, "not_approved", "you are not approved for this offer yet; apply first")
        subs = dict(zip(SUB_NAMES, (sub1, sub2, sub3, sub4, sub5), strict=True))
        return {
            "offer_id": offer_id,
            "url": tracking_link(
                tracking_url, offer_id, holder.partner_id, {k: v for k, v in subs.items() if v}
            ),
        }

    @router.get("/report", response_model=None)
    def report(
        holder: KeyHolder = me,
        first: str | None = Query(None, alias="from"),
        last: str | None = Query(None, alias="to"),
        tz: str | None = None,
        group_by: str = "day",
    ) -> JSONResponse:
        """Clicks, unique clicks, conversions, CVR (%), EPC and payout per day (in ``tz``),
        offer or sub, over whole days ``from``..``to`` (default: the last 30 days). Answered
        as built (strings and integers only), without a second validation pass."""
        chosen = grouping(group_by, PARTNER_GROUPINGS)
        span = report_window(first, last, tz)
        rows = read_report(store, span, chosen, holder.partner_id)
        return JSONResponse(report_out(rows, span, chosen, admin=False))

    @router.get("/conversions")
    def conversions(
        holder: KeyHolder = me,
        limit: int = Query(100, ge=1, le=500),
        after: str | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """This partner's conversions, oldest first, with status and (rejected) reason."""
        key = decode_cursor(after) if after is not None else None
        rows = store.conversions(holder.partner_id, limit + 1, key, status)
        page = rows[:limit]
        last = page[-1] if page else None
        next_key = (
            encode_cursor(ConversionKey(last["converted_at"], last["conversion_id"]))
            if len(rows) > limit and last is not None
            else None
        )
        return {"conversions": [conversion_out(row) for row in page], "next": next_key}

    @router.get("/balance")
    def balance(holder: KeyHolder = me) -> dict[str, Any]:
        """Per currency: accrued, pending, payable and paid (from the gateway's views)."""
        return {"partner_id": holder.partner_id, "balances": balance_out(store.balance(holder.partner_id))}

    @router.get("/statements", response_model=None)
    def statements(holder: KeyHolder = me, format: str = "json") -> dict[str, Any] | Response:
        """This partner's statements (``?format=csv`` for a spreadsheet)."""
        rows = [statement_out(row) for row in store.statements(holder.partner_id)]
        if format == "csv":
            return PlainTextResponse(
                to_csv(STATEMENT_COLUMNS, rows),
                media_type="text/csv",
                headers={
                    "Content-Disposition": f'attachment; filename="statements-{date.today().isoformat()}.csv"'
                },
            )
        if format != "json":
            raise ApiError(422, "invalid_request", "format: json or csv", field="format")
        return {"statements": rows}

    @router.get("/postbacks")
    def postbacks(holder: KeyHolder = me, limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
        """What became of this partner's postbacks, newest first (URLs with secrets masked)."""
        return {"postbacks": [postback_out(row) for row in store.postbacks(holder.partner_id, limit)]}

    return router


def admin_router(store: Gateway, admin_token: str) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[admin_auth(admin_token)])

    @router.get("/reports")
    def reports(
        first: str | None = Query(None, alias="from"),
        last: str | None = Query(None, alias="to"),
        tz: str | None = None,
        group_by: str = "day",
        partner_id: str | None = None,
    ) -> dict[str, Any]:
        """Every partner's figures (or one's), with revenue and profit (revenue - payout)."""
        chosen = grouping(group_by, tuple(GroupBy))
        span = report_window(first, last, tz)
        return report_out(read_report(store, span, chosen, partner_id), span, chosen, admin=True)

    return router


def mount_api(
    app: FastAPI, store: Gateway, guard: Guard, partners: PartnersClient, tracking_url: str, admin_token: str
) -> None:
    app.include_router(partner_router(store, guard, partners, tracking_url))
    app.include_router(admin_router(store, admin_token))
