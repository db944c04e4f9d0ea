"""The partner's smart links through the gateway: ``GET /v1/me/smart-links`` with its
``X-Api-Key`` (``application/smart_links.py`` decides what it may see)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from afflux_gateway.application.reads import KeyHolder
from afflux_gateway.application.smart_links import SmartLinkReads, smart_links_for
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_gateway.entrypoints.link_subs import LinkSubs


def smart_links_router(reads: SmartLinkReads, guard: Guard, tracking_url: str) -> APIRouter:
    router = APIRouter(prefix="/v1/me", tags=["partner"])
    me = partner_auth(guard)

    @router.get("/smart-links")
    def smart_links(
        subs: LinkSubs,
        holder: KeyHolder = me,
    ) -> dict[str, Any]:
        """The network's smart links holding an offer you may run, each with your own link
        (sub1..sub5 filled in) and the offers of it you may run, with your payout on each:
        tracking sends each visitor to one of them that takes the visitor."""
        return {"smart_links": smart_links_for(reads, holder.partner_id, tracking_url, subs)}

    return router
