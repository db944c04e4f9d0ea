"""The partners admin API: JSON in, the application's use cases, JSON out.

Every route needs the admin bearer token. A domain rule violation answers 422
naming the field to fix; a status change the lifecycle refuses answers 409.

A write is answered once its events are on the log (the outbox relay published them):
a service that then catches up with the log sees it. When the log cannot be reached in
time the write is kept and published later, and the answer is ``202`` with
``X-Afflux-Log: pending`` instead of ``200``/``201``. A tracking link is handed out
only once everything it depends on is on the log (else ``503``, retry).
Routes are plain functions: FastAPI runs them in its thread pool, where the
blocking event-store calls belong.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from afflux_partners.application.partners import Partners
from afflux_partners.domain.rules import RuleViolation, StatusChangeRefused
from afflux_partners.entrypoints.schemas import (
    OfferIn,
    OfferOut,
    OfferStatusIn,
    PartnerIn,
    PartnerOut,
    PartnerStatusIn,
    RelationshipIn,
    RelationshipOut,
    TrackingLinkOut,
)
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.acknowledge import published
from afflux_plumbing.http import ReadinessCheck, admin_auth, error_body, service_app

PENDING: dict[int | str, dict[str, Any]] = {
    202: {"description": "recorded, not yet on the log (it will be published); header X-Afflux-Log: pending"}
}


async def _rule_violation(_: Request, error: Exception) -> Response:
    assert isinstance(error, RuleViolation)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=422)


async def _status_change_refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, StatusChangeRefused)
    return JSONResponse(error_body("status_change_refused", str(error), "status"), status_code=409)


def partners_app(store: Partners, settings: PartnersSettings, readiness: ReadinessCheck) -> FastAPI:
    app = service_app("Afflux partners", readiness)
    app.add_exception_handler(RuleViolation, _rule_violation)
    app.add_exception_handler(StatusChangeRefused, _status_change_refused)
    app.include_router(partner_routes(store, settings))
    app.include_router(offer_routes(store, settings))
    return app


def acknowledged(store: Partners, settings: PartnersSettings, body: BaseModel,
                 status_code: int = 200) -> Response:
    """``body`` with ``status_code`` once the write is on the log, else with 202."""
    on_log = published(store, settings.publish_timeout)
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code if on_log else 202,
                        headers={"X-Afflux-Log": "published" if on_log else "pending"})


def partner_routes(store: Partners, settings: PartnersSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/partners", tags=["partners"],
                       dependencies=[admin_auth(settings.admin_token)])

    def ack(body: BaseModel, status_code: int = 200) -> Response:
        return acknowledged(store, settings, body, status_code)

    @router.post("", status_code=201, response_model=PartnerOut, responses=PENDING)
    def create_partner(body: PartnerIn) -> Any:
        partner = store.create_partner(
            body.name, body.email, type=body.type, status=body.status, tags=body.tags,
            billing=body.billing.to_domain() if body.billing is not None else None,
        )
        return ack(PartnerOut.of(partner), 201)

    @router.get("/{partner_id}")
    def get_partner(partner_id: str) -> PartnerOut:
        return PartnerOut.of(store.get_partner(partner_id))

    @router.post("/{partner_id}/status", response_model=PartnerOut, responses=PENDING)
    def change_partner_status(partner_id: str, body: PartnerStatusIn) -> Any:
        return ack(PartnerOut.of(store.change_partner_status(partner_id, body.status)))

    return router


def offer_routes(store: Partners, settings: PartnersSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/offers", tags=["offers"],
                       dependencies=[admin_auth(settings.admin_token)])

    def ack(body: BaseModel, status_code: int = 200) -> Response:
        return acknowledged(store, settings, body, status_code)

    @router.post("", status_code=201, response_model=OfferOut, responses=PENDING)
    def create_offer(body: OfferIn) -> Any:
        offer = store.create_offer(
            body.name, body.destination_url, body.currency, body.payout.to_domain(),
            status=body.status, visibility=body.visibility,
            revenue=body.revenue.to_domain() if body.revenue is not None else None,
            attribution_window_days=body.attribution_window_days, fallback_url=body.fallback_url,
            conversion_security=body.conversion_security.to_domain()
            if body.conversion_security is not None else None,
        )
        return ack(OfferOut.of(offer), 201)

    @router.get("/{offer_id}")
    def get_offer(offer_id: str) -> OfferOut:
        return OfferOut.of(store.get_offer(offer_id))

    @router.post("/{offer_id}/status", response_model=OfferOut, responses=PENDING)
    def change_offer_status(offer_id: str, body: OfferStatusIn) -> Any:
        return ack(OfferOut.of(store.change_offer_status(offer_id, body.status)))

    @router.put("/{offer_id}/partners/{partner_id}", response_model=RelationshipOut, responses=PENDING)
    def set_relationship(offer_id: str, partner_id: str, body: RelationshipIn) -> Any:
        relationship = store.set_relationship(
            offer_id, partner_id, body.approved,
            payout=body.payout.to_domain() if body.payout is not None else None,
            revenue=body.revenue.to_domain() if body.revenue is not None else None,
            coupon_codes=body.coupon_codes, postback_url=body.postback_url,
        )
        return ack(RelationshipOut.of(relationship))

    @router.get("/{offer_id}/partners/{partner_id}")
    def get_relationship(offer_id: str, partner_id: str) -> RelationshipOut:
        return RelationshipOut.of(store.get_relationship(offer_id, partner_id))

    @router.get("/{offer_id}/partners/{partner_id}/tracking-link", response_model=TrackingLinkOut,
                responses={503: {"description": "what the link depends on is not on the log yet"}})
    def tracking_link(offer_id: str, partner_id: str) -> Any:
        """The partner's link for the offer, approved or not: the tracker decides what a
        click on it does (redirect, fallback) and records it either way. Handed out only
        once the offer, the partner and their relationship are on the log, so that the
        link works on its first click (tracking catches up with the log on a link it
        does not know)."""
        offer = store.get_offer(offer_id)
        partner = store.get_partner(partner_id)
        if not published(store, settings.publish_timeout):
            message = "the offer, partner or relationship is not on the event log yet; retry shortly"
            return JSONResponse(error_body("not_yet_published", message), status_code=503,
                                headers={"Retry-After": "1"})
        base = settings.tracking_url.rstrip("/")
        return TrackingLinkOut(url=f"{base}/c/{offer.offer_id}/{partner.partner_id}")

    return router
