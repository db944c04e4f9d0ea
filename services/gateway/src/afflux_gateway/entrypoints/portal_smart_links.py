"""The portal's "Smart links" page: the smart links holding an offer the partner may run,
each with the partner's own link to copy (and a generator with subs, as for an offer's
link) and the offers it may send visitors to (``application/smart_links.py``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from afflux_gateway.application.smart_links import SmartLinkReads, smart_links_for
from afflux_gateway.domain.access import MAX_SUB_LENGTH, SUB_NAMES, smart_link_url
from afflux_gateway.entrypoints.portal import Portal
from afflux_gateway.entrypoints.session import Session


class SmartLinkPages:
    def __init__(self, portal: Portal, reads: SmartLinkReads) -> None:
        self.portal = portal
        self.reads = reads

    def page(self, session: Session, selected: str | None = None,
             given: dict[str, str] | None = None) -> Response:
        """The list; ``selected`` names the link whose URL carries the subs ``given``."""
        tracking_url = self.portal.tracking_url
        links = smart_links_for(self.reads, session.partner_id, tracking_url)
        for link in links:
            if link["smart_link_id"] == selected:
                link["url"] = smart_link_url(tracking_url, link["smart_link_id"], session.partner_id,
                                             given or {})
        known = selected is None or any(link["smart_link_id"] == selected for link in links)
        return self.portal.page("smart_links.html", session, 200 if known else 404, smart_links=links,
                                subs=SUB_NAMES, selected=selected, given=given or {},
                                notice=None if known else "No such smart link.")


def mount_smart_link_pages(app: FastAPI, pages: SmartLinkPages) -> None:
    @app.get("/portal/smart-links", include_in_schema=False)
    def smart_links(request: Request) -> Response:
        return pages.page(pages.portal.session(request))

    @app.get("/portal/smart-links/{smart_link_id}/link", include_in_schema=False)
    def link(request: Request, smart_link_id: str) -> Response:
        given = {name: value[:MAX_SUB_LENGTH] for name, value in request.query_params.items()
                 if name in SUB_NAMES and value}
        return pages.page(pages.portal.session(request), smart_link_id, given)
