"""The partners admin API: JSON in, the application's use cases, JSON out.

Every route names the scope it needs (``needs``): the admin token, a service token or a
staff credential whose role has it (else 403). A domain rule violation answers 422
naming the field to fix; a status change or another command the current state
refuses (editing a deleted offer, a declined application) answers 409.

A write is answered once its events are on the log (the outbox relay published them):
a service that then catches up with the log sees it. When the log cannot be reached in
time the write is kept and published later, and the answer is ``202`` with
``X-Afflux-Log: pending`` instead of ``200``/``201``. A tracking link is handed out
only once everything it depends on is on the log (else ``503``, retry).
Routes are plain functions: FastAPI runs them in its thread pool, where the
blocking event-store calls belong.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from afflux_partners.application.partners import Listing, Page, Partners
from afflux_partners.domain.relationship import Relationship
from afflux_partners.domain.rules import Conflict, RuleViolation, StatusChangeRefused
from afflux_partners.domain.values import OfferStatus, PartnerStatus, Standing
from afflux_partners.entrypoints.schemas import (
    ApiKeyIssuedOut,
    ApiKeyOut,
    ApiKeysOut,
    OfferIn,
    OfferOut,
    OfferPatch,
    OffersPage,
    OfferStatusIn,
    OfferWithTokenOut,
    PartnerIn,
    PartnerOut,
    PartnerPatch,
    PartnersPage,
    PartnerStatusIn,
    PostbackTokenOut,
    RelationshipIn,
    RelationshipOut,
    RelationshipsPage,
    SmartLinkIn,
    SmartLinkOut,
    SmartLinkPatch,
    SmartLinksPage,
    TokenRotationIn,
    TrackingLinkOut,
)
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.acknowledge import published
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import ApiError, ReadinessCheck, admin_auth, error_body, service_app

PENDING: dict[int | str, dict[str, Any]] = {
    202: {"description": "recorded, not yet on the log (it will be published); header X-Afflux-Log: pending"}
}
PAGE_SIZE = Query(50, ge=1, le=500, description="page size")
AFTER = Query(None, max_length=100, description="the `next` cursor of the previous page")
STANDING = Query(None, description="approved, pending (applications waiting for a decision) or declined")
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL: a filter with one matches nothing, so it is refused."""


async def _rule_violation(_: Request, error: Exception) -> Response:
    assert isinstance(error, RuleViolation)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=422)


async def _status_change_refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, StatusChangeRefused)
    return JSONResponse(error_body("status_change_refused", str(error), "status"), status_code=409)


async def _conflict(_: Request, error: Exception) -> Response:
    assert isinstance(error, Conflict)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=409)


def partners_app(store: Partners, settings: PartnersSettings, readiness: ReadinessCheck,
                 credentials: Credentials | None = None) -> FastAPI:
    """``credentials``: what the admin routes accept (default: the settings' admin and
    service tokens; the service passes ``runtime.credentials()``, staff included)."""
    app = service_app("Afflux partners", readiness)
    app.add_exception_handler(RuleViolation, _rule_violation)
    app.add_exception_handler(StatusChangeRefused, _status_change_refused)
    app.add_exception_handler(Conflict, _conflict)
    accepted = credentials or Credentials.of(settings)
    app.include_router(partner_routes(store, settings, accepted))
    app.include_router(offer_routes(store, settings, accepted))
    app.include_router(smart_link_routes(store, settings, accepted))
    return app


def acknowledged(store: Partners, settings: PartnersSettings, body: BaseModel,
                 status_code: int = 200) -> Response:
    """``body`` with ``status_code`` once the write is on the log, else with 202."""
    on_log = published(store, settings.publish_timeout)
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code if on_log else 202,
                        headers={"X-Afflux-Log": "published" if on_log else "pending"})


def tracking_link_once_published(store: Partners, settings: PartnersSettings, path: str) -> Any:
    """The tracking link at ``path`` once everything this service acknowledged is on the
    log, else ``503 not_yet_published`` (retry): a link handed out works on its first click."""
    if not published(store, settings.publish_timeout):
        message = "what the link depends on is not on the event log yet; retry shortly"
        return JSONResponse(error_body("not_yet_published", message), status_code=503,
                            headers={"Retry-After": "1"})
    return TrackingLinkOut(url=f"{settings.tracking_url.rstrip('/')}{path}")


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def relationships_page(page: Page[Relationship]) -> RelationshipsPage:
    """A page of relationships (an offer's or a partner's) with the cursor of the next."""
    return RelationshipsPage(
        relationships=[RelationshipOut.of(r) for r in page.items],
        next=encode_cursor("relationships", page.next_after) if page.next_after else None)


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The ``seq`` an opaque cursor of this list names; 422 for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != kind or not seq.isdigit():
            raise ValueError(raw)
        return int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ApiError(422, "invalid_request", f"not a {kind} cursor: {cursor[:100]!r}", "after") from error


def partner_routes(store: Partners, settings: PartnersSettings, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/partners", tags=["partners"], dependencies=[admin_auth(credentials)])

    def ack(body: BaseModel, status_code: int = 200) -> Response:
        return acknowledged(store, settings, body, status_code)

    @router.post("", status_code=201, response_model=PartnerOut, responses=PENDING,
                 openapi_extra=needs("partners.write"))
    def create_partner(body: PartnerIn) -> Any:
        return ack(PartnerOut.of(store.create_partner(status=body.status, **body.profile())), 201)

    @router.get("", response_model=PartnersPage, openapi_extra=needs("partners.read"))
    def list_partners(
        status: PartnerStatus | None = Query(None),  # noqa: B008
        tag: str | None = Query(None, max_length=64, pattern=NO_NUL,
                                description="partners with this tag (label)"),
        q: str | None = Query(None, min_length=1, max_length=200, pattern=NO_NUL,
                              description="part of the name or email, or the partner_id"),
        limit: int = PAGE_SIZE,
        after: str | None = AFTER,
    ) -> Any:
        """Partners in the order they were created; ``next`` is the cursor of the next page."""
        page = store.list_partners(Listing("partners", status.value if status else None, tag, q),
                                   decode_cursor("partners", after), limit)
        return PartnersPage(partners=[PartnerOut.of(p) for p in page.items],
                            next=encode_cursor("partners", page.next_after) if page.next_after else None)

    @router.get("/{partner_id}", openapi_extra=needs("partners.read"))
    def get_partner(partner_id: str) -> PartnerOut:
        return PartnerOut.of(store.get_partner(partner_id))

    @router.patch("/{partner_id}", response_model=PartnerOut, responses=PENDING,
                  openapi_extra=needs("partners.write"))
    def edit_partner(partner_id: str, body: PartnerPatch) -> Any:
        """Change the fields given (``null`` clears an optional one); published as
        PartnerUpdated with the whole new state and the fields that changed."""
        partner, _ = store.edit_partner(partner_id, body.profile())
        return ack(PartnerOut.of(partner))

    @router.post("/{partner_id}/status", response_model=PartnerOut, responses=PENDING,
                 openapi_extra=needs("partners.write"))
    def change_partner_status(partner_id: str, body: PartnerStatusIn) -> Any:
        return ack(PartnerOut.of(store.change_partner_status(partner_id, body.status)))

    @router.post("/{partner_id}/api-keys", status_code=201, response_model=ApiKeyIssuedOut, responses=PENDING,
                 openapi_extra=needs("partners.write"))
    def issue_api_key(partner_id: str) -> Any:
        """A new API key for the partner's own access (the gateway's ``X-Api-Key``). The key
        is in this answer only: Afflux keeps and publishes its SHA-256, never the key."""
        key, drawn = store.issue_api_key(partner_id)
        return ack(ApiKeyIssuedOut(api_key=drawn.api_key, **ApiKeyOut.of(key).model_dump()), 201)

    @router.get("/{partner_id}/api-keys", response_model=ApiKeysOut, openapi_extra=needs("partners.read"))
    def list_api_keys(partner_id: str) -> Any:
        keys = store.get_partner(partner_id).api_keys.values()
        return ApiKeysOut(api_keys=[ApiKeyOut.of(key) for key in keys])

    @router.get("/{partner_id}/relationships", response_model=RelationshipsPage,
                openapi_extra=needs("partners.read"))
    def list_partner_relationships(
        partner_id: str,
        status: Standing | None = STANDING,
        limit: int = PAGE_SIZE,
        after: str | None = AFTER,
    ) -> Any:
        """The offers the partner has a relationship with (its standing and custom terms
        on each), in the order they began."""
        after_seq = decode_cursor("relationships", after)
        page = store.list_partner_relationships(partner_id, status, after_seq, limit)
        return relationships_page(page)

    @router.delete("/{partner_id}/api-keys/{key_id}", response_model=ApiKeyOut, responses=PENDING,
                   openapi_extra=needs("partners.write"))
    def revoke_api_key(partner_id: str, key_id: str) -> Any:
        """Revoke the key (again: no change); the gateway refuses it once it reads this."""
        return ack(ApiKeyOut.of(store.revoke_api_key(partner_id, key_id)))

    return router


def offer_routes(store: Partners, settings: PartnersSettings, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/offers", tags=["offers"], dependencies=[admin_auth(credentials)])

    def ack(body: BaseModel, status_code: int = 200) -> Response:
        return acknowledged(store, settings, body, status_code)

    @router.post("", status_code=201, response_model=OfferWithTokenOut, responses=PENDING,
                 openapi_extra=needs("offers.write"))
    def create_offer(body: OfferIn) -> Any:
        """A new offer, with its postback token: shown in this answer only (reads never
        show it; rotate it to get a new one)."""
        created = store.create_offer(status=body.status, **body.terms())
        return ack(OfferWithTokenOut.with_token(created.offer, created.postback_token), 201)

    @router.get("", response_model=OffersPage, openapi_extra=needs("partners.read"))
    def list_offers(
        status: OfferStatus | None = Query(None),  # noqa: B008
        q: str | None = Query(None, min_length=1, max_length=200, pattern=NO_NUL,
                              description="part of the name, or the offer_id"),
        limit: int = PAGE_SIZE,
        after: str | None = AFTER,
    ) -> Any:
        """Offers in the order they were created; ``next`` is the cursor of the next page."""
        page = store.list_offers(Listing("offers", status.value if status else None, q=q),
                                 decode_cursor("offers", after), limit)
        return OffersPage(offers=[OfferOut.of(o) for o in page.items],
                          next=encode_cursor("offers", page.next_after) if page.next_after else None)

    @router.get("/{offer_id}", openapi_extra=needs("partners.read"))
    def get_offer(offer_id: str) -> OfferOut:
        return OfferOut.of(store.get_offer(offer_id))

    @router.patch("/{offer_id}", response_model=OfferOut, responses=PENDING,
                  openapi_extra=needs("offers.write"))
    def edit_offer(offer_id: str, body: OfferPatch) -> Any:
        """Change the fields given; published as OfferUpdated with the whole new state.
        Conversions already decided keep the terms they were priced with."""
        offer, _ = store.edit_offer(offer_id, body.terms())
        return ack(OfferOut.of(offer))

    @router.post("/{offer_id}/status", response_model=OfferOut, responses=PENDING,
                 openapi_extra=needs("offers.write"))
    def change_offer_status(offer_id: str, body: OfferStatusIn) -> Any:
        return ack(OfferOut.of(store.change_offer_status(offer_id, body.status)))

    @router.post("/{offer_id}/postback-token/rotate", response_model=PostbackTokenOut, responses=PENDING,
                 openapi_extra=needs("offers.write"))
    def rotate_postback_token(offer_id: str, body: TokenRotationIn | None = None) -> Any:
        """A new postback token, shown in this answer only. The token it replaces keeps
        working for ``overlap_hours`` (default 24; 0: it stops now), so the advertiser's
        servers move without a lost postback. Only hashes are kept and published
        (OfferPostbackTokenRotated)."""
        rotation = body or TokenRotationIn()
        rotated = store.rotate_postback_token(offer_id, rotation.overlap_hours)
        return ack(PostbackTokenOut(postback_token=rotated.postback_token,
                                    previous_token_valid_until=rotated.offer.previous_token_valid_until))

    @router.put("/{offer_id}/partners/{partner_id}", response_model=RelationshipOut, responses=PENDING,
                openapi_extra=needs("relationships.write"))
    def set_relationship(offer_id: str, partner_id: str, body: RelationshipIn) -> Any:
        """The advertiser's decision and the partner's custom terms (the whole state: what
        is left out is cleared); it ends a pending application."""
        relationship = store.set_relationship(offer_id, partner_id, body.approved, **body.custom())
        return ack(RelationshipOut.of(relationship))

    @router.get("/{offer_id}/partners", response_model=RelationshipsPage,
                openapi_extra=needs("partners.read"))
    def list_relationships(
        offer_id: str,
        status: Standing | None = STANDING,
        limit: int = PAGE_SIZE,
        after: str | None = AFTER,
    ) -> Any:
        """The partners of an offer, in the order their relationships began."""
        page = store.list_relationships(offer_id, status, decode_cursor("relationships", after), limit)
        return relationships_page(page)

    @router.get("/{offer_id}/partners/{partner_id}", openapi_extra=needs("partners.read"))
    def get_relationship(offer_id: str, partner_id: str) -> RelationshipOut:
        return RelationshipOut.of(store.get_relationship(offer_id, partner_id))

    @router.post("/{offer_id}/partners/{partner_id}/apply", response_model=RelationshipOut,
                 openapi_extra=needs("partners.apply"),
                 responses={**PENDING, 201: {"description": "the application was recorded"},
                            404: {"description": "no such offer for this partner (private or deleted)"},
                            409: {"description": "declined before, or the partner is not active"}})
    def apply_for_offer(offer_id: str, partner_id: str) -> Any:
        """The partner asks to run the offer (the gateway calls this on its behalf): a
        public offer approves it at once, one that requires approval records a pending
        application (``approved`` false, ``application`` true). Idempotent: an existing
        relationship is answered as it is (200), never downgraded."""
        applied = store.apply_for_offer(offer_id, partner_id)
        return ack(RelationshipOut.of(applied.relationship), 201 if applied.created else 200)

    @router.get("/{offer_id}/partners/{partner_id}/tracking-link", response_model=TrackingLinkOut,
                openapi_extra=needs("partners.read"),
                responses={503: {"description": "what the link depends on is not on the log yet"}})
    def tracking_link(offer_id: str, partner_id: str) -> Any:
        """The partner's link for the offer, approved or not: the tracker decides what a
        click on it does (redirect, fallback) and records it either way. Handed out only
        once the offer, the partner and their relationship are on the log, so that the
        link works on its first click (tracking catches up with the log on a link it
        does not know)."""
        offer = store.get_offer(offer_id)
        partner = store.get_partner(partner_id)
        return tracking_link_once_published(store, settings, f"/c/{offer.offer_id}/{partner.partner_id}")

    return router


def smart_link_routes(store: Partners, settings: PartnersSettings, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/smart-links", tags=["smart links"], dependencies=[admin_auth(credentials)])

    def ack(body: BaseModel, status_code: int = 200) -> Response:
        return acknowledged(store, settings, body, status_code)

    @router.post("", status_code=201, response_model=SmartLinkOut, responses=PENDING,
                 openapi_extra=needs("offers.write"))
    def create_smart_link(body: SmartLinkIn) -> Any:
        """One link for a partner over a set of offers (``GET /s/{smart_link_id}/{partner_id}``
        on tracking): each visitor goes to an offer of the lowest priority that takes it
        (active, the partner approved, its targeting passed, under its caps), by weight
        among those; published as SmartLinkSet."""
        return ack(SmartLinkOut.of(store.create_smart_link(**body.fields())), 201)

    @router.get("", response_model=SmartLinksPage, openapi_extra=needs("partners.read"))
    def list_smart_links(
        q: str | None = Query(None, min_length=1, max_length=200, pattern=NO_NUL,
                              description="part of the name, or the smart_link_id"),
        limit: int = PAGE_SIZE,
        after: str | None = AFTER,
    ) -> Any:
        """Smart links in the order they were created; ``next`` is the cursor of the next page."""
        page = store.list_smart_links(Listing("smart_links", q=q), decode_cursor("smart_links", after), limit)
        return SmartLinksPage(smart_links=[SmartLinkOut.of(s) for s in page.items],
                              next=encode_cursor("smart_links", page.next_after) if page.next_after else None)

    @router.get("/{smart_link_id}", openapi_extra=needs("partners.read"))
    def get_smart_link(smart_link_id: str) -> SmartLinkOut:
        return SmartLinkOut.of(store.get_smart_link(smart_link_id))

    @router.patch("/{smart_link_id}", response_model=SmartLinkOut, responses=PENDING,
                  openapi_extra=needs("offers.write"))
    def edit_smart_link(smart_link_id: str, body: SmartLinkPatch) -> Any:
        """Change the fields given; published as SmartLinkSet with the whole new state."""
        return ack(SmartLinkOut.of(store.edit_smart_link(smart_link_id, body.fields())))

    @router.get("/{smart_link_id}/partners/{partner_id}/tracking-link", response_model=TrackingLinkOut,
                openapi_extra=needs("partners.read"),
                responses={503: {"description": "what the link depends on is not on the log yet"}})
    def smart_tracking_link(smart_link_id: str, partner_id: str) -> Any:
        """The partner's link for the smart link, handed out once the link and the partner
        are on the log (so that it works on its first click)."""
        smart_link = store.get_smart_link(smart_link_id)
        partner = store.get_partner(partner_id)
        return tracking_link_once_published(
            store, settings, f"/s/{smart_link.smart_link_id}/{partner.partner_id}")

    return router
