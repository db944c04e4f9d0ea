"""The conversion review queue: conversions filtered (pending by default), each with its
decision trace, approved, rejected, reversed or adjusted one at a time or in bulk.

A bulk review is the same attribution call made for each chosen conversion, a few at a
time, as the signed-in person: the page says how many were changed and names every one
that was not, with the service's reason (a conversion someone else changed meanwhile
is ``409``, never changed twice).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import CONSOLE, Refused, segment
from afflux_console.entrypoints.browser_session import Form
from afflux_console.entrypoints.pages import NOTICES, Console, PageError, Viewer
from afflux_console.entrypoints.pages_partners import optional

PAGE = 50
STATUSES = ("pending", "approved", "rejected", "reversed")
ACTIONS = {"approve": "approved", "reject": "rejected", "reverse": "reversed"}
MAX_BULK = 500
IN_FLIGHT = 8


@dataclass(frozen=True)
class Outcome:
    conversion_id: str
    status: int
    message: str | None = None


def _day_bound(value: str | None, end: bool) -> str | None:
    """A day typed in the filter as the instant the API takes (a day's start, or the
    next day's start for ``to``), UTC."""
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value).date()
    except ValueError:
        raise PageError(422, f"Not a date: {value!r} (YYYY-MM-DD).") from None
    return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC).isoformat()


async def queue(
    console: Console,
    viewer: Viewer,
    request: Request,
    outcomes: list[Outcome] | None = None,
    status: int = 200,
) -> Response:
    params = {
        name: request.query_params.get(name) or None
        for name in ("status", "partner_id", "offer_id", "from", "to", "after")
    }
    if "status" not in request.query_params:
        params["status"] = "pending"
    if params["status"] not in (None, *STATUSES):
        raise PageError(422, f"Unknown status {params['status']!r}.")
    page = await console.read(
        viewer,
        "attribution",
        "/v1/conversions",
        limit=PAGE,
        status=params["status"],
        partner_id=params["partner_id"],
        offer_id=params["offer_id"],
        after=params["after"],
        **{"from": _day_bound(params["from"], False), "to": _day_bound(params["to"], True)},
    )
    rows = page.get("conversions", [])
    names = await console.names.many(
        viewer.token,
        {"partner": [r.get("partner_id") for r in rows], "offer": [r.get("offer_id") for r in rows]},
    )
    failed = [o for o in outcomes or [] if o.status >= 300]
    return console.page(
        "conversions.html",
        viewer,
        status,
        conversions=rows,
        next=page.get("next"),
        params=params,
        statuses=STATUSES,
        names=names,
        notice=console.notice(request),
        failed=failed,
        changed=sum(1 for o in outcomes or [] if o.status < 300),
        offers=await console.names.offers(viewer.token),
    )


async def review_one(
    console: Console, viewer: Viewer, conversion_id: str, body: dict[str, Any], limit: asyncio.Semaphore
) -> Outcome:
    async with limit:
        try:
            answer = await console.write(
                viewer, "POST", "attribution", f"/v1/conversions/{segment(conversion_id)}/status", body
            )
        except Refused as refused:
            if refused.status in (401, 403):  # signed out, or forbidden: the error page
                raise
            return Outcome(conversion_id, refused.status, refused.message)
    return Outcome(conversion_id, answer.status)


def status_body(form: Form) -> dict[str, Any]:
    action = form.get("action")
    if action not in ACTIONS:
        raise PageError(422, "Choose approve, reject or reverse.")
    body: dict[str, Any] = {"status": ACTIONS[action]}
    if form.get("reason"):
        body["reason"] = form.get("reason")[:200]
    if form.get("note"):
        body["note"] = form.get("note")[:2000]
    return body


async def bulk(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    chosen = list(dict.fromkeys(form.all("conversion")))[:MAX_BULK]
    if not chosen:
        return await queue(
            console, viewer, request, [Outcome("", 422, "Tick the conversions to review first.")], 422
        )
    body = status_body(form)
    limit = asyncio.Semaphore(IN_FLIGHT)
    outcomes = list(await asyncio.gather(*(review_one(console, viewer, c, body, limit) for c in chosen)))
    failed = [o for o in outcomes if o.status >= 300]
    if not failed:
        return console.done(f"/console/conversions{_back(form)}", f"reviewed_{body['status']}")
    return await queue(
        console, viewer, request, outcomes, failed[0].status if len(failed) == len(outcomes) else 200
    )


def _back(form: Form) -> str:
    back = form.get("back")
    return back if back.startswith("?") and "\n" not in back and len(back) < 2000 else ""


async def detail(
    console: Console,
    viewer: Viewer,
    conversion_id: str,
    request: Request | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    conversion, audit = await asyncio.gather(
        console.read(viewer, "attribution", f"/v1/conversions/{segment(conversion_id)}"),
        optional(console.read(viewer, CONSOLE, "/v1/audit", subject=conversion_id, limit=20)),
    )
    names = await console.names.many(
        viewer.token, {"partner": [conversion.get("partner_id")], "offer": [conversion.get("offer_id")]}
    )
    return console.page(
        "conversion.html",
        viewer,
        status,
        c=conversion,
        names=names,
        error=error,
        audit=(audit or {}).get("items", []),
        staff={**await console.names.staff(), **names["partner"], **names["offer"]},
        notice=console.notice(request) if request else None,
    )


async def change(console: Console, request: Request, conversion_id: str, adjust: bool) -> Response:
    viewer, form = await console.posted(request)
    path = f"/v1/conversions/{segment(conversion_id)}"
    try:
        if adjust:
            body: dict[str, Any] = {"payout": form.get("payout")}
            if form.get("reason"):
                body["reason"] = form.get("reason")[:200]
            await console.write(viewer, "POST", "attribution", f"{path}/adjust", body)
        else:
            await console.write(viewer, "POST", "attribution", f"{path}/status", status_body(form))
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await detail(console, viewer, conversion_id, error=refused.message, status=refused.status)
    return console.done(
        f"/console/conversions/{segment(conversion_id)}", "adjusted_payout" if adjust else "reviewed"
    )


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/conversions")
    async def conversions(request: Request) -> Response:
        return await queue(console, await console.viewer(request), request)

    @router.post("/console/conversions/review")
    async def review(request: Request) -> Response:
        return await bulk(console, request)

    @router.get("/console/conversions/{conversion_id}")
    async def conversion(request: Request, conversion_id: str) -> Response:
        return await detail(console, await console.viewer(request), conversion_id, request)

    @router.post("/console/conversions/{conversion_id}/status")
    async def status(request: Request, conversion_id: str) -> Response:
        return await change(console, request, conversion_id, adjust=False)

    @router.post("/console/conversions/{conversion_id}/adjust")
    async def adjust(request: Request, conversion_id: str) -> Response:
        return await change(console, request, conversion_id, adjust=True)

    NOTICES.update(
        {
            "reviewed_approved": "The chosen conversions were approved.",
            "reviewed_rejected": "The chosen conversions were rejected.",
            "reviewed_reversed": "The chosen conversions were reversed.",
            "reviewed": "The conversion's status was changed.",
            "adjusted_payout": "The conversion's payout was adjusted.",
        }
    )
    return router
