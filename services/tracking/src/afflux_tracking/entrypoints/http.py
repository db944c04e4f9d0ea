"""Tracking's public HTTP edge: tracking-link redirects and conversion postbacks.

Both routes are unauthenticated (browsers and advertiser servers call them) and both
answer only after their event is acknowledged by the broker.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from afflux_plumbing.http import NotFound, ReadinessCheck, error_body, service_app
from afflux_tracking.application.intake import Intake, Unavailable, Visit
from afflux_tracking.domain.links import Subs
from afflux_tracking.domain.postbacks import InvalidPostback, parse_postback
from afflux_tracking.domain.routing import REFUSALS, UnknownLink
from afflux_tracking.entrypoints.postback_params import postback_params

MAX_SUB = 500
MAX_HEADER_KEPT = 2000
TRANSACTION_HEADER = "X-Afflux-Transaction-Id"
NO_STORE = {"Cache-Control": "no-store"}  # every visit is a new click: never cache a redirect

Sub = Annotated[str | None, Query(max_length=MAX_SUB, description="partner's own parameter")]
Param = Annotated[str | None, Query()]


def create_app(intake: Intake, readiness: ReadinessCheck) -> FastAPI:
    app = service_app("Afflux tracking", readiness)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(InvalidPostback, _invalid_postback)

    @app.get("/c/{offer_id}/{partner_id}", status_code=302, tags=["tracking"],
             responses={302: {"description": "redirect to the offer (or its fallback URL)"},
                        404: {"description": "unknown link, or refused click with no fallback"},
                        503: {"description": "the click could not be recorded; retry"}})
    async def click(
        offer_id: str, partner_id: str, request: Request,
        sub1: Sub = None, sub2: Sub = None, sub3: Sub = None, sub4: Sub = None, sub5: Sub = None,
    ) -> Response:
        """Record a click and send the visitor where the offer allows."""
        visit = Visit(
            offer_id=offer_id,
            partner_id=partner_id,
            subs=Subs(sub1, sub2, sub3, sub4, sub5),
            ip=request.client.host if request.client else None,
            user_agent=_header(request, "user-agent"),
            referer=_header(request, "referer"),
        )
        recorded = await intake.record_click(visit)
        if isinstance(recorded, UnknownLink):
            raise NotFound("link_not_found", recorded.message)
        headers = {**NO_STORE, TRANSACTION_HEADER: recorded.click.transaction_id}
        if recorded.click.redirect_url is None:
            outcome = recorded.decision.outcome
            message = f"{REFUSALS[outcome]} and it has no fallback URL; the click was recorded"
            return JSONResponse(error_body(outcome.value, message), status_code=404, headers=headers)
        return Response(status_code=302, headers={**headers, "Location": recorded.click.redirect_url})

    @app.get("/postback", tags=["conversions"])
    async def postback_get(
        request: Request,
        transaction_id: Param = None, event: Param = None, amount: Param = None,
        currency: Param = None, order_id: Param = None, coupon_code: Param = None,
    ) -> dict[str, str]:
        """Report a conversion by server-to-server postback (query string)."""
        return await _report(request, dict(request.query_params))

    @app.post("/postback", tags=["conversions"])
    async def postback_post(request: Request) -> dict[str, str]:
        """Report a conversion with the same parameters in the query string, a
        form-encoded body or a JSON object."""
        return await _report(request, await postback_params(request))

    async def _report(request: Request, params: dict[str, str]) -> dict[str, str]:
        report = parse_postback(params)
        ip = request.client.host if request.client else None
        conversion = await intake.report_conversion(report, ip)
        return {"conversion_id": conversion.conversion_id}

    return app


def _header(request: Request, name: str) -> str | None:
    """A request header as recorded on the click (bounded: headers are caller input)."""
    value = request.headers.get(name)
    return value[:MAX_HEADER_KEPT] if value is not None else None


async def _unavailable(_: Request, error: Exception) -> Response:
    return JSONResponse(
        error_body("unavailable", f"{error}; nothing was recorded, retry shortly"),
        status_code=503,
        headers={**NO_STORE, "Retry-After": "1"},
    )


async def _invalid_postback(_: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidPostback)
    return JSONResponse(error_body("invalid_request", error.message, error.field), status_code=422)

