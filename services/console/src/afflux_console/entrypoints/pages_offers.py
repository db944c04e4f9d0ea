"""Offers: the list, creating and editing one (events, payouts, caps, tiers, fraud rules,
bounds, conversion security, targeting), its status and postback token, and its partners:
the relationships and their custom terms, with the targeting that narrows the offer's.

The postback token is shown once, on the page the creation or rotation answers with
(the partners API keeps only its hash).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import CONSOLE, Refused, segment
from afflux_console.entrypoints.browser_session import Form
from afflux_console.entrypoints.offer_forms import (
    CAP_METRICS,
    CAP_PERIODS,
    NEW_OFFER,
    OFFER_STATUSES,
    PAYOUT_TYPES,
    SUBS,
    TARGETING_HINTS,
    TARGETING_LISTS,
    VISIBILITIES,
    WEEKDAYS,
    FormInvalid,
    form_of,
    offer_body,
    posted_values,
    relationship_body,
    relationship_form,
    targeting_field,
    targeting_summary,
)
from afflux_console.entrypoints.pages import NOTICES, Console, PageError, Viewer
from afflux_console.entrypoints.pages_partners import optional

PAGE = 50
CHOICES = {
    "payout_types": PAYOUT_TYPES,
    "cap_metrics": CAP_METRICS,
    "cap_periods": CAP_PERIODS,
    "visibilities": VISIBILITIES,
    "subs": SUBS,
    "targeting_lists": TARGETING_LISTS,
    "targeting_hints": TARGETING_HINTS,
    "weekdays": WEEKDAYS,
}


async def offers_list(console: Console, viewer: Viewer, request: Request) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("status", "q", "after")}
    if params["status"] not in (None, *OFFER_STATUSES):
        raise PageError(422, f"Unknown status {params['status']!r}.")
    page = await console.read(viewer, "partners", "/v1/offers", limit=PAGE, **params)
    offers = page.get("offers", [])
    console.names.remember("offer", offers)
    return console.page(
        "offers.html",
        viewer,
        offers=offers,
        next=page.get("next"),
        params=params,
        statuses=OFFER_STATUSES,
        notice=console.notice(request),
    )


def offer_form_page(
    console: Console,
    viewer: Viewer,
    values: dict[str, Any],
    offer: dict[str, Any] | None,
    error: str | None = None,
    field: str | None = None,
    status: int = 200,
) -> Response:
    return console.page(
        "offer_form.html",
        viewer,
        status,
        values=values,
        offer=offer,
        error=error,
        field=field,
        targeting_at=targeting_field(field),
        statuses=OFFER_STATUSES,
        **CHOICES,
    )


async def offer_detail(
    console: Console,
    viewer: Viewer,
    offer_id: str,
    request: Request | None = None,
    token: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    path = f"/v1/offers/{segment(offer_id)}"
    standing = request.query_params.get("standing") if request else None
    after = request.query_params.get("after") if request else None
    if standing not in (None, "", "approved", "pending", "declined"):
        raise PageError(422, f"Unknown standing {standing!r}.")
    offer, relationships, audit, traffic = await asyncio.gather(
        console.read(viewer, "partners", path),
        console.read(viewer, "partners", f"{path}/partners", status=standing, after=after, limit=PAGE),
        optional(console.read(viewer, CONSOLE, "/v1/audit", subject=offer_id, limit=20)),
        optional(console.read(viewer, "attribution", f"{path}/traffic")),
    )
    rows = relationships.get("relationships", [])
    names = await console.names.of(viewer.token, "partner", [row["partner_id"] for row in rows])
    return console.page(
        "offer.html",
        viewer,
        status,
        offer=offer,
        relationships=rows,
        next=relationships.get("next"),
        standing=standing or "",
        after=after,
        names=names,
        targeting={row["partner_id"]: targeting_summary(row.get("targeting")) for row in rows},
        audit=(audit or {}).get("items", []),
        staff={**await console.names.staff(), **names, offer_id: offer["name"]},
        traffic=(traffic or {}).get("traffic", []),
        token=token,
        error=error,
        notice=console.notice(request) if request else None,
        statuses=OFFER_STATUSES,
    )


async def save_offer(console: Console, request: Request, offer_id: str | None) -> Response:
    viewer, form = await console.posted(request)
    offer = (
        None
        if offer_id is None
        else await console.read(viewer, "partners", f"/v1/offers/{segment(offer_id)}")
    )
    try:
        body = offer_body(form, creating=offer_id is None)
        if offer_id is None:
            created = (await console.write(viewer, "POST", "partners", "/v1/offers", body)).body
            return await offer_detail(
                console, viewer, created["offer_id"], token=created.get("postback_token"), status=201
            )
        await console.write(viewer, "PATCH", "partners", f"/v1/offers/{segment(offer_id)}", body)
    except FormInvalid as invalid:
        return offer_form_page(console, viewer, posted_values(form), offer, str(invalid), invalid.field, 422)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return offer_form_page(
            console, viewer, posted_values(form), offer, refused.message, refused.field, refused.status
        )
    return console.done(f"/console/offers/{segment(offer_id)}", "offer_saved")


async def offer_change(console: Console, request: Request, offer_id: str, change: str) -> Response:
    viewer, form = await console.posted(request)
    path = f"/v1/offers/{segment(offer_id)}"
    try:
        if change == "status":
            await console.write(viewer, "POST", "partners", f"{path}/status", {"status": form.get("status")})
            return console.done(f"/console/offers/{segment(offer_id)}", "offer_status")
        hours = form.get("overlap_hours") or "24"
        if not hours.isdigit():
            return await offer_detail(
                console, viewer, offer_id, error="Overlap: a whole number of hours.", status=422
            )
        rotated = (
            await console.write(
                viewer, "POST", "partners", f"{path}/postback-token/rotate", {"overlap_hours": int(hours)}
            )
        ).body
        return await offer_detail(console, viewer, offer_id, token=rotated["postback_token"])
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await offer_detail(console, viewer, offer_id, error=refused.message, status=refused.status)


async def relationship_page(
    console: Console,
    viewer: Viewer,
    offer_id: str,
    partner_id: str,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
    field: str | None = None,
) -> Response:
    """A partner's terms on an offer; after a refusal, what was posted with the message at the
    top and, for a targeting field, at that field too."""
    offer = await console.read(viewer, "partners", f"/v1/offers/{segment(offer_id)}")
    try:
        found = await console.read(
            viewer, "partners", f"/v1/offers/{segment(offer_id)}/partners/{segment(partner_id)}"
        )
    except Refused as refused:
        if refused.status != 404:
            raise
        found = None
    names = await console.names.of(viewer.token, "partner", [partner_id])
    if partner_id not in names:
        raise PageError(404, "No such partner.")
    events = [str(event["name"]) for event in offer.get("events", [])]
    return console.page(
        "relationship.html",
        viewer,
        status,
        offer=offer,
        partner_id=partner_id,
        partner_name=names[partner_id],
        relationship=found,
        values=values or relationship_form(found, events),
        offer_targeting=targeting_summary(offer.get("targeting")),
        error=error,
        field=field,
        field_error=error if field else None,
        **CHOICES,
    )


async def save_relationship(console: Console, request: Request, offer_id: str, partner_id: str) -> Response:
    viewer, form = await console.posted(request)
    try:
        body = relationship_body(form)
        await console.write(
            viewer, "PUT", "partners", f"/v1/offers/{segment(offer_id)}/partners/{segment(partner_id)}", body
        )
    except FormInvalid as invalid:
        return await relationship_page(
            console, viewer, offer_id, partner_id, _values(form), str(invalid), 422, invalid.field
        )
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await relationship_page(
            console, viewer, offer_id, partner_id, _values(form), refused.message, refused.status,
            targeting_field(refused.field),
        )
    return console.done(f"/console/offers/{segment(offer_id)}", "relationship_saved")


def _values(form: Form) -> dict[str, Any]:
    values = posted_values(form)
    values["rows"] = {
        "rcap": sum(1 for n in form.names() if n.endswith("-limit")) + 1,
        "revent": sum(1 for n in form.names() if n.startswith("revent-") and n.endswith("-name")),
    }
    return values


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/offers")
    async def offers(request: Request) -> Response:
        return await offers_list(console, await console.viewer(request), request)

    @router.get("/console/offers/new")
    async def new_offer(request: Request) -> Response:
        return offer_form_page(console, await console.viewer(request), dict(NEW_OFFER), None)

    @router.post("/console/offers")
    async def create(request: Request) -> Response:
        return await save_offer(console, request, None)

    @router.get("/console/offers/{offer_id}")
    async def offer(request: Request, offer_id: str) -> Response:
        return await offer_detail(console, await console.viewer(request), offer_id, request)

    @router.get("/console/offers/{offer_id}/edit")
    async def edit(request: Request, offer_id: str) -> Response:
        viewer = await console.viewer(request)
        found = await console.read(viewer, "partners", f"/v1/offers/{segment(offer_id)}")
        return offer_form_page(console, viewer, form_of(found), found)

    @router.post("/console/offers/{offer_id}")
    async def save(request: Request, offer_id: str) -> Response:
        return await save_offer(console, request, offer_id)

    @router.post("/console/offers/{offer_id}/status")
    async def status(request: Request, offer_id: str) -> Response:
        return await offer_change(console, request, offer_id, "status")

    @router.post("/console/offers/{offer_id}/rotate-token")
    async def rotate(request: Request, offer_id: str) -> Response:
        return await offer_change(console, request, offer_id, "rotate")

    @router.get("/console/offers/{offer_id}/partner")
    async def pick_partner(request: Request, offer_id: str) -> Response:
        """The "add a partner" form's target: the partner chosen by id (or exact search)."""
        viewer = await console.viewer(request)
        wanted = request.query_params.get("partner", "").strip()
        if not wanted:
            raise PageError(422, "Name a partner (its id, or a search that finds exactly one).")
        found = await console.read(viewer, "partners", "/v1/partners", q=wanted, limit=2)
        partners = found.get("partners", [])
        if len(partners) != 1:
            raise PageError(
                404 if not partners else 422,
                f"{'No partner' if not partners else 'More than one partner'} matches {wanted!r}.",
            )
        return await relationship_page(console, viewer, offer_id, partners[0]["partner_id"])

    @router.get("/console/offers/{offer_id}/partners/{partner_id}")
    async def relationship(request: Request, offer_id: str, partner_id: str) -> Response:
        return await relationship_page(console, await console.viewer(request), offer_id, partner_id)

    @router.post("/console/offers/{offer_id}/partners/{partner_id}")
    async def set_relationship(request: Request, offer_id: str, partner_id: str) -> Response:
        return await save_relationship(console, request, offer_id, partner_id)

    NOTICES.update(
        {
            "offer_saved": "The offer was saved.",
            "offer_status": "The offer's status was changed.",
            "relationship_saved": "The partner's terms for this offer were saved.",
        }
    )
    return router
