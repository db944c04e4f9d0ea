"""Signing in and out, and the dashboard.

Sign-in asks the console's own API for a session (``POST /v1/staff/sessions``: the
same throttle per address and per email as any client, the browser's address handed
on) and keeps its token in the session cookie. A person may instead sign in with a
token (the bootstrap admin token, or a staff API token): ``make run`` prints a link
whose fragment carries the admin token, which the page's script puts in that form (a
fragment never reaches a server or its logs). Signing out ends the session on the
server (``DELETE /v1/staff/sessions/current``), then drops the cookie.

The dashboard is the gateway's report across partners (``GET /v1/reports``): today
and the last 30 days (UTC days), with a chart per figure and the leading partners and
offers of the period (the gateway's ``top`` eight of each: it reads them from its
rollups and sends eight rows, not one per partner).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from afflux_console.adapters.service_apis import CONSOLE, Refused, Unavailable
from afflux_console.entrypoints.browser_session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    drop_cookie,
    new_signin_token,
    read_form,
    set_cookie,
    signin_token_ok,
)
from afflux_console.entrypoints.console_chart import Series, daily_chart
from afflux_console.entrypoints.display import instant
from afflux_console.entrypoints.pages import NOTICES, SECURITY_HEADERS, Console, Viewer
from afflux_plumbing.http import client_address

LEADERS = 8
"""How many partners and offers the dashboard names as leading the period."""
TOKEN_COOKIE_SECONDS = 12 * 3600
"""How long the browser keeps a token signed in with (a session's own expiry otherwise)."""
FIGURES = (
    ("clicks", "Clicks", "#2458b8"),
    ("conversions", "Conversions", "#1c7a4a"),
    ("payout", "Payout", "#a4541a"),
    ("revenue", "Revenue", "#6a3fb5"),
    ("profit", "Profit", "#0f6e7a"),
)


class SignIn:
    def __init__(self, console: Console) -> None:
        self.console = console

    def page(
        self, error: str | None = None, status: int = 200, email: str = "", totp: bool = False
    ) -> Response:
        token = new_signin_token()
        response = self.console.page(
            "signin.html", None, status, error=error, csrf=token, email=email, totp=totp
        )
        set_cookie(response, SIGNIN_COOKIE, token, 900, self.console.secure)
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await read_form(request)
        if not signin_token_ok(form.get("csrf"), request.cookies.get(SIGNIN_COOKIE)):
            return self.page("The sign-in form expired; please try again.", 403)
        if form.has("token"):
            return await self.with_token(form.get("token"))
        email = form.get("email")
        body = {"email": email, "password": form.get("password"), "totp": form.get("totp") or None}
        address = client_address(request.scope, self.console.proxies) or "127.0.0.1"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app, client=(address, 0)), base_url="http://console"
        ) as client:
            answer = await client.post("/v1/staff/sessions", json=body)
        if answer.status_code == 201:
            session = answer.json()
            expires = instant(session["expires_at"]) or datetime.now(UTC)
            seconds = max(int((expires - datetime.now(UTC)).total_seconds()), 60)
            return self.signed_in(session["token"], seconds)
        return self.refused(answer, email, bool(body["totp"]))

    def refused(self, answer: httpx.Response, email: str, had_code: bool) -> Response:
        error = (answer.json() if answer.content else {}).get("error", {})
        code = error.get("code")
        if code == "totp_required":
            return self.page("Enter the code from your authenticator app.", 401, email, totp=True)
        if answer.status_code == 429:
            wait = answer.headers.get("Retry-After", "a few")
            return self.page(
                f"Too many failed sign-ins; try again in {wait} seconds.",
                429,
                email,
            )
        if answer.status_code == 401:
            return self.page("That email, password or code is not right.", 401, email, totp=had_code)
        return self.page(str(error.get("message") or "Signing in failed."), answer.status_code, email)

    async def with_token(self, token: str) -> Response:
        principal = await self.console.credentials.authenticate_eventually(token) if token else None
        if principal is None:
            return self.page("That token is not valid (unknown, expired or revoked).", 401)
        return self.signed_in(token, TOKEN_COOKIE_SECONDS)

    def signed_in(self, token: str, seconds: int) -> Response:
        response = RedirectResponse("/console/dashboard", status_code=303, headers=SECURITY_HEADERS)
        set_cookie(response, SESSION_COOKIE, token, seconds, self.console.secure)
        drop_cookie(response, SIGNIN_COOKIE, self.console.secure)
        return response

    async def sign_out(self, request: Request) -> Response:
        viewer, _ = await self.console.posted(request)
        if viewer.principal.kind == "staff":
            # A session already unusable or ended: dropping the cookie is what is left.
            with contextlib.suppress(Refused, Unavailable):
                await self.console.write(viewer, "DELETE", CONSOLE, "/v1/staff/sessions/current")
        response = RedirectResponse("/console/signin", status_code=303, headers=SECURITY_HEADERS)
        drop_cookie(response, SESSION_COOKIE, self.console.secure)
        return response


def _series(rows: Sequence[Mapping[str, Any]], days: Sequence[date], currency: str) -> list[Series]:
    by_day = {row["day"]: row for row in rows if (row.get("currency") or "") == currency}
    series = []
    for key, label, color in FIGURES:
        money = key in ("payout", "revenue", "profit")
        values = [Decimal(str(by_day.get(d.isoformat(), {}).get(key) or 0)) for d in days]
        shown = [f"{v:,} {currency}" if money else f"{int(v):,}" for v in values]
        series.append(Series(f"{label} ({currency})" if money and currency else label, values, shown, color))
    return series


def _leaders(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The gateway's top rows (by revenue, then payout), with any row over one currency
    still in order."""
    return sorted(
        rows, key=lambda row: Decimal(str(row.get("revenue") or row.get("payout") or 0)), reverse=True
    )[:LEADERS]


async def dashboard(console: Console, viewer: Viewer, request: Request) -> Response:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=29)
    span = {"from": first.isoformat(), "to": today.isoformat()}
    by_day, by_partner, by_offer = await asyncio.gather(
        console.read(viewer, "gateway", "/v1/reports", group_by="day", **span),
        *(
            console.read(viewer, "gateway", "/v1/reports", group_by=group, top=LEADERS, **span)
            for group in ("partner", "offer")
        ),
    )
    totals = by_day.get("totals", [])
    currency = totals[0]["currency"] or "" if totals else ""
    days = [first + timedelta(days=n) for n in range(30)]
    today_rows = [row for row in by_day.get("rows", []) if row.get("day") == today.isoformat()]
    partners = _leaders(by_partner.get("rows", []))
    offers = _leaders(by_offer.get("rows", []))
    names = await console.names.many(
        viewer.token,
        {"partner": [r.get("partner") for r in partners], "offer": [r.get("offer") for r in offers]},
    )
    chart = daily_chart(
        days,
        _series(by_day.get("rows", []), days, currency),
        "Clicks, conversions, payout, revenue and profit per day, last 30 days",
    )
    return console.page(
        "dashboard.html",
        viewer,
        today=today_rows,
        totals=totals,
        chart=Markup(chart),
        partners=partners,
        offers=offers,
        names=names,
        first=first,
        last=today,
        notice=console.notice(request),
    )


def routes(console: Console) -> APIRouter:
    router = APIRouter()
    signin = SignIn(console)

    @router.get("/console")
    async def home(request: Request) -> Response:
        await console.viewer(request)
        return RedirectResponse("/console/dashboard", status_code=303, headers=SECURITY_HEADERS)

    @router.get("/console/signin")
    def signin_page() -> Response:
        return signin.page()

    @router.post("/console/signin")
    async def sign_in(request: Request) -> Response:
        return await signin.sign_in(request)

    @router.post("/console/signout")
    async def sign_out(request: Request) -> Response:
        return await signin.sign_out(request)

    @router.get("/console/dashboard")
    async def dashboard_page(request: Request) -> Response:
        return await dashboard(console, await console.viewer(request), request)

    NOTICES.update({"signed_in": "Welcome back."})
    return router
