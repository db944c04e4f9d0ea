"""The HTTP edge every service shares: one error shape, admin auth, health and metrics.

Errors are ``4xx {"error": {"code", "message", "field"}}``: nothing a caller
sends may produce a 5xx.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from afflux_plumbing.metrics import HTTP_REQUESTS, HTTP_SECONDS

ReadinessCheck = Callable[[], Awaitable[bool]]


class ApiError(Exception):
    """An error a caller can fix, answered as the shared 4xx shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class NotFound(ApiError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(404, code, message)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


async def _api_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=error.status)


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        body = error_body("invalid_request", "the request body is not valid JSON")
        return JSONResponse(body, status_code=422)
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    return JSONResponse(error_body("invalid_request", message, field), status_code=422)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
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


def admin_auth(admin_token: str) -> Any:
    """A dependency that admits only ``Authorization: Bearer <AFFLUX_ADMIN_TOKEN>``."""
    bearer = HTTPBearer(auto_error=False)

    def require_admin(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(401, "unauthorized", "admin endpoints need Authorization: Bearer <token>")
        if not admin_token or not hmac.compare_digest(credentials.credentials, admin_token):
            raise ApiError(403, "forbidden", "the admin token is not valid")

    return Depends(require_admin)


def service_app(title: str, readiness: ReadinessCheck, **kwargs: Any) -> FastAPI:
    """A FastAPI app with the shared error shape, /healthz, /readyz, /metrics and /docs."""
    app = FastAPI(title=title, docs_url="/docs", openapi_url="/openapi.json", **kwargs)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

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
