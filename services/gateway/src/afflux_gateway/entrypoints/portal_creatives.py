"""The portal's "Creatives" page of an offer the partner may run: each banner's preview,
the text links and the emails, with the code to copy filled in with the partner's link
(and the subs it types, as the offer's link generator takes them).

An email's body is the network's HTML: the page shows it as escaped source, and previews
it in an iframe with ``sandbox=""`` and ``srcdoc``, a document of an opaque origin that
runs no script, submits no form and reaches nothing of the portal's. The page's policy
lets that preview show the email as mail clients do (inline styles, images over https);
scripts stay the portal's own only.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from afflux_gateway.application.creatives import CreativeReads
from afflux_gateway.domain.access import MAX_SUB_LENGTH, SUB_NAMES
from afflux_gateway.entrypoints.creatives import offer_creatives
from afflux_gateway.entrypoints.portal import Portal
from afflux_gateway.entrypoints.session import Session
from afflux_plumbing.http import ApiError

PAGE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The portal's policy, but for the email previews' inline styles and https images."""


class CreativePages:
    def __init__(self, portal: Portal, reads: CreativeReads, site_url: str) -> None:
        self.portal = portal
        self.reads = reads
        self.site_url = site_url

    def page(self, session: Session, offer_id: str, given: dict[str, str]) -> Response:
        try:
            found = offer_creatives(self.portal.views, self.reads, session.partner_id, offer_id, given,
                                    self.portal.tracking_url, self.site_url)
        except ApiError as refused:
            notice = ("No such offer." if refused.status == 404
                      else "Apply for this offer to get its creatives.")
            return self.portal.offers(session, notice=notice, status=refused.status)
        response = self.portal.page("creatives.html", session, offer=found, subs=SUB_NAMES, given=given)
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        return response


def mount_creative_pages(app: FastAPI, pages: CreativePages) -> None:
    @app.get("/portal/offers/{offer_id}/creatives", include_in_schema=False)
    def creatives(request: Request, offer_id: str) -> Response:
        given = {name: value[:MAX_SUB_LENGTH] for name, value in request.query_params.items()
                 if name in SUB_NAMES and value}
        return pages.page(pages.portal.session(request), offer_id, given)
