"""Partner users in the portal and the API: sign-in with email and password, the page
an invitation or reset link opens, "forgot your password", and the users page where an
owner invites and removes the others (``/v1/me/users`` in the API).

The partners service holds the password hashes and the links' tokens and checks them
(``/v1/partner-users/...``, with the gateway's token); the gateway keeps the session,
the same server-side session as a key's (signed cookie, CSRF, sign-out ends it on every
instance, previous-key rotation), whose holder is the user: it stands while the user
is active (as the partners log says: a removed user's sessions end as soon as the
gateway reads it) and began after their last password reset.

Guessing is slowed per client address and per email (``AFFLUX_GATEWAY_FAILURE_LIMIT``
within ``…_PERIOD``): past the limit every sign-in of that source is 429 with
``Retry-After``, the right password too (a password, unlike a key, can be guessed).
Reset links are asked for under the same limits, counted per request.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.service_clients import Answer, PartnersClient, PartnersUnavailable
from afflux_gateway.application.people import PortalUser
from afflux_gateway.entrypoints.auth import KEY_HEADER, Guard
from afflux_gateway.entrypoints.portal import (
    SECURITY_HEADERS,
    USER_PREFIX,
    Portal,
    SignInFirst,
    read_form,
)
from afflux_gateway.entrypoints.session import (
    SESSION_SECONDS,
    Session,
    csrf_ok,
    new_session,
    seal,
    unseal,
)
from afflux_plumbing.auth import public
from afflux_plumbing.http import ApiError
from afflux_plumbing.throttle import FailureThrottle

UNAVAILABLE = "Sign-in cannot be checked right now; please retry in a moment."


class Throttle:
    """Attempts per client address and per email; past the limit a source waits."""

    def __init__(self, throttle: FailureThrottle) -> None:
        self.throttle = throttle
        self.lock = threading.Lock()

    def wait(self, address: str, email: str) -> int | None:
        sources = (f"address|{address}", f"email|{email.strip().lower()}")
        with self.lock:
            waits = [w for w in (self.throttle.retry_after(s) for s in sources) if w is not None]
        return max(waits) if waits else None

    def count(self, address: str, email: str) -> None:
        with self.lock:
            self.throttle.failed(f"address|{address}")
            self.throttle.failed(f"email|{email.strip().lower()}")


class Credentials:
    """The users' side of the portal (mounted beside ``Portal``)."""

    def __init__(self, portal: Portal, partners: PartnersClient, throttle: Throttle) -> None:
        self.portal = portal
        self.partners = partners
        self.throttle = throttle

    async def check(self, address: str, email: str, password: str) -> Answer:
        """Partners' verdict on the email and password (``TooMany``, ``PartnersUnavailable``)."""
        wait = self.throttle.wait(address, email)
        if wait is not None:
            raise ApiError(429, "too_many_attempts", f"too many sign-ins; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        answer = await self.partners.call("POST", "/v1/partner-users/sign-in",
                                          {"email": email[:254], "password": password[:200]})
        if answer.status != 200:
            self.throttle.count(address, email)
        return answer

    async def sign_in(self, request: Request, form: dict[str, str]) -> Response:
        """The portal's email and password form (``Portal.sign_in`` hands it over)."""
        try:
            answer = await self.check(self.portal.guard.address(request), form.get("email", ""),
                                      form.get("password", ""))
        except ApiError as error:
            response = self.portal.signin_page(error.message, error.status)
            response.headers.update(error.headers or {})
            return response
        except PartnersUnavailable:
            return self.portal.signin_page(UNAVAILABLE, 503)
        if answer.status != 200:
            return self.portal.signin_page("The email or the password is not right.", 401)
        user = answer.body["user"]
        return self.portal.signed_in(new_session(answer.body["partner_id"], user["user_id"], time.time()))

    # -- the link of an invitation or a reset --------------------------------------------

    async def password_page(self, token: str, error: str | None = None, status: int = 200) -> Response:
        try:
            answer = await self.partners.call("POST", "/v1/partner-users/tokens/check",
                                              {"token": token[:200]})
        except PartnersUnavailable:
            return self.notice("Try again in a moment", UNAVAILABLE, 503)
        if answer.status != 200:
            return self.refused_link(answer.status)
        body = answer.body
        return self.portal.public_page("password.html", status, token=token, purpose=body["purpose"],
                                       partner_name=body["partner_name"], email=body["user"]["email"],
                                       error=error)

    async def set_password(self, request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token", "")
        if not self.portal.public_form_ok(request, form):
            return await self.password_page(token, "The form expired; please try again.", 403)
        if form.get("password") != form.get("password2"):
            return await self.password_page(token, "The two passwords differ.", 422)
        try:
            answer = await self.partners.call("POST", "/v1/partner-users/password",
                                              {"token": token[:200], "password": form.get("password",
                                                                                          "")[:200]})
        except PartnersUnavailable:
            return self.notice("Try again in a moment", UNAVAILABLE, 503)
        if answer.status == 422:
            return await self.password_page(token, _message(answer), 422)
        if answer.status not in (200, 202):
            return self.refused_link(answer.status)
        return RedirectResponse("/portal/signin?done=password", status_code=303, headers=SECURITY_HEADERS)

    def refused_link(self, status: int) -> Response:
        if status == 410:
            return self.notice("This link has expired", "Ask for a new one: an owner of your account invites "
                               "you again, or use “Forgot your password”.", 410, "/portal/forgot")
        return self.notice("This link does not work", "It is not a link of ours, or it was used already.",
                           400, "/portal/signin")

    def notice(self, title: str, message: str, status: int, link: str | None = None) -> Response:
        return self.portal.page("notice.html", None, status, title=title, message=message,
                                failed=status >= 400,
                                link=link, link_text="Continue")

    # -- forgot your password --------------------------------------------------------------

    async def request_reset(self, request: Request) -> Response:
        form = await read_form(request)
        if not self.portal.public_form_ok(request, form):
            return self.portal.public_page("forgot.html", 403, error="The form expired; please try again.")
        address, email = self.portal.guard.address(request), form.get("email", "")[:254]
        wait = self.throttle.wait(address, email)
        if wait is not None:
            response = self.portal.public_page("forgot.html", 429,
                                               error=f"Too many requests; retry in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        self.throttle.count(address, email)
        try:
            await self.partners.call("POST", "/v1/partner-users/password-reset", {"email": email})
        except PartnersUnavailable:
            return self.notice("Try again in a moment", UNAVAILABLE, 503)
        return self.notice("Check your mail",
                           "If the address has an account, a link to choose a new password "
                           "is on its way.", 202, "/portal/signin")

    # -- the users page ---------------------------------------------------------------------

    def user(self, session: Session) -> PortalUser:
        found = self.portal.user_of(session)
        if found is None:
            raise SignInFirst()
        return found

    def users_page(self, session: Session, notice: str | None = None, status: int = 200) -> Response:
        """Every user of the partner (a key's session sees them; only an owner changes them)."""
        me = self.portal.user_of(session)
        users = self.portal.people.partner_users(session.partner_id) if self.portal.people else []
        return self.portal.page("users.html", session, status, users=users, notice=notice,
                                owner=me is not None and me.role == "owner", me=me.user_id if me else None)

    async def users_form(self, request: Request) -> tuple[Session, Any, PortalUser] | Response:
        """A users-page form: its session, fields and signed-in user; the expired-form page
        when its CSRF token does not match the session."""
        session = await run_in_threadpool(self.portal.session, request)
        form = await read_form(request)
        if not csrf_ok(form.get("csrf"), session.nonce, self.portal.keys):
            return self.notice("The form expired", "Reload the page and try again.", 403, "/portal/users")
        return session, form, await run_in_threadpool(self.user, session)

    async def invite(self, request: Request) -> Response:
        posted = await self.users_form(request)
        if isinstance(posted, Response):
            return posted
        session, form, owner = posted
        answer = await self.change(lambda: self.partners.call(
            "POST", f"/v1/partners/{session.partner_id}/users",
            {"email": form.get("email", "")[:254], "name": form.get("name") or None,
             "role": form.get("role", "member"), "invited_by": owner.user_id}))
        notice = (f"Invitation sent to {form.get('email')}." if answer is not None and answer.status < 300
                  else f"Not invited: {_message(answer)}")
        return await run_in_threadpool(self.users_page, session, notice, 200 if answer else 503)

    async def remove(self, request: Request, user_id: str) -> Response:
        posted = await self.users_form(request)
        if isinstance(posted, Response):
            return posted
        session, _, owner = posted
        answer = await self.change(lambda: self.partners.call(
            "DELETE", f"/v1/partners/{session.partner_id}/users/{quote(user_id, safe='')}",
            params={"removed_by": owner.user_id}))
        removed = answer is not None and answer.status < 300
        notice = "Removed." if removed else f"Not removed: {_message(answer)}"
        return await run_in_threadpool(self.users_page, session, notice, 200 if answer else 503)

    @staticmethod
    async def change(call: Any) -> Answer | None:
        try:
            answer: Answer = await call()
        except PartnersUnavailable:
            return None
        return answer


def _message(answer: Answer | None) -> str:
    if answer is None:
        return "the service is not available right now; retry in a moment"
    error = answer.body.get("error")
    return str(error.get("message")) if isinstance(error, dict) else f"answered {answer.status}"


# -- the API -------------------------------------------------------------------------------


class SessionIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class UserInviteIn(BaseModel):
    email: str = Field(max_length=254)
    name: str | None = Field(None, max_length=200)
    role: str = Field("member", description="owner or member")


def api_routers(credentials: Credentials, guard: Guard) -> tuple[APIRouter, APIRouter]:
    """``POST /v1/sessions`` (a user's session for the API, as a bearer token; public: it
    is the sign-in), ``DELETE /v1/me/session`` and ``/v1/me/users``."""
    sessions = APIRouter(tags=["partner users"])
    router = APIRouter(prefix="/v1/me", tags=["partner users"])
    portal = credentials.portal

    def bearer_session(authorization: str | None) -> Session | None:
        """The live user session the bearer token is, else None (the caller then checks
        the API key: a bad session and a bad key get the same 401, which says nothing)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        found = unseal(authorization[7:].strip(), portal.keys, time.time())
        if found is None or not found.key_id.startswith(USER_PREFIX) or not portal.live(found):
            return None
        return found

    def partner_of(request: Request, authorization: str | None = Header(None),
                   api_key: str | None = Header(None, alias=KEY_HEADER)) -> tuple[str, PortalUser | None]:
        session = bearer_session(authorization)
        if session is not None:
            return session.partner_id, portal.user_of(session)
        return guard.check_key(api_key, guard.address(request)).partner_id, None

    def user_session(request: Request, authorization: str | None = Header(None)) -> Session:
        session = bearer_session(authorization)
        if session is None:  # refused as every partner route refuses: one 401 (or 429)
            guard.check_key(None, guard.address(request))
        assert session is not None
        return session

    def owner(found: tuple[str, PortalUser | None] = Depends(partner_of)) -> PortalUser:
        user = found[1]
        if user is None or user.role != "owner":
            raise ApiError(403, "not_an_owner", "only an owner of the partner, signed in as themselves "
                           "(a session, not an API key), invites and removes its users")
        return user

    async def relayed(call: Any, status: int = 200) -> JSONResponse:
        try:
            answer: Answer = await call()
        except PartnersUnavailable as error:
            raise ApiError(503, "unavailable", "partners cannot answer now; retry later",
                           headers={"Retry-After": "5"}) from error
        return JSONResponse(answer.body, status_code=status if answer.status < 300 else answer.status)

    @sessions.post("/v1/sessions", status_code=201, openapi_extra=public("a partner user's sign-in"),
                   responses={401: {"description": "the email or the password is not right"},
                              429: {"description": "too many attempts from this address or for this email"}})
    async def start_session(body: SessionIn, request: Request) -> dict[str, Any]:
        """A partner user's session for the API (``Authorization: Bearer <token>``), 8 hours:
        the portal's session, checked the same way (active user, not signed out)."""
        try:
            answer = await credentials.check(guard.address(request), body.email, body.password)
        except PartnersUnavailable as error:
            raise ApiError(503, "unavailable", UNAVAILABLE, headers={"Retry-After": "5"}) from error
        if answer.status != 200:
            raise ApiError(401, "invalid_credentials", "the email or the password is not right")
        session = new_session(answer.body["partner_id"], answer.body["user"]["user_id"], time.time())
        return {"token": seal(session, portal.keys), "expires_in": SESSION_SECONDS,
                "partner_id": session.partner_id, "user": answer.body["user"]}

    @router.delete("/session", status_code=204, response_model=None)
    def end_session(session: Session = Depends(user_session)) -> Response:  # noqa: B008
        """Sign the bearer session out, on every instance."""
        portal.end(session)
        return Response(status_code=204)

    @router.get("/users")
    def users(found: tuple[str, PortalUser | None] = Depends(partner_of)) -> dict[str, Any]:
        """The partner's users (an API key or a user's session)."""
        listed = portal.people.partner_users(found[0]) if portal.people else []
        return {"users": [user.__dict__ for user in listed]}

    @router.post("/users", status_code=201)
    async def invite(body: UserInviteIn, user: PortalUser = Depends(owner)) -> JSONResponse:  # noqa: B008
        """Invite someone (an owner's session): a mail with a link to set a password."""
        return await relayed(lambda: credentials.partners.call(
            "POST", f"/v1/partners/{user.partner_id}/users",
            {**body.model_dump(), "invited_by": user.user_id}), 201)

    @router.delete("/users/{user_id}")
    async def remove(user_id: str, user: PortalUser = Depends(owner)) -> JSONResponse:  # noqa: B008
        """Remove a user (an owner's session): their sessions end."""
        return await relayed(lambda: credentials.partners.call(
            "DELETE", f"/v1/partners/{user.partner_id}/users/{quote(user_id[:40], safe='')}",
            params={"removed_by": user.user_id}))

    return sessions, router


def mount_people(app: FastAPI, credentials: Credentials, guard: Guard) -> None:
    portal = credentials.portal
    portal.credentials = credentials
    for router in api_routers(credentials, guard):
        app.include_router(router)

    @app.get("/portal/password", include_in_schema=False)
    async def password_page(token: str = "") -> Response:
        return await credentials.password_page(token)

    @app.post("/portal/password", include_in_schema=False)
    async def set_password(request: Request) -> Response:
        return await credentials.set_password(request)

    @app.get("/portal/forgot", include_in_schema=False)
    def forgot_page() -> Response:
        return portal.public_page("forgot.html")

    @app.post("/portal/forgot", include_in_schema=False)
    async def request_reset(request: Request) -> Response:
        return await credentials.request_reset(request)

    @app.get("/portal/users", include_in_schema=False)
    def users_page(request: Request) -> Response:
        return credentials.users_page(portal.session(request))

    @app.post("/portal/users", include_in_schema=False)
    async def invite(request: Request) -> Response:
        return await credentials.invite(request)

    @app.post("/portal/users/{user_id}/remove", include_in_schema=False)
    async def remove(request: Request, user_id: str) -> Response:
        return await credentials.remove(request, user_id)
