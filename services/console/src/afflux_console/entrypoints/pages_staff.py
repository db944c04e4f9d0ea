"""Staff and tokens (the owner's), one's own account (second factor, API tokens), and the
audit trail, over the console's own API as the signed-in person.

A new token and a second factor's secret are shown once, on the page the change answers
with. The audit page names people (the staff user behind a token too) and the partners
and offers acted on; every other subject is shown by its id.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import CONSOLE, Refused, segment
from afflux_console.entrypoints.display import instant
from afflux_console.entrypoints.pages import NOTICES, Console, PageError, Viewer
from afflux_plumbing.auth import ROLES, SCOPES

ROLE_NAMES = tuple(ROLES)
AUDIT_PAGE = 50


async def staff_page(
    console: Console,
    viewer: Viewer,
    request: Request | None,
    error: str | None = None,
    status: int = 200,
    given: dict[str, str] | None = None,
) -> Response:
    users, tokens = await asyncio.gather(
        console.read(viewer, CONSOLE, "/v1/staff/users"),
        console.read(viewer, CONSOLE, "/v1/staff/tokens", all="true"),
    )
    people = {user["user_id"]: user["name"] for user in users.get("users", [])}
    return console.page(
        "staff.html",
        viewer,
        status,
        users=users.get("users", []),
        tokens=tokens.get("tokens", []),
        people=people,
        roles=ROLE_NAMES,
        error=error,
        given=given or {},
        notice=console.notice(request) if request else None,
    )


async def create_user(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    body = {name: form.get(name) for name in ("email", "name", "role", "password")}
    try:
        await console.write(viewer, "POST", CONSOLE, "/v1/staff/users", body)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        given = {name: body[name] for name in ("email", "name", "role")}
        return await staff_page(console, viewer, None, refused.message, refused.status, given)
    return console.done("/console/staff", "user_created")


async def edit_user(console: Console, request: Request, user_id: str) -> Response:
    viewer, form = await console.posted(request)
    change: dict[str, Any] = {}
    if form.get("role"):
        change["role"] = form.get("role")
    if form.get("disabled") in ("true", "false"):
        change["disabled"] = form.get("disabled") == "true"
    try:
        await console.write(viewer, "PATCH", CONSOLE, f"/v1/staff/users/{segment(user_id)}", change)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await staff_page(console, viewer, None, refused.message, refused.status)
    return console.done("/console/staff", "user_changed")


async def account(
    console: Console,
    viewer: Viewer,
    request: Request | None,
    error: str | None = None,
    status: int = 200,
    issued: dict[str, Any] | None = None,
    enrolling: dict[str, str] | None = None,
) -> Response:
    me, tokens = await asyncio.gather(
        console.read(viewer, CONSOLE, "/v1/staff/me"),
        console.read(viewer, CONSOLE, "/v1/staff/tokens"),
    )
    own_scopes = sorted(viewer.principal.scopes or SCOPES)
    return console.page(
        "account.html",
        viewer,
        status,
        me=me,
        tokens=tokens.get("tokens", []),
        scopes=own_scopes,
        described=SCOPES,
        error=error,
        issued=issued,
        enrolling=enrolling,
        notice=console.notice(request) if request else None,
    )


async def issue_token(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    body: dict[str, Any] = {"name": form.get("name"), "scopes": form.all("scope")}
    if form.get("expires_on"):
        moment = instant(f"{form.get('expires_on')}T00:00:00+00:00")
        if moment is None:
            raise PageError(422, "Expires on: a date (YYYY-MM-DD).")
        body["expires_at"] = moment.isoformat()
    try:
        issued = (await console.write(viewer, "POST", CONSOLE, "/v1/staff/tokens", body)).body
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await account(console, viewer, None, refused.message, refused.status)
    return await account(console, viewer, None, status=201, issued=issued)


async def revoke_token(console: Console, request: Request, token_id: str) -> Response:
    viewer, form = await console.posted(request)
    back = "/console/staff" if form.get("back") == "staff" else "/console/account"
    try:
        await console.write(viewer, "DELETE", CONSOLE, f"/v1/staff/tokens/{segment(token_id)}")
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        if back == "/console/staff":
            return await staff_page(console, viewer, None, refused.message, refused.status)
        return await account(console, viewer, None, refused.message, refused.status)
    return console.done(back, "token_revoked")


async def second_factor(console: Console, request: Request, confirm: bool) -> Response:
    viewer, form = await console.posted(request)
    if viewer.principal.kind != "staff":
        raise PageError(409, "Only a staff user signed in with a password enrols a second factor.")
    path = f"/v1/staff/users/{segment(viewer.principal.name)}/totp"
    try:
        if confirm:
            await console.write(viewer, "POST", CONSOLE, f"{path}/confirm", {"code": form.get("code")})
            return console.done("/console/account", "totp_on")
        uri = (await console.write(viewer, "POST", CONSOLE, path)).body["otpauth_uri"]
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await account(console, viewer, None, refused.message, refused.status)
    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return await account(console, viewer, None, enrolling={"uri": uri, "secret": secret})


async def audit(console: Console, viewer: Viewer, request: Request) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("actor", "subject", "since", "after")}
    since = instant(params["since"]) if params["since"] else None
    if params["since"] and since is None:
        raise PageError(422, f"Since: not a date or instant: {params['since']!r}.")
    page = await console.read(
        viewer,
        CONSOLE,
        "/v1/audit",
        limit=AUDIT_PAGE,
        actor=params["actor"],
        subject=params["subject"],
        after=params["after"],
        since=since.isoformat() if since else None,
    )
    items = page.get("items", [])
    subjects = {s for item in items for s in item.get("subjects", [])}
    if params["subject"]:
        subjects.add(params["subject"])
    names = await console.names.many(viewer.token, {"partner": sorted(subjects), "offer": sorted(subjects)})
    staff = dict(await console.names.staff())
    everything = {**names["partner"], **names["offer"], **staff}
    return console.page(
        "audit.html", viewer, items=items, next=page.get("next"), params=params, names=everything, staff=staff
    )


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/staff")
    async def staff(request: Request) -> Response:
        return await staff_page(console, await console.viewer(request), request)

    @router.post("/console/staff")
    async def create(request: Request) -> Response:
        return await create_user(console, request)

    @router.post("/console/staff/{user_id}")
    async def edit(request: Request, user_id: str) -> Response:
        return await edit_user(console, request, user_id)

    @router.get("/console/account")
    async def own(request: Request) -> Response:
        return await account(console, await console.viewer(request), request)

    @router.post("/console/account/tokens")
    async def new_token(request: Request) -> Response:
        return await issue_token(console, request)

    @router.post("/console/tokens/{token_id}/revoke")
    async def revoke(request: Request, token_id: str) -> Response:
        return await revoke_token(console, request, token_id)

    @router.post("/console/account/totp")
    async def enrol(request: Request) -> Response:
        return await second_factor(console, request, confirm=False)

    @router.post("/console/account/totp/confirm")
    async def confirm(request: Request) -> Response:
        return await second_factor(console, request, confirm=True)

    @router.get("/console/audit")
    async def audit_page(request: Request) -> Response:
        return await audit(console, await console.viewer(request), request)

    NOTICES.update(
        {
            "user_created": "The staff user was created: they can sign in now.",
            "user_changed": "The staff user was changed (it applies at once, everywhere).",
            "token_revoked": "The token was revoked: it stops working within seconds.",
            "totp_on": "Your second factor is on: sign-ins ask for a code from now on.",
        }
    )
    return router
