"""The HTTP edge every service shares: one error shape, admin auth, health and metrics.

Errors are ``4xx {"error": {"code", "message", "field"}}``: nothing a caller
sends may produce a 5xx. What a caller can make a service do is bounded here for
every service: body size, JSON nesting and query-string length (``http_limits``,
``http_json``), and the label values of the HTTP metrics (a label value is a time
series, so a caller choosing them could grow Prometheus without end). Who the client
is behind load balancers is one rule too: ``client_address`` (``http_proxies``).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from afflux_plumbing.actors import act_as
from afflux_plumbing.auth import Credentials, Principal, roles_with, route_scope
from afflux_plumbing.http_json import ExactJsonRoute, adopt_routes
from afflux_plumbing.http_limits import MAX_BODY_BYTES, MAX_QUERY_BYTES, RequestLimits
from afflux_plumbing.http_proxies import TrustedProxies as TrustedProxies
from afflux_plumbing.http_proxies import client_address as client_address
from afflux_plumbing.http_proxies import client_scheme as client_scheme
from afflux_plumbing.metrics import HTTP_REQUESTS, HTTP_SECONDS

ReadinessCheck = Callable[[], Awaitable[bool]]


class ApiError(Exception):
    """An error a caller can fix, answered as the shared 4xx shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


class NotFound(ApiError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(404, code, message)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


async def _api_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=error.status,
                        headers=error.headers)


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        context = first.get("ctx")
        reason = context.get("error") if isinstance(context, dict) else None
        message = "the request body is not valid JSON" + (f": {reason}" if reason else "")
        body = error_body("invalid_request", message)
        return JSONResponse(body, status_code=422)
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    return JSONResponse(error_body("invalid_request", message, field), status_code=422)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            413: "payload_too_large", 414: "uri_too_long"}
    return JSONResponse(
        error_body(code.get(error.status_code, "http_error"), str(error.detail)),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def _unexpected_error(_: Request, error: Exception) -> Response:
    logging.getLogger(__name__).exception("unhandled error", exc_info=error)
    return JSONResponse(
        error_body("internal_error", "the service could not complete the request; retry later"),
        status_code=500,
    )


class Unauthorized(ApiError):
    """401 with the ``WWW-Authenticate`` challenge RFC 6750 asks of a bearer-token API.

    A wrong token is a 401, not a 403: the caller is not authenticated as anyone. A
    known caller lacking the route's scope is ``Forbidden``."""

    def __init__(self, message: str, challenge: str = "Bearer") -> None:
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    """403: the credential is valid but not for this route: ``forbidden_role`` when a
    staff user's role does not allow it, ``forbidden_scope`` when a token's scopes
    leave it out."""

    def __init__(self, principal: Principal, scope: str) -> None:
        code = principal.refusal(scope)
        if code == "forbidden_role":
            message = (f"the role {principal.role!r} does not allow {scope!r}, which this operation "
                       f"needs (roles that do: {', '.join(roles_with(scope)) or 'none'})")
        else:
            message = (f"the credential {principal.name!r} does not have the scope {scope!r} this "
                       "operation needs")
        super().__init__(403, code, message)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison as bytes: ``hmac.compare_digest`` refuses ``str`` with
    non-ASCII characters (a TypeError, so a 500), and a header may carry any byte."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def admin_auth(credentials: str | Credentials, scope: str | None = None) -> Any:
    """A dependency that admits ``Authorization: Bearer <token>`` of a principal with the
    scope the route needs: ``scope`` if given, else the one the route names
    (``auth.needs``), else ``admin`` (the admin token only). A bare string is the admin
    token alone (no service or staff tokens). It yields the ``Principal``, for routes
    that record who acted, and makes it the request's actor (``actors``): every event the
    request causes carries it.

    Asynchronous on purpose: it runs in the request's own context, so the actor it sets
    is seen by the route, also when FastAPI runs a plain ``def`` route in its thread
    pool (which copies the context)."""
    accepted = credentials if isinstance(credentials, Credentials) else Credentials(credentials)
    bearer = HTTPBearer(auto_error=False)

    async def require_admin(
        request: Request,
        given: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        if given is None:
            raise Unauthorized("admin endpoints need Authorization: Bearer <token>")
        principal = await accepted.authenticate_eventually(given.credentials)
        if principal is None:
            raise Unauthorized("the token is not valid (unknown, expired or revoked)",
                               'Bearer error="invalid_token"')
        needed = scope or route_scope(request.scope.get("route"))
        if not principal.may(needed):
            raise Forbidden(principal, needed)
        act_as(principal.actor)
        return principal

    return Depends(require_admin)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metric_labels(scope: Scope) -> tuple[str, str]:
    """(method, route) labels from a closed set: a standard method else ``other``; the
    route's template (``/v1/offers/{offer_id}``) else ``unmatched``."""
    method = scope.get("method", "")
    route = getattr(scope.get("route"), "path", None)
    return (method if method in KNOWN_METHODS else "other",
            route if isinstance(route, str) else "unmatched")


class ServiceApp(FastAPI):
    """FastAPI whose routes, the app's own and those of every included router, read
    JSON bodies exactly (``http_json``)."""

    def include_router(self, router: APIRouter, *args: Any, **kwargs: Any) -> None:
        adopt_routes(router)
        super().include_router(router, *args, **kwargs)


def service_app(
    title: str, readiness: ReadinessCheck, *, max_body_bytes: int = MAX_BODY_BYTES,
    max_query_bytes: int = MAX_QUERY_BYTES, **kwargs: Any,
) -> FastAPI:
    """A FastAPI app with the shared error shape, request bounds, exact JSON numbers,
    /healthz, /readyz, /metrics and /docs."""
    app = ServiceApp(title=title, docs_url="/docs", openapi_url="/openapi.json", **kwargs)
    app.router.route_class = ExactJsonRoute
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes, max_query_bytes=max_query_bytes)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500  # what the caller gets if the app raises
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            method, route = metric_labels(request.scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if await readiness():
            return JSONResponse({"status": "ready"})
        return JSONResponse(error_body("not_ready", "still starting"), status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
