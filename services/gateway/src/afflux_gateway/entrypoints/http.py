"""The gateway's HTTP API: ``/v1/me/...`` for the partner its ``X-Api-Key`` names, and
the admin report. Every partner route takes the partner from the key, never from the
request, so ids of another partner in a path or query find nothing of theirs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.service_clients import PartnersClient, PartnersUnavailable
from afflux_gateway.application.reads import (
    ConversionKey,
    KeyHolder,
    Ledger,
    LedgerUnavailable,
    ReportRow,
    Reports,
    Views,
    offers_for,
)
from afflux_gateway.domain.access import may_run, tracking_link
from afflux_gateway.domain.conversions import Kind
from afflux_gateway.domain.report import PARTNER_GROUPINGS, GroupBy, InvalidReport, Window, window
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_gateway.entrypoints.link_subs import LinkSubs
from afflux_gateway.entrypoints.payout_profile import profile_router
from afflux_gateway.entrypoints.present import (
    STATEMENT_COLUMNS,
    conversion_out,
    postback_out,
    report_out,
    statement_out,
    to_csv,
)
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.cursor import after_param, encode_cursor
from afflux_plumbing.http import ApiError, NotFound, admin_auth


def report_window(first: str | None, last: str | None, tz: str | None) -> Window:
    try:
        return window(first, last, tz, datetime.now(UTC))
    except InvalidReport as error:
        raise ApiError(422, "invalid_request", str(error), field=error.field) from error


def read_report(
    reports: Reports, span: Window, group_by: GroupBy, partner_id: str | None, top: int | None = None
) -> list[ReportRow]:
    try:
        return reports.report(span, group_by, partner_id, top)
    except InvalidReport as error:
        raise ApiError(422, "invalid_request", str(error), field=error.field) from error


def grouping(value: str, allowed: tuple[GroupBy, ...]) -> GroupBy:
    chosen = next((g for g in allowed if g.value == value), None)
    if chosen is None:
        names = "|".join(g.value for g in allowed)
        raise ApiError(422, "invalid_request", f"group_by: one of {names}", field="group_by")
    return chosen


def offer_of(views: Views, partner_id: str, offer_id: str) -> dict[str, Any]:
    """The offer as this partner sees it; 404 when it may not see it (or it is unknown)."""
    offers = offers_for(views, partner_id, offer_id)
    if not offers:
        raise NotFound("offer_not_found", f"no offer {offer_id!r} available to you")
    return offers[0]


def runnable_offer(views: Views, partner_id: str, offer_id: str) -> dict[str, Any]:
    """The offer as this partner sees it, if it may run it (tracking's rule): 404 when it may
    not see it, 403 when it may see it but not run it (not approved yet)."""
    offer = offer_of(views, partner_id, offer_id)
    approved = {"approved": True, "refused": False}.get(offer["relationship"])
    if not may_run(offer["visibility"], approved):
        raise ApiError(403, "not_approved", "you are not approved for this offer yet; apply first")
    return offer


async def balances_of(ledger: Ledger, partner_id: str) -> dict[str, Any]:
    """The partner's balance exactly as payouts holds it (503 while payouts cannot say)."""
    try:
        return {"partner_id": partner_id, "balances": await ledger.balances(partner_id)}
    except LedgerUnavailable as error:
        raise ApiError(
            503,
            "unavailable",
            "the balance cannot be read right now; retry later",
            headers={"Retry-After": "5"},
        ) from error


def conversions_page(
    views: Views, partner_id: str, limit: int, after: str | None, status: str | None, kind: str | None = None
) -> dict[str, Any]:
    found = after_param(after)
    key = ConversionKey(*found) if found is not None else None
    rows = views.conversions(partner_id, limit + 1, key, status, kind)
    page = rows[:limit]
    last = page[-1] if page else None
    following = (
        encode_cursor(last["converted_at"], last["conversion_id"])
        if len(rows) > limit and last is not None
        else None
    )
    return {"conversions": [conversion_out(row) for row in page], "next": following}


def statements_csv(rows: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(
        to_csv(STATEMENT_COLUMNS, rows),
        media_type="text/csv",
        headers={
            **(headers or {}),
            "Content-Disposition": f'attachment; filename="statements-{date.today().isoformat()}.csv"',
        },
    )


def partner_router(
    views: Views, guard: Guard, partners: PartnersClient, ledger: Ledger, tracking_url: str
) -> APIRouter:
    router = APIRouter(prefix="/v1/me", tags=["partner"])
    me = partner_auth(guard)

    @router.get("")
    def who_am_i(holder: KeyHolder = me) -> dict[str, Any]:
        """The partner this key belongs to."""
        row = views.partner(holder.partner_id)
        return {
            "partner_id": holder.partner_id,
            "key_id": holder.key_id,
            **{name: row[name] if row else None for name in ("name", "email", "status")},
        }

    @router.get("/offers")
    def offers(holder: KeyHolder = me) -> dict[str, Any]:
        """Active offers this partner may run or apply for, with its own payout terms."""
        return {"offers": offers_for(views, holder.partner_id)}

    @router.post("/offers/{offer_id}/apply", status_code=201, response_model=None)
    async def apply(offer_id: str, holder: KeyHolder = me) -> JSONResponse:
        """Apply for an offer you can see: a public one approves you at once, one that
        requires approval becomes a pending application the advertiser decides on (the
        partners service records it and puts it on the log). Idempotent: applying again
        answers 200 with the relationship as it is; a declined one is 409."""
        await run_in_threadpool(offer_of, views, holder.partner_id, offer_id)
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
        subs: LinkSubs,
        holder: KeyHolder = me,
    ) -> dict[str, Any]:
        """This partner's tracking link to the offer, with sub1..sub5 filled in."""
        runnable_offer(views, holder.partner_id, offer_id)
        return {"offer_id": offer_id, "url": tracking_link(tracking_url, offer_id, holder.partner_id, subs)}

    @router.get("/report", response_model=None)
    def report(
        holder: KeyHolder = me,
        first: str | None = Query(None, alias="from"),
        last: str | None = Query(None, alias="to"),
        tz: str | None = None,
        group_by: str = "day",
    ) -> JSONResponse:
        """Clicks, unique clicks, conversions, CVR (%), EPC and payout per day (in ``tz``),
        offer, sub, or the visitor's country or device (as tracking read them from the
        click), over whole days ``from``..``to`` (default: the last 30 days). Answered
        as built (strings and integers only), without a second validation pass."""
        chosen = grouping(group_by, PARTNER_GROUPINGS)
        span = report_window(first, last, tz)
        rows = read_report(views, span, chosen, holder.partner_id)
        return JSONResponse(report_out(rows, span, chosen, admin=False))

    @router.get("/conversions")
    def conversions(
        holder: KeyHolder = me,
        limit: int = Query(100, ge=1, le=500),
        after: str | None = Query(None, description="the `next` cursor of the previous page"),
        status: str | None = None,
        kind: Kind | None = Query(  # noqa: B008
            None, description="conversion, cpc (a priced click) or cpm (a priced thousand)"
        ),
    ) -> dict[str, Any]:
        """This partner's conversions and priced traffic (under payouts' ids for it), oldest
        first, each as its status is now (approved on appeal, reversed, adjusted...) with
        the reason of a rejected or held one."""
        return conversions_page(views, holder.partner_id, limit, after, status, kind.value if kind else None)

    @router.get("/balance")
    async def balance(holder: KeyHolder = me) -> dict[str, Any]:
        """Per currency: accrued, pending, payable and paid, exactly as the payouts ledger
        holds them (the gateway asks payouts; it keeps no second ledger)."""
        return await balances_of(ledger, holder.partner_id)

    @router.get("/statements", response_model=None)
    def statements(holder: KeyHolder = me, format: str = "json") -> dict[str, Any] | Response:
        """This partner's statements (``?format=csv`` for a spreadsheet)."""
        rows = [statement_out(row) for row in views.statements(holder.partner_id)]
        if format == "csv":
            return statements_csv(rows)
        if format != "json":
            raise ApiError(422, "invalid_request", "format: json or csv", field="format")
        return {"statements": rows}

    @router.get("/postbacks")
    def postbacks(holder: KeyHolder = me, limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
        """What became of this partner's postbacks, newest first (URLs with secrets masked)."""
        return {"postbacks": [postback_out(row) for row in views.postbacks(holder.partner_id, limit)]}

    return router


def admin_router(reports: Reports, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[admin_auth(credentials)])

    @router.get("/reports", openapi_extra=needs("gateway.reports.read"))
    def reports_across_partners(
        first: str | None = Query(None, alias="from"),
        last: str | None = Query(None, alias="to"),
        tz: str | None = None,
        group_by: str = "day",
        partner_id: str | None = None,
        top: int | None = Query(
            None, ge=1, le=1000, description="only the N groups with the most revenue (then payout), "
            "largest first; the totals are those of the groups returned"
        ),
    ) -> dict[str, Any]:
        """Every partner's figures (or one's), with revenue and profit (revenue - payout)."""
        chosen = grouping(group_by, tuple(GroupBy))
        span = report_window(first, last, tz)
        return report_out(read_report(reports, span, chosen, partner_id, top), span, chosen, admin=True)

    return router


def mount_api(
    app: FastAPI,
    views: Views,
    guard: Guard,
    partners: PartnersClient,
    ledger: Ledger,
    tracking_url: str,
    credentials: Credentials,
) -> None:
    app.include_router(partner_router(views, guard, partners, ledger, tracking_url))
    app.include_router(profile_router(guard, partners))
    app.include_router(admin_router(views, credentials))
