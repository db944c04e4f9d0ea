"""Partners join by themselves: ``POST /v1/signup`` and the page ``/portal/signup``, and
the verification link's page, which records the application.

The link carries the sign-up's id and an expiry, signed with the portal's session key
under its own label (``session.sign_link``; the previous key is accepted during a
rotation): a forged or altered link is 400, an expired one 410, each with a page that
says so. The answer to a sign-up is the same whether the address applied before.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from afflux_gateway.adapters.service_clients import MailUnavailable, PartnersUnavailable
from afflux_gateway.application.signup import ApplicationRefused, SignupDesk, TooManySignups, UnknownSignup
from afflux_gateway.domain.signup import InvalidSignup
from afflux_gateway.entrypoints.portal import Portal, read_form
from afflux_gateway.entrypoints.session import LinkExpired, LinkRefused, SessionKeys, open_link, sign_link
from afflux_plumbing.auth import public
from afflux_plumbing.http import ApiError

LINK_LABEL = "signup"


def link_maker(base_url: str, keys: SessionKeys) -> Any:
    """The verification link of a sign-up: ``<portal>/signup/verify?token=...``."""
    def link_for(signup_id: str, expires: datetime) -> str:
        token = sign_link(LINK_LABEL, signup_id, int(expires.timestamp()), keys)
        return f"{base_url}/signup/verify?token={token}"

    return link_for


class SignupPages:
    def __init__(self, portal: Portal, desk: SignupDesk) -> None:
        self.portal = portal
        self.desk = desk

    async def api(self, body: dict[str, Any], request: Request) -> JSONResponse:
        try:
            expires = await self.desk.sign_up(body, self.portal.guard.address(request), datetime.now(UTC))
        except InvalidSignup as error:
            raise ApiError(422, "invalid_request", error.message, field=error.field) from error
        except TooManySignups as error:
            raise ApiError(429, "too_many_signups", str(error),
                           headers={"Retry-After": str(error.retry_after)}) from error
        except MailUnavailable as error:
            raise ApiError(503, "unavailable", "the verification mail cannot be sent right now; retry later",
                           headers={"Retry-After": "5"}) from error
        return JSONResponse({"status": "verification_sent", "expires_at": expires.isoformat()},
                            status_code=202)

    async def form(self, request: Request) -> Response:
        form = await read_form(request)
        given = {name: form.get(name, "") for name in
                 ("name", "email", "company", "website", "traffic_sources", "country")}
        if not self.portal.public_form_ok(request, form):
            return self.page(given, "The form expired; please send it again.", None, 403)
        raw: dict[str, Any] = {name: value for name, value in given.items() if value}
        raw["accept_terms"] = form.get("accept_terms") == "on"
        try:
            await self.desk.sign_up(raw, self.portal.guard.address(request), datetime.now(UTC))
        except InvalidSignup as error:
            return self.page(given, f"{error.field}: {error.message}", error.field, 422)
        except TooManySignups as error:
            response = self.page(given, f"Too many sign-ups; retry in {error.retry_after} s.", None, 429)
            response.headers["Retry-After"] = str(error.retry_after)
            return response
        except MailUnavailable:
            return self.page(given, "We cannot send mail right now; please try again in a moment.", None, 503)
        return self.notice("Check your mail", f"We sent a link to {given['email']}: open it to confirm your "
                           "address, and your application is recorded.", 202)

    def page(self, given: dict[str, str] | None = None, error: str | None = None, field: str | None = None,
             status: int = 200) -> Response:
        return self.portal.public_page("signup.html", status, given=given or {}, error=error, field=field)

    def notice(self, title: str, message: str, status: int, link: str | None = None) -> Response:
        return self.portal.page("notice.html", None, status, title=title, message=message,
                                failed=status >= 400,
                                link=link, link_text="Continue")

    async def verify(self, token: str) -> Response:
        try:
            signup_id = open_link(token, LINK_LABEL, self.portal.keys, time.time())
            await self.desk.confirm(signup_id, datetime.now(UTC))
        except LinkExpired:
            return self.notice("This link has expired", "Sign up again: we will send you a new link.", 410,
                               "/portal/signup")
        except (LinkRefused, UnknownSignup):
            return self.notice("This link does not work", "It is not a link of ours (altered or cut short?): "
                               "use the link in the mail as it is, or sign up again.", 400, "/portal/signup")
        except ApplicationRefused as error:
            return self.notice("Your application was not recorded", str(error), 400, "/portal/signup")
        except PartnersUnavailable:
            return self.notice("Try again in a moment",
                               "Your application cannot be recorded right now: open the "
                               "link again in a moment.", 503)
        return self.notice("Thank you: your application is recorded",
                           "Your email address is confirmed. We review applications and mail you our answer; "
                           "once approved, you get a link to choose your password.", 200)


def mount_signup(app: FastAPI, pages: SignupPages) -> None:
    @app.post("/v1/signup", status_code=202, tags=["sign-up"], openapi_extra=public("anyone may apply"),
              responses={422: {"description": "a field is wrong (``field`` names it)"},
                         429: {"description": "too many sign-ups from this address or for this email"}})
    async def sign_up(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        """Apply to the program: ``{name, email, company?, website?, traffic_sources?, country?,
        accept_terms}``. A mail with a link to confirm the email is sent; the application
        is recorded (the partner ``pending``) once the link is opened. The same answer
        whether the address applied before (one application per address)."""
        return await pages.api(body, request)

    @app.get("/portal/signup", include_in_schema=False)
    def signup_page() -> Response:
        return pages.page()

    @app.post("/portal/signup", include_in_schema=False)
    async def signup_form(request: Request) -> Response:
        return await pages.form(request)

    @app.get("/portal/signup/verify", include_in_schema=False)
    async def verify(token: str = "") -> Response:
        return await pages.verify(token)
