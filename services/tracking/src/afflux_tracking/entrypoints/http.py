"""Tracking's public HTTP edge: tracking links, impressions, direct clicks, conversion
postbacks and the conversion pixel.

Every route is unauthenticated at the HTTP level (browsers and advertiser servers call
them); conversion reports are checked against their offer's postback token, allowed
IPs and pixel switch. Each route answers only after its event is acknowledged by the
broker. Clicks and impressions are served by the bare ASGI ``TrackingEdge`` in front of
this app; the routes below document them and answer the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts import ClickMethod
from afflux_plumbing.http import (
    NotFound,
    ReadinessCheck,
    TrustedProxies,
    client_address,
    error_body,
    service_app,
)
from afflux_plumbing.http_proxies import NO_PROXIES
from afflux_tracking.application.intake import Intake, ReportRefused, Unavailable
from afflux_tracking.domain.postbacks import InvalidPostback, parse_postback
from afflux_tracking.domain.routing import UnknownLink
from afflux_tracking.domain.security import REFUSAL_MESSAGES, Refusal
from afflux_tracking.entrypoints.edge import (
    GIF,
    MAX_SUB,
    BadVisit,
    Raw,
    TrackingEdge,
    respond_click,
    respond_impression,
    respond_smart_click,
    visit_of,
)
from afflux_tracking.entrypoints.postback_params import postback_params

TOKEN_HEADER = "X-Afflux-Postback-Token"
MAX_IDEMPOTENCY_KEY = 200
NO_STORE = {"Cache-Control": "no-store"}

Sub = Annotated[str | None, Query(max_length=MAX_SUB, description="partner's own parameter")]
Param = Annotated[str | None, Query()]
DeepLink = Annotated[str | None, Query(description=(
    "deep link: the page to send the visitor to, if its host is one of the offer's deep-link domains "
    "(or a subdomain of one); else ignored"))]
UrlId = Annotated[str | None, Query(description="the offer's landing page to send the visitor to")]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
SubField = Annotated[str | None, Field(default=None, max_length=MAX_SUB)]


class DirectClickIn(BaseModel):
    """A click registered by the advertiser's page (direct linking: no redirect)."""

    model_config = ConfigDict(extra="forbid")

    offer_id: Id
    partner_id: Id
    sub1: SubField = None
    sub2: SubField = None
    sub3: SubField = None
    sub4: SubField = None
    sub5: SubField = None


class DirectClickOut(BaseModel):
    transaction_id: str
    outcome: str
    unique: bool


def create_app(intake: Intake, readiness: ReadinessCheck, proxies: TrustedProxies = NO_PROXIES) -> FastAPI:
    """The tracking app; the bare click/impression edge is its outermost middleware (added
    last), so a click passes no other middleware and no router. ``proxies``: whose
    forwarding header names the client (``AFFLUX_TRUSTED_PROXIES``)."""
    app = service_app("Afflux tracking", readiness)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type", "Idempotency-Key", TOKEN_HEADER],
                       expose_headers=["X-Afflux-Transaction-Id"], max_age=600)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(InvalidPostback, _invalid_postback)
    app.add_exception_handler(ReportRefused, _refused)
    app.add_exception_handler(BadVisit, _bad_visit)
    _link_routes(app, intake, proxies)
    _conversion_routes(app, intake, proxies)
    app.add_middleware(TrackingEdge, intake=intake, proxies=proxies)
    return app


def _link_routes(app: FastAPI, intake: Intake, proxies: TrustedProxies) -> None:
    @app.get("/c/{offer_id}/{partner_id}", status_code=302, tags=["tracking"],
             responses={302: {"description": "redirect to the offer (or its fallback URL)"},
                        404: {"description": "unknown link, or refused click with no fallback"},
                        503: {"description": "the click could not be recorded; retry"}})
    async def click(
        offer_id: str, partner_id: str, request: Request,
        sub1: Sub = None, sub2: Sub = None, sub3: Sub = None, sub4: Sub = None, sub5: Sub = None,
        url: DeepLink = None, url_id: UrlId = None,
    ) -> Response:
        """Record a click and send the visitor where the offer allows: the link's deep link
        (``url``) when the offer allows its host, else the landing page ``url_id`` names,
        else one of the offer's landing pages by weight, else its destination. Bots,
        prefetches and ``HEAD`` probes are recorded as such and never reach the offer."""
        return _response(await respond_click(intake, request.scope, offer_id, partner_id, proxies))

    @app.get("/s/{smart_link_id}/{partner_id}", status_code=302, tags=["tracking"],
             responses={302: {"description": "redirect to the offer chosen (or the fallback URL)"},
                        404: {"description": "unknown smart link or partner, or no offer takes the visitor "
                                             "and there is no fallback URL"},
                        503: {"description": "the click could not be recorded; retry"}})
    async def smart_click(
        smart_link_id: str, partner_id: str, request: Request,
        sub1: Sub = None, sub2: Sub = None, sub3: Sub = None, sub4: Sub = None, sub5: Sub = None,
        url: DeepLink = None,
    ) -> Response:
        """Record a click on a smart link and send the visitor to an offer of the lowest
        priority that takes it (active, the partner may run it, the visitor passes its
        targeting, room under its caps), drawn by weight among those; the click is recorded
        on that offer, with the smart link's id. None takes it: the smart link's fallback
        URL (else its first offer's), the click recorded on its first offer with the reason."""
        return _response(await respond_smart_click(intake, request.scope, smart_link_id, partner_id, proxies))

    @app.get("/i/{offer_id}/{partner_id}", tags=["tracking"],
             responses={200: {"content": {"image/gif": {}}, "description": "a 1x1 transparent GIF"}})
    async def impression(
        offer_id: str, partner_id: str, request: Request,
        sub1: Sub = None, sub2: Sub = None, sub3: Sub = None, sub4: Sub = None, sub5: Sub = None,
    ) -> Response:
        """Record an impression of a partner's creative."""
        return _response(await respond_impression(intake, request.scope, offer_id, partner_id, proxies))

    @app.post("/v1/clicks", tags=["tracking"], response_model=DirectClickOut,
              responses={404: {"description": "unknown offer or partner"}})
    async def direct_click(body: DirectClickIn, request: Request) -> Any:
        """Direct linking: the advertiser's landing page registers the click (CORS open)
        and keeps the transaction_id for its postback. It is a click like any other (the
        same visitor id, address and unique mark): what it earns is attribution's
        decision, so calling it in a loop mints nothing."""
        visit = visit_of(request.scope, body.offer_id, body.partner_id, proxies)
        visit = replace(visit, method=ClickMethod.DIRECT, subs=replace(
            visit.subs, sub1=body.sub1, sub2=body.sub2, sub3=body.sub3, sub4=body.sub4, sub5=body.sub5))
        recorded = await intake.record_click(visit)
        if isinstance(recorded, UnknownLink):
            raise NotFound("link_not_found", recorded.message)
        click = recorded.click
        return DirectClickOut(transaction_id=click.transaction_id, outcome=click.outcome.value,
                              unique=click.unique)


def _conversion_routes(app: FastAPI, intake: Intake, proxies: TrustedProxies) -> None:
    refusals: dict[int | str, dict[str, Any]] = {
        401: {"description": "missing or wrong postback token; nothing recorded"},
        403: {"description": "not from an allowed IP (or pixel not allowed); nothing recorded"},
        503: {"description": "the report could not be recorded; retry (same conversion_id)"},
    }

    @app.get("/postback", tags=["conversions"], responses=refusals)
    async def postback_get(
        request: Request,
        transaction_id: Param = None, event: Param = None, amount: Param = None,
        currency: Param = None, order_id: Param = None, coupon_code: Param = None,
        offer_id: Param = None, token: Param = None,
        x_afflux_postback_token: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
    ) -> dict[str, str]:
        """Report a conversion by server-to-server postback (query string)."""
        return await _report(request, dict(request.query_params), x_afflux_postback_token, idempotency_key)

    @app.post("/postback", tags=["conversions"], responses=refusals)
    async def postback_post(
        request: Request,
        x_afflux_postback_token: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
    ) -> dict[str, str]:
        """Report a conversion with the same parameters in the query string, a
        form-encoded body or a JSON object."""
        params = await postback_params(request)
        return await _report(request, params, x_afflux_postback_token, idempotency_key)

    @app.get("/pixel", tags=["conversions"], responses={
        200: {"content": {"image/gif": {}}, "description": "a 1x1 transparent GIF"}, **refusals})
    async def pixel(
        request: Request,
        transaction_id: Param = None, event: Param = None, amount: Param = None,
        currency: Param = None, order_id: Param = None, coupon_code: Param = None, offer_id: Param = None,
    ) -> Response:
        """Report a conversion from the shopper's browser (offers that allow the pixel)."""
        report = parse_postback(dict(request.query_params))
        await intake.report_conversion(report, client_address(request.scope, proxies), pixel=True)
        return Response(GIF, media_type="image/gif", headers=NO_STORE)

    async def _report(request: Request, params: dict[str, str], header_token: str | None,
                      idempotency_key: str | None) -> dict[str, str]:
        report = parse_postback(params)
        if header_token:
            report = replace(report, token=header_token)
        conversion = await intake.report_conversion(report, client_address(request.scope, proxies),
                                                    idempotency_key=idempotency_key)
        return {"conversion_id": conversion.conversion_id}


def _response(raw: Raw) -> Response:
    return Response(raw.body, status_code=raw.status, headers=dict(raw.headers))


async def _unavailable(_: Request, error: Exception) -> Response:
    return JSONResponse(
        error_body("unavailable", f"{error}; nothing was recorded, retry shortly"),
        status_code=503,
        headers={**NO_STORE, "Retry-After": "1"},
    )


async def _invalid_postback(_: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidPostback)
    return JSONResponse(error_body("invalid_request", error.message, error.field), status_code=422)


async def _bad_visit(_: Request, error: Exception) -> Response:
    assert isinstance(error, BadVisit)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=error.status)


async def _refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, ReportRefused)
    refusal = error.refusal
    status = 401 if refusal in (Refusal.TOKEN_MISSING, Refusal.TOKEN_INVALID) else 403
    field = "token" if status == 401 else None
    return JSONResponse(error_body(refusal.value, REFUSAL_MESSAGES[refusal], field), status_code=status)
