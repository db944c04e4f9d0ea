"""The partners admin API: JSON in, the application's use cases, JSON out.

Every route needs the admin bearer token. A domain rule violation answers 422
naming the field to fix; a status change the lifecycle refuses answers 409.
Routes are plain functions: FastAPI runs them in its thread pool, where the
blocking event-store calls belong.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

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
from afflux_plumbing.http import ReadinessCheck, admin_auth, error_body, service_app


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


def partner_routes(store: Partners, settings: PartnersSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/partners", tags=["partners"],
                       dependencies=[admin_auth(settings.admin_token)])

    @router.post("", status_code=201)
    def create_partner(body: PartnerIn) -> PartnerOut:
        partner = store.create_partner(
            body.name, body.email, type=body.type, status=body.status, tags=body.tags,
            billing=body.billing.to_domain() if body.billing is not None else None,
        )
        return PartnerOut.of(partner)

    @router.get("/{partner_id}")
    def get_partner(partner_id: str) -> PartnerOut:
        return PartnerOut.of(store.get_partner(partner_id))

    @router.post("/{partner_id}/status")
    def change_partner_status(partner_id: str, body: PartnerStatusIn) -> PartnerOut:
        return PartnerOut.of(store.change_partner_status(partner_id, body.status))

    return router


def offer_routes(store: Partners, settings: PartnersSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/offers", tags=["offers"],
                       dependencies=[admin_auth(settings.admin_token)])

    @router.post("", status_code=201)
    def create_offer(body: OfferIn) -> OfferOut:
        offer = store.create_offer(
            body.name, body.destination_url, body.currency, body.payout.to_domain(),
            status=body.status, visibility=body.visibility,
            revenue=body.revenue.to_domain() if body.revenue is not None else None,
            attribution_window_days=body.attribution_window_days, fallback_url=body.fallback_url,
            conversion_security=body.conversion_security.to_domain()
            if body.conversion_security is not None else None,
        )
        return OfferOut.of(offer)

    @router.get("/{offer_id}")
    def get_offer(offer_id: str) -> OfferOut:
        return OfferOut.of(store.get_offer(offer_id))

    @router.post("/{offer_id}/status")
    def change_offer_status(offer_id: str, body: OfferStatusIn) -> OfferOut:
        return OfferOut.of(store.change_offer_status(offer_id, body.status))

    @router.put("/{offer_id}/partners/{partner_id}")
    def set_relationship(offer_id: str, partner_id: str, body: RelationshipIn) -> RelationshipOut:
        relationship = store.set_relationship(
            offer_id, partner_id, body.approved,
            payout=body.payout.to_domain() if body.payout is not None else None,
            revenue=body.revenue.to_domain() if body.revenue is not None else None,
            coupon_codes=body.coupon_codes, postback_url=body.postback_url,
        )
        return RelationshipOut.of(relationship)

    @router.get("/{offer_id}/partners/{partner_id}")
    def get_relationship(offer_id: str, partner_id: str) -> RelationshipOut:
        return RelationshipOut.of(store.get_relationship(offer_id, partner_id))

    @router.get("/{offer_id}/partners/{partner_id}/tracking-link")
    def tracking_link(offer_id: str, partner_id: str) -> TrackingLinkOut:
        """The partner's link for the offer, approved or not: the tracker decides what a
        click on it does (redirect, fallback) and records it either way."""
        offer = store.get_offer(offer_id)
        partner = store.get_partner(partner_id)
        base = settings.tracking_url.rstrip("/")
        return TrackingLinkOut(url=f"{base}/c/{offer.offer_id}/{partner.partner_id}")

    return router
