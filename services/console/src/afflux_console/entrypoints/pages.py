"""The console's pages: the back office, server-rendered, over the services' APIs.

Every page is read, and every change made, through a service's API *as the signed-in
person*: the request carries their own credential (``service_apis``), so a service
refuses what their role may not do (``403 forbidden_role``) and every event a change
causes names them. A page offers only what the viewer's role allows (the scopes of
``afflux_plumbing.auth.ROLES``); a form posted anyway is refused by the service, and
the page says so with its 403.

Security, as on the partner portal: a Content-Security-Policy of ``default-src 'none'``
plus the console's own stylesheet, script and images; no frames; no referrer; nothing
cached; the session in an HttpOnly, SameSite=Strict cookie scoped to ``/console``; a
CSRF token on every form (``browser_session``). Nothing is loaded from elsewhere: the
charts are SVG drawn on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment

from afflux_console.adapters.names import Names
from afflux_console.adapters.service_apis import Answer, Refused, ServiceApis, Unavailable
from afflux_console.entrypoints.browser_session import (
    SESSION_COOKIE,
    Form,
    csrf_ok,
    csrf_token,
    drop_cookie,
    read_form,
)
from afflux_console.entrypoints.display import templates
from afflux_plumbing.auth import Credentials, Principal
from afflux_plumbing.http import TrustedProxies

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
ASSETS = {"console.css": "text/css", "console.js": "text/javascript", "favicon.svg": "image/svg+xml"}

FORM_EXPIRED = "This form has expired or did not come from the console; reload the page."

NOTICES: dict[str, str] = {}
"""Messages a page shows after a change redirected to it (``?done=<key>``): only these,
so a link cannot make the console say anything else."""


class SignInFirst(Exception):
    """No valid credential: the page answers with a redirect to the sign-in page."""


class PageError(Exception):
    """A page that cannot be shown as asked (a bad filter, an unknown id)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their credential, what it may do, and their name."""

    token: str
    principal: Principal
    name: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def role(self) -> str:
        return self.principal.role or self.principal.kind

    def may(self, scope: str) -> bool:
        return self.principal.may(scope)


class Console:
    """What every page needs: the services, names for ids, who is looking, rendering."""

    def __init__(
        self, apis: ServiceApis, names: Names, credentials: Credentials, secure: bool, proxies: TrustedProxies
    ) -> None:
        self.apis = apis
        self.names = names
        self.credentials = credentials
        self.secure = secure
        self.proxies = proxies
        self.env: Environment = templates()

    async def viewer(self, request: Request) -> Viewer:
        token = request.cookies.get(SESSION_COOKIE)
        principal = await self.credentials.authenticate_eventually(token) if token else None
        if token is None or principal is None:
            raise SignInFirst()
        return Viewer(token, principal, await self.person(principal))

    async def person(self, principal: Principal) -> str:
        if principal.kind == "admin":
            return "Bootstrap owner"
        if principal.kind == "staff":
            return (await self.names.staff()).get(principal.name, principal.name)
        return f"API token {principal.name[:8]}"

    def page(self, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(viewer=viewer, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def posted(self, request: Request) -> tuple[Viewer, Form]:
        """The signed-in viewer and their form, its CSRF token checked (else a 403 page)."""
        viewer = await self.viewer(request)
        form = await read_form(request)
        if not csrf_ok(form.get("csrf"), viewer.token):
            raise PageError(403, FORM_EXPIRED)
        return viewer, form

    async def read(self, viewer: Viewer, service: str, path: str, **params: Any) -> Any:
        return await self.apis.get(viewer.token, service, path, **params)

    async def write(self, viewer: Viewer, method: str, service: str, path: str, body: Any = None) -> Answer:
        return await self.apis.call(viewer.token, method, service, path, body=body)

    def done(self, location: str, notice: str) -> RedirectResponse:
        """After a change: back to ``location``, saying what was done (``NOTICES``)."""
        joiner = "&" if "?" in location else "?"
        return RedirectResponse(f"{location}{joiner}done={notice}", status_code=303, headers=SECURITY_HEADERS)

    @staticmethod
    def notice(request: Request) -> str | None:
        return NOTICES.get(request.query_params.get("done", ""))

    async def error_page(self, request: Request, status: int, message: str) -> Response:
        try:
            viewer: Viewer | None = await self.viewer(request)
        except SignInFirst:
            viewer = None
        return self.page("error.html", viewer, status, code=status, message=message)


def error_message(refused: Refused) -> str:
    if refused.code in ("forbidden_role", "forbidden_scope"):
        return f"You may not do this: {refused.message}"
    return refused.message


def add_error_pages(app: FastAPI, console: Console) -> None:
    def sign_in_again(request: Request) -> Response:
        response = RedirectResponse("/console/signin", status_code=303, headers=SECURITY_HEADERS)
        if request.cookies.get(SESSION_COOKIE):
            drop_cookie(response, SESSION_COOKIE, console.secure)
        return response

    async def signin_first(request: Request, _: Exception) -> Response:
        return sign_in_again(request)

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refused)
        if error.status == 401:
            return sign_in_again(request)
        return await console.error_page(request, error.status, error_message(error))

    async def unavailable(request: Request, error: Exception) -> Response:
        assert isinstance(error, Unavailable)
        message = f"The {error.service} service cannot be reached right now; please retry in a moment."
        return await console.error_page(request, 503, message)

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)
        return await console.error_page(request, error.status, error.message)

    app.add_exception_handler(SignInFirst, signin_first)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(PageError, page_error)


def asset_routes() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    static = files("afflux_console") / "static"

    @router.get("/console/static/{name}")
    def asset(name: str) -> Response:
        if name not in ASSETS:
            return PlainTextResponse("not found", 404)
        return Response(
            (static / name).read_bytes(),
            media_type=ASSETS[name],
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return router
