"""Partners: the list (filter, search, pages), one partner in detail (relationships,
balance, statements, keys, audit), the changes a manager or finance makes to one, and
the applications queue.

The applications queue holds two kinds: partners who signed up (the partners
service's ``/v1/applications`` when it serves it, else the partners ``pending``) and
partners asking to run an offer that requires approval (each offer's ``pending``
relationships). Approving or declining is the partners API's own change, made as the
signed-in person.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.names import MAX_OFFERS
from afflux_console.adapters.service_apis import CONSOLE, Refused, Unavailable, segment
from afflux_console.entrypoints.browser_session import Form
from afflux_console.entrypoints.pages import NOTICES, Console, PageError, Viewer

PAGE = 50
STATUSES = ("pending", "active", "inactive", "suspended", "rejected")
FREQUENCIES = ("weekly", "biweekly", "bimonthly", "monthly", "two_months", "quarterly", "manual")
STATUS_ACTIONS = {
    "active": "Activate",
    "inactive": "Deactivate",
    "suspended": "Suspend",
}


async def relationships_of(console: Console, viewer: Viewer, partner_id: str) -> list[dict[str, Any]]:
    """The partner's relationship with each offer that has one (read a page of 500 at a
    time from the partners service, not once per offer), each with its offer as the
    console knows it."""
    offers, found = await asyncio.gather(
        console.names.offers(viewer.token), _partner_relationships(console, viewer, partner_id)
    )
    by_id = {str(offer["offer_id"]): offer for offer in offers}
    return [{**row, "offer": by_id.get(str(row["offer_id"])) or _unnamed(str(row["offer_id"]))}
            for row in found]


def _unnamed(offer_id: str) -> dict[str, Any]:
    """An offer the names cache does not hold yet (created a moment ago): shown by its id."""
    return {"offer_id": offer_id, "name": offer_id}


async def _partner_relationships(console: Console, viewer: Viewer, partner_id: str) -> list[dict[str, Any]]:
    path = f"/v1/partners/{segment(partner_id)}/relationships"
    found: list[dict[str, Any]] = []
    after = None
    while len(found) < MAX_OFFERS:
        page = await console.read(viewer, "partners", path, limit=500, after=after)
        found += page.get("relationships", [])
        after = page.get("next")
        if not after:
            break
    return found


async def partners_list(console: Console, viewer: Viewer, request: Request) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("status", "tag", "q", "after")}
    if params["status"] not in (None, *STATUSES):
        raise PageError(422, f"Unknown status {params['status']!r}.")
    page = await console.read(viewer, "partners", "/v1/partners", limit=PAGE, **params)
    partners = page.get("partners", [])
    console.names.remember("partner", partners)
    return console.page(
        "partners.html",
        viewer,
        partners=partners,
        next=page.get("next"),
        params=params,
        statuses=STATUSES,
        frequencies=FREQUENCIES,
        notice=console.notice(request),
    )


async def partner_detail(
    console: Console,
    viewer: Viewer,
    partner_id: str,
    notice: str | None = None,
    error: str | None = None,
    issued_key: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    path = f"/v1/partners/{segment(partner_id)}"
    partner = await console.read(viewer, "partners", path)
    keys, balance, statements, audit, relationships, report, profile = await asyncio.gather(
        console.read(viewer, "partners", f"{path}/api-keys"),
        optional(console.read(viewer, "payouts", f"{path}/balance")),
        optional(console.read(viewer, "payouts", "/v1/statements", partner_id=partner_id, limit=20)),
        optional(console.read(viewer, CONSOLE, "/v1/audit", subject=partner_id, limit=20)),
        relationships_of(console, viewer, partner_id),
        optional(
            console.read(
                viewer,
                "gateway",
                "/v1/reports",
                group_by="offer",
                partner_id=partner_id,
                **{"from": (datetime.now(UTC).date() - timedelta(days=29)).isoformat()},
            )
        ),
        optional(console.read(viewer, "partners", f"{path}/payout-profile")),
    )
    offer_names = {str(r["offer"]["offer_id"]): str(r["offer"]["name"]) for r in relationships}
    staff = {**await console.names.staff(), **offer_names, partner_id: partner["name"]}
    listed = (statements or {}).get("statements", [])
    return console.page(
        "partner.html",
        viewer,
        status,
        partner=partner,
        keys=keys.get("api_keys", []),
        balance=balance,
        statements=listed,
        invoices=await invoice_numbers(console, viewer, listed),
        audit=(audit or {}).get("items", []),
        relationships=relationships,
        report=report,
        staff=staff,
        actions=STATUS_ACTIONS,
        notice=notice,
        error=error,
        issued_key=issued_key,
        offer_names=offer_names,
        profile=profile,
    )


INVOICED = ("payable", "paid")
"""The statuses of a statement payouts invoices."""


async def invoice_numbers(console: Console, viewer: Viewer,
                          statements: list[dict[str, Any]]) -> dict[str, str]:
    """Each invoiced statement's invoice number, asked of payouts as the viewer (every staff
    role reads invoices); one not issued yet, or unreadable now, is left without one."""
    asked = [str(s["statement_id"]) for s in statements if s.get("status") in INVOICED]
    found = await asyncio.gather(*(
        optional(console.read(viewer, "payouts", f"/v1/statements/{segment(sid)}/invoice")) for sid in asked))
    return {sid: str(body["invoice_number"]) for sid, body in zip(asked, found, strict=True)
            if isinstance(body, dict) and body.get("invoice_number")}


async def optional(read: Any) -> Any:
    """A part of a page another role or service may not give: None instead of failing it."""
    try:
        return await read
    except (Refused, Unavailable):
        return None


def partner_body(form: Form) -> dict[str, Any]:
    body: dict[str, Any] = {"name": form.get("name"), "email": form.get("email")}
    for name in ("type", "manager"):
        if form.get(name):
            body[name] = form.get(name)
    tags = [tag.strip() for tag in form.get("tags").split(",") if tag.strip()]
    if tags:
        body["tags"] = tags
    if form.get("currency"):
        body["billing"] = {
            "currency": form.get("currency").upper(),
            "frequency": form.get("frequency") or "monthly",
            "minimum_payout": form.get("minimum_payout") or "0",
        }
    return body


async def partner_change(console: Console, request: Request, partner_id: str, change: str) -> Response:
    """One change to a partner, by name; the service's refusal is shown on the partner's page."""
    viewer, form = await console.posted(request)
    path = f"/v1/partners/{segment(partner_id)}"
    try:
        if change == "status":
            await console.write(viewer, "POST", "partners", f"{path}/status", {"status": form.get("status")})
            return console.done(f"/console/partners/{segment(partner_id)}", "partner_status")
        if change == "key":
            issued = (await console.write(viewer, "POST", "partners", f"{path}/api-keys")).body
            return await partner_detail(console, viewer, partner_id, issued_key=issued, status=201)
        if change == "revoke":
            key = form.get("key_id")
            await console.write(viewer, "DELETE", "partners", f"{path}/api-keys/{segment(key)}")
            return console.done(f"/console/partners/{segment(partner_id)}", "key_revoked")
        body = {
            "amount": form.get("amount"),
            "currency": form.get("currency").upper(),
            "reason": form.get("reason") or "adjustment",
            "note": form.get("note") or None,
        }
        await console.write(viewer, "POST", "payouts", f"{path}/adjustments", body)
        return console.done(f"/console/partners/{segment(partner_id)}", "adjusted")
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await partner_detail(console, viewer, partner_id, error=refused.message, status=refused.status)


# -- applications -------------------------------------------------------------------------


async def signups(console: Console, viewer: Viewer) -> tuple[list[dict[str, Any]], bool]:
    """Partners who applied and wait for a decision; whether the applications API serves them."""
    if await console.apis.serves("partners", "/v1/applications"):
        body = await console.read(viewer, "partners", "/v1/applications", status="pending", limit=100)
        items = body.get("applications") or body.get("items") or body.get("partners") or []
        return list(items), True
    body = await console.read(viewer, "partners", "/v1/partners", status="pending", limit=100)
    return list(body.get("partners", [])), False


async def offer_applications(console: Console, viewer: Viewer) -> list[dict[str, Any]]:
    offers = [o for o in await console.names.offers(viewer.token) if o.get("status") != "deleted"]

    async def pending(offer: dict[str, Any]) -> list[dict[str, Any]]:
        body = await console.read(
            viewer,
            "partners",
            f"/v1/offers/{segment(str(offer['offer_id']))}/partners",
            status="pending",
            limit=100,
        )
        return [{**row, "offer": offer} for row in body.get("relationships", [])]

    found = await asyncio.gather(*(pending(offer) for offer in offers))
    return [row for rows in found for row in rows]


async def applications(
    console: Console, viewer: Viewer, request: Request, error: str | None = None, status: int = 200
) -> Response:
    (people, api), asking = await asyncio.gather(
        signups(console, viewer), offer_applications(console, viewer)
    )
    names = await console.names.of(viewer.token, "partner", [row["partner_id"] for row in asking])
    console.names.remember("partner", people)
    return console.page(
        "applications.html",
        viewer,
        status,
        signups=people,
        api=api,
        asking=asking,
        names=names,
        notice=console.notice(request),
        error=error,
    )


async def decide_signup(console: Console, request: Request, partner_id: str, decision: str) -> Response:
    viewer, form = await console.posted(request)
    reason = form.get("reason") or None
    try:
        if await console.apis.serves("partners", f"/v1/applications/{{partner_id}}/{decision}"):
            await console.write(
                viewer,
                "POST",
                "partners",
                f"/v1/applications/{segment(partner_id)}/{decision}",
                {"reason": reason} if reason else {},
            )
        else:
            status = "active" if decision == "approve" else "rejected"
            await console.write(
                viewer, "POST", "partners", f"/v1/partners/{segment(partner_id)}/status", {"status": status}
            )
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await applications(console, viewer, request, refused.message, refused.status)
    return console.done("/console/applications", "approved" if decision == "approve" else "declined")


async def decide_offer(
    console: Console, request: Request, offer_id: str, partner_id: str, decision: str
) -> Response:
    viewer, _ = await console.posted(request)
    try:
        await console.write(
            viewer,
            "PUT",
            "partners",
            f"/v1/offers/{segment(offer_id)}/partners/{segment(partner_id)}",
            {"approved": decision == "approve"},
        )
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await applications(console, viewer, request, refused.message, refused.status)
    return console.done("/console/applications", "approved" if decision == "approve" else "declined")


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/partners")
    async def partners(request: Request) -> Response:
        return await partners_list(console, await console.viewer(request), request)

    @router.post("/console/partners")
    async def create(request: Request) -> Response:
        viewer, form = await console.posted(request)
        try:
            created = (
                await console.write(viewer, "POST", "partners", "/v1/partners", partner_body(form))
            ).body
        except Refused as refused:
            if refused.status in (401, 403):  # signed out, or forbidden: the error page
                raise
            page = await console.read(viewer, "partners", "/v1/partners", limit=PAGE)
            return console.page(
                "partners.html",
                viewer,
                refused.status,
                partners=page.get("partners", []),
                next=page.get("next"),
                params={},
                statuses=STATUSES,
                frequencies=FREQUENCIES,
                error=refused.message,
                given=form,
            )
        return console.done(f"/console/partners/{segment(created['partner_id'])}", "partner_created")

    @router.get("/console/partners/{partner_id}")
    async def partner(request: Request, partner_id: str) -> Response:
        viewer = await console.viewer(request)
        return await partner_detail(console, viewer, partner_id, console.notice(request))

    @router.post("/console/partners/{partner_id}/status")
    async def status(request: Request, partner_id: str) -> Response:
        return await partner_change(console, request, partner_id, "status")

    @router.post("/console/partners/{partner_id}/keys")
    async def issue_key(request: Request, partner_id: str) -> Response:
        return await partner_change(console, request, partner_id, "key")

    @router.post("/console/partners/{partner_id}/keys/revoke")
    async def revoke_key(request: Request, partner_id: str) -> Response:
        return await partner_change(console, request, partner_id, "revoke")

    @router.post("/console/partners/{partner_id}/adjustments")
    async def adjust(request: Request, partner_id: str) -> Response:
        return await partner_change(console, request, partner_id, "adjust")

    @router.get("/console/applications")
    async def queue(request: Request) -> Response:
        return await applications(console, await console.viewer(request), request)

    @router.post("/console/applications/{partner_id}/{decision}")
    async def decide(request: Request, partner_id: str, decision: str) -> Response:
        if decision not in ("approve", "decline"):
            raise PageError(404, "No such decision.")
        return await decide_signup(console, request, partner_id, decision)

    @router.post("/console/offers/{offer_id}/applications/{partner_id}/{decision}")
    async def decide_for_offer(request: Request, offer_id: str, partner_id: str, decision: str) -> Response:
        if decision not in ("approve", "decline"):
            raise PageError(404, "No such decision.")
        return await decide_offer(console, request, offer_id, partner_id, decision)

    NOTICES.update(
        {
            "partner_created": "Partner created.",
            "partner_status": "The partner's status was changed.",
            "key_revoked": "The API key was revoked: it stops working within seconds.",
            "adjusted": "The balance adjustment was recorded.",
            "approved": "Application approved.",
            "declined": "Application declined.",
        }
    )
    return router
