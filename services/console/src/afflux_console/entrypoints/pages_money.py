"""Statements (close a period, mark one paid, CSV) and partner postbacks (the delivery
log, paused hosts and resuming them).

The statements API answers a bounded list without a cursor (``limit``): the page
reads up to ``READ_STATEMENTS`` of the filtered statements and shows them a page at a
time, newest period first.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import CONSOLE, Refused, segment
from afflux_console.entrypoints.pages import NOTICES, SECURITY_HEADERS, Console, PageError, Viewer
from afflux_console.entrypoints.pages_partners import optional

PAGE = 50
READ_STATEMENTS = 1000
STATEMENT_STATUSES = ("payable", "carried_over", "paid", "refused")
POSTBACK_STATUSES = ("owed", "pending", "delivered", "failed", "skipped")
STATEMENT_COLUMNS = (
    "statement_id",
    "partner_id",
    "currency",
    "period_start",
    "period_end",
    "status",
    "total",
    "carried_over",
    "issued_at",
    "paid_at",
    "reference",
)


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not text.isdigit() or int(text) < 1:
        raise PageError(422, "page: a whole number from 1.")
    return int(text)


async def statements(
    console: Console, viewer: Viewer, request: Request, error: str | None = None, status: int = 200
) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("status", "partner_id")}
    if params["status"] not in (None, *STATEMENT_STATUSES):
        raise PageError(422, f"Unknown status {params['status']!r}.")
    body = await console.read(viewer, "payouts", "/v1/statements", limit=READ_STATEMENTS, **params)
    rows = sorted(
        body.get("statements", []),
        key=lambda r: (r.get("period_end") or "", r.get("issued_at") or ""),
        reverse=True,
    )
    number = _page_number(request)
    shown = rows[(number - 1) * PAGE : number * PAGE]
    names = await console.names.of(viewer.token, "partner", [r["partner_id"] for r in shown])
    return console.page(
        "statements.html",
        viewer,
        status,
        statements=shown,
        page=number,
        more=len(rows) > number * PAGE,
        params=params,
        statuses=STATEMENT_STATUSES,
        names=names,
        notice=console.notice(request),
        error=error,
        today=datetime.now(UTC).date().isoformat(),
    )


def _period_end(value: str) -> str:
    """The end of the day typed (UTC): the period ends at its last instant."""
    try:
        day = datetime.fromisoformat(value).date()
    except ValueError:
        raise PageError(422, f"Period end: not a date: {value!r} (YYYY-MM-DD).") from None
    end = datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
    return min(end, datetime.now(UTC) - timedelta(seconds=1)).isoformat()


async def close(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    body: dict[str, Any] = {"period_end": _period_end(form.get("period_end"))}
    if form.get("partner_id"):
        body["partner_id"] = form.get("partner_id")
    try:
        answer = await console.write(viewer, "POST", "payouts", "/v1/statements/close", body)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await statements(console, viewer, request, refused.message, refused.status)
    issued = len(answer.body.get("statements", [])) if isinstance(answer.body, dict) else 0
    return console.done("/console/statements", "closed" if issued else "closed_none")


async def statement(
    console: Console,
    viewer: Viewer,
    statement_id: str,
    request: Request | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    found, audit = await asyncio.gather(
        console.read(viewer, "payouts", f"/v1/statements/{segment(statement_id)}"),
        optional(console.read(viewer, CONSOLE, "/v1/audit", subject=statement_id, limit=20)),
    )
    lines = found.get("lines", [])
    names = await console.names.many(
        viewer.token,
        {"partner": [found.get("partner_id")], "offer": [line.get("offer_id") for line in lines[:200]]},
    )
    return console.page(
        "statement.html",
        viewer,
        status,
        s=found,
        lines=lines[:500],
        more_lines=len(lines) > 500,
        names=names,
        audit=(audit or {}).get("items", []),
        staff={**await console.names.staff(), **names["partner"], **names["offer"]},
        error=error,
        notice=console.notice(request) if request else None,
    )


async def pay(console: Console, request: Request, statement_id: str) -> Response:
    viewer, form = await console.posted(request)
    body = {"reference": form.get("reference")} if form.get("reference") else None
    try:
        await console.write(viewer, "POST", "payouts", f"/v1/statements/{segment(statement_id)}/paid", body)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await statement(console, viewer, statement_id, error=refused.message, status=refused.status)
    return console.done(f"/console/statements/{segment(statement_id)}", "paid")


async def postbacks(
    console: Console, viewer: Viewer, request: Request, error: str | None = None, status: int = 200
) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("status", "partner_id", "after")}
    if params["status"] not in (None, *POSTBACK_STATUSES):
        raise PageError(422, f"Unknown status {params['status']!r}.")
    page, paused = await asyncio.gather(
        console.read(viewer, "postbacks", "/v1/postbacks", limit=PAGE, **params),
        console.read(viewer, "postbacks", "/v1/postbacks/paused-hosts"),
    )
    rows = page.get("postbacks", [])
    names = await console.names.many(
        viewer.token,
        {"partner": [r.get("partner_id") for r in rows], "offer": [r.get("offer_id") for r in rows]},
    )
    return console.page(
        "postbacks.html",
        viewer,
        status,
        postbacks=rows,
        next=page.get("next"),
        params=params,
        statuses=POSTBACK_STATUSES,
        paused=paused.get("hosts", []),
        names=names,
        error=error,
        notice=console.notice(request),
    )


async def resume(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    try:
        await console.write(
            viewer, "POST", "postbacks", f"/v1/postbacks/paused-hosts/{segment(form.get('host'))}/resume"
        )
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await postbacks(console, viewer, request, refused.message, refused.status)
    return console.done("/console/postbacks", "resumed")


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/statements")
    async def statements_page(request: Request) -> Response:
        return await statements(console, await console.viewer(request), request)

    @router.post("/console/statements/close")
    async def close_period(request: Request) -> Response:
        return await close(console, request)

    @router.get("/console/statements/{statement_id}.csv")
    async def statement_csv(request: Request, statement_id: str) -> Response:
        viewer = await console.viewer(request)
        answer = await console.apis.raw(
            viewer.token, "payouts", f"/v1/statements/{segment(statement_id)}", {"format": "csv"}
        )
        return Response(
            answer.content,
            media_type="text/csv; charset=utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="{statement_id[:80]}.csv"',
            },
        )

    @router.get("/console/statements/{statement_id}/invoice.pdf")
    async def invoice_pdf(request: Request, statement_id: str) -> Response:
        """The statement's self-billed invoice, asked of payouts with the viewer's own
        credential (``invoices.read``); none issued yet is payouts' 404, as a page."""
        viewer = await console.viewer(request)
        answer = await console.apis.raw(
            viewer.token, "payouts", f"/v1/statements/{segment(statement_id)}/invoice.pdf", {}
        )
        return Response(
            answer.content,
            media_type="application/pdf",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="invoice-{statement_id[:80]}.pdf"',
            },
        )

    @router.get("/console/statements/{statement_id}")
    async def statement_page(request: Request, statement_id: str) -> Response:
        return await statement(console, await console.viewer(request), statement_id, request)

    @router.post("/console/statements/{statement_id}/paid")
    async def mark_paid(request: Request, statement_id: str) -> Response:
        return await pay(console, request, statement_id)

    @router.get("/console/postbacks")
    async def postbacks_page(request: Request) -> Response:
        return await postbacks(console, await console.viewer(request), request)

    @router.post("/console/postbacks/resume")
    async def resume_host(request: Request) -> Response:
        return await resume(console, request)

    NOTICES.update(
        {
            "closed": "The period was closed: its statements are below.",
            "closed_none": "The period was closed; nothing was due, so no statement was issued.",
            "paid": "The statement was marked paid.",
            "resumed": "Postbacks to that host are being sent again.",
        }
    )
    return router
