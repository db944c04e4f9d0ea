"""The creatives routes of the partners admin API: an offer's banners, text links and
emails, which the gateway hands each partner approved on the offer with its own link.

Same scopes as the offer's (``offers.write`` to change, ``partners.read`` to read); a
write answers once ``CreativeSet`` is on the log (else 202). A banner's image is sent
as ``image_base64`` (standard base64 of the file) with its ``filename``; the format is
read from the bytes, so a refusal names ``image_base64`` whatever the file was called.
Lists and writes leave the image's bytes out (``image_base64`` null); reading one
creative gives them back.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from afflux_contracts.creatives import MAX_IMAGE_BYTES
from afflux_partners.application.creatives import Creatives
from afflux_partners.domain.creative import Creative
from afflux_partners.entrypoints.http import AFTER, PENDING, acknowledged, decode_cursor, encode_cursor
from afflux_partners.entrypoints.schemas import Request, Text
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import admin_auth

MAX_BASE64 = 2 * MAX_IMAGE_BYTES
"""Room for a file over the cap, so that the domain names the refusal (``image_too_large``)."""
Lines = Field(None, max_length=100, description="lines to choose from (up to 20)")


class _CreativeFields(Request):
    def fields(self) -> dict[str, Any]:
        """The fields the request named (the kind aside)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "kind"}


class CreativeIn(_CreativeFields):
    """A banner: ``image_base64``, ``filename``, ``alt_text``; a text link: ``link_text``; an
    email: ``subject_lines``, ``from_lines``, ``html_body`` (with ``{tracking_link}``)."""

    kind: Literal["banner", "text_link", "email"]
    name: Text
    image_base64: str | None = Field(None, max_length=MAX_BASE64,
                                     description="the image file, base64: PNG, JPEG, GIF or WebP, "
                                                 "at most 150 KiB")
    filename: Text | None = None
    alt_text: Text | None = None
    link_text: Text | None = None
    subject_lines: list[Text] | None = Lines
    from_lines: list[Text] | None = Lines
    html_body: str | None = Field(None, max_length=200_000,
                                  description="the email's HTML; {tracking_link} is where the partner's "
                                              "link goes")


class CreativePatch(_CreativeFields):
    """Only the fields given change; ``status`` archives (hidden from partners) or restores."""

    name: Text | None = None
    status: Literal["active", "archived"] | None = None
    image_base64: str | None = Field(None, max_length=MAX_BASE64, description="a new image")
    filename: Text | None = None
    alt_text: Text | None = None
    link_text: Text | None = None
    subject_lines: list[Text] | None = Lines
    from_lines: list[Text] | None = Lines
    html_body: str | None = Field(None, max_length=200_000)


class ImageOut(BaseModel):
    format: str
    content_type: str
    width: int
    height: int
    byte_size: int
    sha256: str
    filename: str | None


class CreativeOut(BaseModel):
    creative_id: str
    offer_id: str
    name: str
    kind: str
    status: str
    image: ImageOut | None
    image_base64: str | None = Field(description="the image's bytes: only when one creative is read")
    alt_text: str | None
    link_text: str | None
    subject_lines: list[str]
    from_lines: list[str]
    html_body: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, creative: Creative, with_bytes: bool = False) -> CreativeOut:
        image = creative.image
        return cls(
            creative_id=creative.creative_id, offer_id=creative.offer_id, name=creative.name,
            kind=creative.kind, status=creative.status,
            image=ImageOut(format=image.format.value, content_type=image.format.content_type,
                           width=image.width, height=image.height, byte_size=image.byte_size,
                           sha256=image.sha256, filename=image.filename) if image is not None else None,
            image_base64=base64.b64encode(image.data).decode() if image is not None and with_bytes else None,
            alt_text=creative.alt_text, link_text=creative.link_text,
            subject_lines=list(creative.subject_lines), from_lines=list(creative.from_lines),
            html_body=creative.html_body, created_at=creative.created_on, updated_at=creative.modified_on)


class CreativesPage(BaseModel):
    creatives: list[CreativeOut]
    next: str | None = Field(description="the `after` of the next page; null on the last one")


def mount_creatives(app: FastAPI, creatives: Creatives, settings: PartnersSettings,
                    credentials: Credentials) -> None:
    app.include_router(creative_routes(creatives, settings, credentials))


def creative_routes(creatives: Creatives, settings: PartnersSettings, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["creatives"], dependencies=[admin_auth(credentials)])

    def ack(creative: Creative, status_code: int = 200) -> Response:
        return acknowledged(creatives.store, settings, CreativeOut.of(creative), status_code)

    @router.post("/offers/{offer_id}/creatives", status_code=201, response_model=CreativeOut,
                 responses=PENDING, openapi_extra=needs("offers.write"))
    def create_creative(offer_id: str, body: CreativeIn) -> Any:
        """A banner, text link or email for the offer's partners; published as CreativeSet
        (a banner's image in it). A bad image, a missing ``{tracking_link}`` or a field of
        another kind is 422 naming the field; an unknown offer 404, a deleted one 409."""
        return ack(creatives.create(offer_id, body.kind, body.fields()), 201)

    @router.get("/offers/{offer_id}/creatives", response_model=CreativesPage,
                openapi_extra=needs("partners.read"))
    def list_creatives(
        offer_id: str,
        status: Literal["active", "archived"] | None = None,
        kind: Literal["banner", "text_link", "email"] | None = None,
        limit: int = Query(50, ge=1, le=100, description="page size"),
        after: str | None = AFTER,
    ) -> Any:
        """The offer's creatives in the order they were created (images without their bytes)."""
        page = creatives.of_offer(offer_id, status, kind, decode_cursor("creatives", after), limit)
        return CreativesPage(creatives=[CreativeOut.of(c) for c in page.items],
                             next=encode_cursor("creatives", page.next_after) if page.next_after else None)

    @router.get("/creatives/{creative_id}", response_model=CreativeOut, openapi_extra=needs("partners.read"))
    def get_creative(creative_id: str) -> Any:
        """One creative, a banner's image bytes included (``image_base64``)."""
        return CreativeOut.of(creatives.get(creative_id), with_bytes=True)

    @router.patch("/creatives/{creative_id}", response_model=CreativeOut, responses=PENDING,
                  openapi_extra=needs("offers.write"))
    def edit_creative(creative_id: str, body: CreativePatch) -> Any:
        """Change the fields given (a new image with ``image_base64``); ``status: archived``
        hides it from partners, ``active`` restores it. Published as CreativeSet."""
        return ack(creatives.edit(creative_id, body.fields()))

    return router
