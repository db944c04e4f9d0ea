"""Creatives over HTTP: a partner's own (``GET /v1/me/offers/{offer_id}/creatives``) and a
banner's image, public (``GET /creatives/{creative_id}/{sha256}.{ext}``).

The partner route answers for an offer the partner may run, by the tracking link's own
rule and refusals (404 an offer it may not see, 403 one it is not approved for), each
active creative with the partner's link and its code. The image route needs no
credential: partners embed banners in their own pages, where nobody signs in. It
serves an active banner's exact bytes under the content type its format was read as,
``nosniff`` (a browser never guesses a type of its own) and, the digest being in the
path, cacheable for a year; an unknown, archived or replaced image is 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from afflux_contracts import ImageFormat
from afflux_gateway.application.creatives import CreativeReads, creatives_for
from afflux_gateway.application.reads import KeyHolder, Views
from afflux_gateway.domain.access import tracking_link
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_gateway.entrypoints.http import runnable_offer
from afflux_gateway.entrypoints.link_subs import LinkSubs
from afflux_plumbing.auth import public
from afflux_plumbing.http import NotFound

IMAGE_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "cross-origin",
}
"""An image is only ever an image: opened on its own it runs nothing (``sandbox``), and any
site may embed it (``cross-origin``: that is what a banner is for)."""


def offer_creatives(views: Views, reads: CreativeReads, partner_id: str, offer_id: str,
                    subs: dict[str, str], tracking_url: str, site_url: str) -> dict[str, Any]:
    """The answer of the partner route and the portal page: 404/403 as the tracking link's."""
    offer = runnable_offer(views, partner_id, offer_id)
    link = tracking_link(tracking_url, offer_id, partner_id, subs)
    return {"offer_id": offer_id, "offer_name": offer["name"], "tracking_link": link,
            "creatives": creatives_for(reads, offer_id, link, site_url)}


def banner_image(reads: CreativeReads, creative_id: str, filename: str) -> Response:
    """The image named ``{sha256}.{ext}`` of an active banner, else 404."""
    row = reads.active_banner(creative_id[:64])
    image_format = ImageFormat(row["image_format"]) if row is not None else None
    if row is None or image_format is None or filename != f"{row['sha256']}.{image_format.extension}":
        raise NotFound("image_not_found", "no such image")
    return Response(bytes(row["image"]), media_type=image_format.content_type,
                    headers={**IMAGE_HEADERS, "ETag": f'"{row["sha256"]}"'})


def creatives_router(views: Views, reads: CreativeReads, guard: Guard, tracking_url: str,
                     site_url: str) -> APIRouter:
    router = APIRouter(tags=["partner"])
    me = partner_auth(guard)

    @router.get("/v1/me/offers/{offer_id}/creatives")
    def my_creatives(
        offer_id: str,
        subs: LinkSubs,
        holder: KeyHolder = me,
    ) -> dict[str, Any]:
        """The offer's active banners, text links and emails, each with your tracking link
        (sub1..sub5 filled in) and ready to paste: a banner's ``html`` (its public
        ``image_url``, width, height, alt text), a text link's ``html``, an email's subject
        and from lines and its ``html_body`` with your link in place."""
        return offer_creatives(views, reads, holder.partner_id, offer_id, subs, tracking_url, site_url)

    @router.get("/creatives/{creative_id}/{filename}", response_model=None,
                openapi_extra=public("partners' pages embed a banner's image: anyone may load it"),
                responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/gif": {},
                                             "image/webp": {}}}})
    def image(creative_id: str, filename: str) -> Response:
        """A banner's image, public (partners embed it in their pages); its address holds its
        SHA-256, so it is cached for good and a new image gets a new address."""
        return banner_image(reads, creative_id, filename)

    return router
