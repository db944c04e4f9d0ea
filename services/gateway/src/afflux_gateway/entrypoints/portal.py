"""The partner portal: server-rendered pages over the same reads as ``/v1/me``.

Sign-in exchanges the API key for a signed session cookie (HttpOnly, SameSite=Strict,
``Secure`` when configured); every page re-checks that the key it was made with is
not revoked and that the session was not signed out (sign-out ends it on the server,
for every instance, not only in the browser). The balance is payouts' own, asked on
each view of the page. Forms that change something (sign in, apply, sign out) carry a CSRF
token: the session's for signed-in forms, a double-submit cookie for sign-in. Pages
load only the gateway's own stylesheet and script (a Content-Security-Policy of
``'self'`` says so to the browser); the chart is SVG drawn on the server.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.service_clients import PartnersClient, PartnersUnavailable
from afflux_gateway.application.people import PortalUser, UserReads
from afflux_gateway.application.reads import Invoices, Ledger, LedgerUnavailable, Views, offers_for
from afflux_gateway.domain.access import MAX_SUB_LENGTH, SUB_NAMES, may_run, tracking_link
from afflux_gateway.domain.report import GroupBy, InvalidReport, window
from afflux_gateway.entrypoints.auth import Guard, TooManyFailures
from afflux_gateway.entrypoints.chart import DayFigures, daily_chart
from afflux_gateway.entrypoints.http import conversions_page, statements_csv
from afflux_gateway.entrypoints.invoices import invoice_numbers, own_invoice
from afflux_gateway.entrypoints.present import report_out, statement_out
from afflux_gateway.entrypoints.session import (
    SESSION_SECONDS,
    Session,
    SessionKeys,
    csrf_ok,
    csrf_token,
    new_session,
    seal,
    unseal,
)
from afflux_plumbing.http import ApiError

SESSION_COOKIE = "afflux_session"
USER_PREFIX = "usr_"
"""A session's holder is a key id (``key_...``) or, for a partner user, a user id (``usr_...``)."""
SIGNIN_COOKIE = "afflux_signin_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 4096
SIGNIN_NOTICES = {
    "password": "Your password is set: sign in with your email and it.",
    "removed": "You are signed out.",
}


class PasswordSignIn(Protocol):
    async def sign_in(self, request: Request, form: dict[str, str]) -> Response: ...


class SignInFirst(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""


class Portal:
    def __init__(
        self,
        views: Views,
        guard: Guard,
        partners: PartnersClient,
        ledger: Ledger,
        tracking_url: str,
        keys: SessionKeys,
        secure_cookies: bool,
        people: UserReads | None = None,
        invoices: Invoices | None = None,
    ) -> None:
        self.people = people
        self.invoices = invoices
        """Payouts' invoices: each statement's number and PDF on the balance page."""
        self.views = views
        self.guard = guard
        self.partners = partners
        self.ledger = ledger
        self.tracking_url = tracking_url
        self.keys = keys
        self.secure = secure_cookies
        self.credentials: PasswordSignIn | None = None
        """Sign-in with email and password (``entrypoints.people``), once mounted."""
        self.templates = Environment(
            loader=PackageLoader("afflux_gateway", "templates"), autoescape=select_autoescape(["html"])
        )

    # -- sessions -----------------------------------------------------------------------

    def session(self, request: Request) -> Session:
        cookie = request.cookies.get(SESSION_COOKIE)
        found = unseal(cookie, self.keys, time.time()) if cookie else None
        if found is None or not self.live(found):
            raise SignInFirst()
        return found

    def live(self, session: Session) -> bool:
        """A key's session: the key is not revoked; a user's: the user is active and did
        not reset their password since. Neither signed out."""
        if session.key_id.startswith(USER_PREFIX):
            issued = datetime.fromtimestamp(session.expires - SESSION_SECONDS, UTC)
            return self.people is not None and self.people.user_session_live(
                session.key_id, session.partner_id, session.nonce, issued)
        return self.views.session_live(session.key_id, session.partner_id, session.nonce)

    def end(self, session: Session) -> None:
        """Sign the session out on every instance (remembered until it would have expired)."""
        self.views.end_session(session.nonce, datetime.fromtimestamp(session.expires, UTC))

    def user_of(self, session: Session | None) -> PortalUser | None:
        if session is None or self.people is None or not session.key_id.startswith(USER_PREFIX):
            return None
        return self.people.portal_user(session.key_id)

    def page(self, name: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
        partner = self.views.partner(session.partner_id) if session else None
        if session is not None and partner is None:
            partner = {"partner_id": session.partner_id, "name": None}
        csrf = csrf_token(session.nonce, self.keys) if session else context.pop("csrf", "")
        html = self.templates.get_template(name).render(partner=partner, csrf=csrf,
                                                        user=self.user_of(session),
                                                        **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/portal", httponly=True, samesite="strict", secure=self.secure
        )

    # -- pages --------------------------------------------------------------------------

    def signin_page(self, error: str | None = None, status: int = 200,
                    notice: str | None = None) -> HTMLResponse:
        return self.public_page("signin.html", status, error=error, notice=notice)

    def public_page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page for someone not signed in, whose forms carry a double-submit CSRF token."""
        token = secrets.token_urlsafe(24)
        response = self.page(name, None, status, csrf=token, **context)
        self.set_cookie(response, SIGNIN_COOKIE, token, 3600)
        return response

    @staticmethod
    def public_form_ok(request: Request, form: dict[str, str]) -> bool:
        """The form carries the CSRF token of the cookie its page set."""
        given, expected = form.get("csrf"), request.cookies.get(SIGNIN_COOKIE)
        return bool(given and expected and secrets.compare_digest(given.encode(), expected.encode()))

    def signed_in(self, session: Session) -> Response:
        response = RedirectResponse("/portal/dashboard", status_code=303, headers=SECURITY_HEADERS)
        self.set_cookie(response, SESSION_COOKIE, seal(session, self.keys), SESSION_SECONDS)
        response.delete_cookie(SIGNIN_COOKIE, path="/portal")
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await read_form(request)
        if not self.public_form_ok(request, form):
            return self.signin_page("Your sign-in form expired; please try again.", 403)
        if "email" in form and self.credentials is not None:
            return await self.credentials.sign_in(request, form)
        try:
            holder = await run_in_threadpool(
                self.guard.check_key, form.get("api_key"), self.guard.address(request)
            )
        except TooManyFailures as error:
            response = self.signin_page(error.message, 429)
            response.headers.update(error.headers or {})
            return response
        except ApiError:
            return self.signin_page("That API key is not valid.", 401)
        return self.signed_in(new_session(holder.partner_id, holder.key_id, time.time()))

    def dashboard(self, session: Session, params: dict[str, str]) -> HTMLResponse:
        error = None
        try:
            span = window(params.get("from"), params.get("to"), params.get("tz"), datetime.now(UTC))
        except InvalidReport as invalid:
            span = window(None, None, None, datetime.now(UTC))
            error = str(invalid)
        try:
            rows = self.views.report(span, GroupBy.DAY, session.partner_id)
        except InvalidReport as invalid:
            span, error = window(None, None, None, datetime.now(UTC)), str(invalid)
            rows = self.views.report(span, GroupBy.DAY, session.partner_id)
        report = report_out(rows, span, GroupBy.DAY, admin=False)
        currency = report["totals"][0]["currency"] if report["totals"] else ""
        by_day = {row.group: row.figures for row in rows if row.currency == (currency or "")}
        chart = daily_chart(
            [
                DayFigures(
                    day,
                    by_day[day.isoformat()].clicks if day.isoformat() in by_day else 0,
                    by_day[day.isoformat()].conversions if day.isoformat() in by_day else 0,
                    by_day[day.isoformat()].payout if day.isoformat() in by_day else Decimal(0),
                )
                for day in span.days
            ],
            currency or "",
        )
        return self.page("dashboard.html", session, report=report, chart=Markup(chart), error=error)

    def offers(
        self,
        session: Session,
        selected: str | None = None,
        given: dict[str, str] | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        offers = offers_for(self.views, session.partner_id)
        for offer in offers:
            approved = {"approved": True, "refused": False}.get(offer["relationship"])
            runnable = may_run(offer["visibility"], approved)
            subs = given if offer["offer_id"] == selected and given else {}
            offer["link"] = (
                tracking_link(self.tracking_url, offer["offer_id"], session.partner_id, subs)
                if runnable
                else None
            )
        return self.page(
            "offers.html",
            session,
            status,
            offers=offers,
            subs=SUB_NAMES,
            selected=selected,
            given=given or {},
            notice=notice,
        )

    async def apply(self, request: Request, offer_id: str) -> Response:
        session = await run_in_threadpool(self.session, request)
        form = await read_form(request)
        if not csrf_ok(form.get("csrf"), session.nonce, self.keys):
            return PlainTextResponse("the form expired; reload the page", 403, headers=SECURITY_HEADERS)
        visible = await run_in_threadpool(offers_for, self.views, session.partner_id, offer_id)
        if not visible:
            return await run_in_threadpool(self.offers, session, None, None, "No such offer.", 404)
        try:
            answer = await self.partners.apply(offer_id, session.partner_id)
            notice = (
                "Application sent: the advertiser will review it."
                if answer.status < 400
                else "The application was refused: "
                + str(answer.body.get("error", {}).get("message", answer.status))
            )
        except PartnersUnavailable:
            notice = "Applications cannot be taken right now; please retry in a moment."
        return await run_in_threadpool(self.offers, session, None, None, notice)

    def conversions(self, session: Session, after: str | None) -> HTMLResponse:
        page = conversions_page(self.views, session.partner_id, 50, after, None)
        return self.page("conversions.html", session, conversions=page["conversions"], next=page["next"])

    async def balance(self, request: Request) -> HTMLResponse:
        """The ledger's balance (payouts'), beside the statements the gateway projects, each
        with its invoice's number (payouts', asked on each view) and a held one's reason."""
        session = await run_in_threadpool(self.session, request)
        try:
            balances, unavailable = await self.ledger.balances(session.partner_id), False
        except LedgerUnavailable:
            balances, unavailable = {}, True
        statements = [
            statement_out(r) for r in await run_in_threadpool(self.views.statements, session.partner_id)
        ]
        invoices = await invoice_numbers(self.invoices, statements) if self.invoices else {}
        return await run_in_threadpool(
            self.page,
            "balance.html",
            session,
            503 if unavailable else 200,
            balances=balances,
            statements=statements,
            invoices=invoices,
            unavailable=unavailable,
        )

    async def invoice_pdf(self, request: Request, statement_id: str) -> Response:
        """One of the partner's own invoices as a PDF, asked as ``/v1/me/statements/{id}/
        invoice.pdf`` asks (the session's partner, never another's); a refusal is a page."""
        session = await run_in_threadpool(self.session, request)
        if self.invoices is None:
            return await run_in_threadpool(self.page, "notice.html", session, 404, title="No invoice",
                                           failed=True, message="Invoices are not available here.")
        try:
            answer = await own_invoice(self.views, self.invoices, session.partner_id, statement_id[:100],
                                       True)
        except ApiError as error:
            return await run_in_threadpool(self.page, "notice.html", session, error.status,
                                           title="No invoice", failed=True, message=error.message)
        if answer.status_code != 200:
            return await run_in_threadpool(self.page, "notice.html", session, 404, title="No invoice",
                                           failed=True, message="This statement has no invoice yet.")
        answer.headers.update({**SECURITY_HEADERS, "Content-Disposition":
                               f'attachment; filename="invoice-{statement_id[:100]}.pdf"'})
        return answer

    def statements_csv(self, session: Session) -> Response:
        return statements_csv(
            [statement_out(r) for r in self.views.statements(session.partner_id)], SECURITY_HEADERS
        )

    async def sign_out(self, request: Request) -> Response:
        """End the session on the server (every instance refuses its cookie from now on),
        then drop the cookie in this browser."""
        form = await read_form(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        found = unseal(cookie, self.keys, time.time()) if cookie else None
        if found is not None and not csrf_ok(form.get("csrf"), found.nonce, self.keys):
            return PlainTextResponse("the form expired; reload the page", 403, headers=SECURITY_HEADERS)
        if found is not None:
            await run_in_threadpool(self.end, found)
        response = RedirectResponse("/portal/signin", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/portal", httponly=True, samesite="strict")
        return response


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's first value per field (bounded; anything else is empty)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items()}


def mount_portal(app: FastAPI, portal: Portal) -> None:
    """The portal's routes (left out of the OpenAPI document: they are pages, not API)."""
    static = files("afflux_gateway") / "static"
    assets = {"portal.css": "text/css", "portal.js": "text/javascript"}

    @app.exception_handler(SignInFirst)
    async def to_signin(_: Request, __: Exception) -> Response:
        return RedirectResponse("/portal/signin", status_code=303, headers=SECURITY_HEADERS)

    @app.get("/portal", include_in_schema=False)
    def home(request: Request) -> Response:
        portal.session(request)
        return RedirectResponse("/portal/dashboard", status_code=303)

    @app.get("/portal/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in assets:
            return PlainTextResponse("not found", 404)
        return Response(
            (static / name).read_bytes(),
            media_type=assets[name],
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/portal/signin", include_in_schema=False)
    def signin_page(done: str | None = None) -> Response:
        return portal.signin_page(notice=SIGNIN_NOTICES.get(done or ""))

    @app.post("/portal/signin", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        return await portal.sign_in(request)

    @app.post("/portal/signout", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        return await portal.sign_out(request)

    @app.get("/portal/dashboard", include_in_schema=False)
    def dashboard(request: Request) -> Response:
        return portal.dashboard(portal.session(request), dict(request.query_params))

    @app.get("/portal/offers", include_in_schema=False)
    def offers(request: Request) -> Response:
        return portal.offers(portal.session(request))

    @app.get("/portal/offers/{offer_id}/link", include_in_schema=False)
    def link(request: Request, offer_id: str) -> Response:
        session = portal.session(request)
        given = {
            name: value[:MAX_SUB_LENGTH]
            for name, value in request.query_params.items()
            if name in SUB_NAMES and value
        }
        if not offers_for(portal.views, session.partner_id, offer_id):
            return portal.offers(session, notice="No such offer.", status=404)
        return portal.offers(session, offer_id, given)

    @app.post("/portal/offers/{offer_id}/apply", include_in_schema=False)
    async def apply(request: Request, offer_id: str) -> Response:
        return await portal.apply(request, offer_id)

    @app.get("/portal/conversions", include_in_schema=False)
    def conversions(request: Request, after: str | None = None) -> Response:
        return portal.conversions(portal.session(request), after)

    @app.get("/portal/balance", include_in_schema=False)
    async def balance(request: Request) -> Response:
        return await portal.balance(request)

    @app.get("/portal/statements/{statement_id}/invoice.pdf", include_in_schema=False)
    async def invoice_pdf(request: Request, statement_id: str) -> Response:
        return await portal.invoice_pdf(request, statement_id)

    @app.get("/portal/statements.csv", include_in_schema=False)
    def statements_csv(request: Request) -> Response:
        return portal.statements_csv(portal.session(request))
