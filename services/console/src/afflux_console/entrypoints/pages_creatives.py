"""An offer's creatives: its banners, text links and emails, active or archived, adding
and editing one (a banner's image uploaded as a file), archiving and restoring.

Every read and change is the partners service's, made with the signed-in person's own
credential: every role reads them (``partners.read``); a role without ``offers.write`` is
offered no form, and a form posted anyway is refused by partners (the 403 page). Partners
judges a creative (an image by its bytes: an SVG or a file over 150 KiB is refused at the
image field); its refusal comes back on the form, what was typed kept.

A banner is shown through ``/console/creatives/{id}/image``: asked of partners with the
viewer's credential and answered as the image's own bytes, only as one of the four image
types, with ``nosniff``, so the page needs no ``data:`` URI. An email's HTML is the
network's own: shown as escaped source, and previewed in ``<iframe sandbox="" srcdoc>``,
an opaque origin that runs no script, submits no form and reaches nothing of the
console's. That page's policy, as the portal's creatives page, lets the preview show the
email as a mail client would (inline styles, images over https); scripts, frames and
everything else stay as on every other console page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import Refused, Unavailable, segment
from afflux_console.entrypoints.browser_session import csrf_ok
from afflux_console.entrypoints.creative_forms import (
    IMAGE_TYPES,
    KINDS,
    LABELS,
    creative_body,
    form_field,
    posted_values,
    values_of,
)
from afflux_console.entrypoints.pages import (
    FORM_EXPIRED,
    NOTICES,
    SECURITY_HEADERS,
    Console,
    PageError,
    SignInFirst,
    Viewer,
)
from afflux_console.entrypoints.upload_form import UploadBound, UploadForm, UploadRefused, read_upload

PAGE = 24
SCOPE = "offers.write"
STATUSES = ("active", "archived")
PREVIEW_POLICY = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'").replace("img-src 'self'", "img-src 'self' https:")
"""The console's policy, but for the email previews' inline styles and https images."""
IMAGE_POLICY = "default-src 'none'; sandbox"
"""For anyone opening a banner's address itself: a picture, never a document."""
UPLOADS = re.compile(r"^/console/(offers/[^/]+/creatives|creatives/[^/]+)$")
"""The posts that may carry a file: a new creative, an edited one."""


def _writer(viewer: Viewer) -> None:
    if not viewer.may(SCOPE):
        raise PageError(403, "Creatives are changed by those who may change offers: your role may not.")


async def creatives_page(console: Console, viewer: Viewer, offer_id: str, request: Request) -> Response:
    params = {name: request.query_params.get(name) or None for name in ("status", "kind", "after")}
    params["status"] = params["status"] or "active"
    if params["status"] not in STATUSES or params["kind"] not in (None, *KINDS):
        raise PageError(422, "Show active or archived creatives, of a kind: banner, text link or email.")
    path = f"/v1/offers/{segment(offer_id)}"
    offer, found = await asyncio.gather(
        console.read(viewer, "partners", path),
        console.read(viewer, "partners", f"{path}/creatives", limit=PAGE, **params),
    )
    response = console.page("creatives.html", viewer, offer=offer, creatives=found.get("creatives", []),
                            next=found.get("next"), params=params, kinds=KINDS,
                            notice=console.notice(request))
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    return response


async def form_page(console: Console, viewer: Viewer, offer_id: str, kind: str, values: dict[str, str],
                    creative: dict[str, Any] | None = None, refused: Refused | UploadRefused | None = None,
                    ) -> Response:
    """The form to add a creative of ``kind`` (or edit ``creative``), with a refusal's
    message at the field it names, and at the top."""
    offer = await console.read(viewer, "partners", f"/v1/offers/{segment(offer_id)}")
    field = (form_field(refused.field) if isinstance(refused, Refused)
             else "image" if refused is not None else None)
    error = None if refused is None else f"{LABELS[field]}: {refused.message}" if field else refused.message
    return console.page("creative_form.html", viewer, refused.status if refused else 200, offer=offer,
                        kind=kind, kinds=KINDS, values=values, creative=creative, error=error,
                        field=field, field_error=refused.message if field and refused else None,
                        accept=",".join(IMAGE_TYPES))


async def save_new(console: Console, request: Request, offer_id: str) -> Response:
    viewer, form = await _posted(console, request)
    kind = form.get("kind")
    if kind not in KINDS:
        raise PageError(422, "Kind: a banner, a text link or an email.")
    path = f"/v1/offers/{segment(offer_id)}/creatives"
    try:
        await console.write(viewer, "POST", "partners", path, creative_body(kind, form, creating=True))
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await form_page(console, viewer, offer_id, kind, posted_values(form), None, refused)
    return console.done(f"/console/offers/{segment(offer_id)}/creatives", "creative_added")


async def save_edit(console: Console, request: Request, creative_id: str) -> Response:
    viewer, form = await _posted(console, request)
    creative = await _creative(console, viewer, creative_id)
    try:
        await console.write(viewer, "PATCH", "partners", f"/v1/creatives/{segment(creative_id)}",
                            creative_body(creative["kind"], form, creating=False))
    except Refused as refused:
        if refused.status in (401, 403):
            raise
        return await form_page(console, viewer, creative["offer_id"], creative["kind"], posted_values(form),
                               creative, refused)
    return console.done(f"/console/offers/{segment(creative['offer_id'])}/creatives", "creative_saved")


async def change_status(console: Console, request: Request, creative_id: str) -> Response:
    """Archive (hidden from partners, its image no longer served to them) or restore."""
    viewer, form = await console.posted(request)
    status = form.get("status")
    if status not in STATUSES:
        raise PageError(422, "Status: active or archived.")
    answer = await console.write(viewer, "PATCH", "partners", f"/v1/creatives/{segment(creative_id)}",
                                 {"status": status})
    back = f"/console/offers/{segment(answer.body['offer_id'])}/creatives"
    return console.done(back + ("?status=archived" if status == "active" else ""), f"creative_{status}")


async def image(console: Console, request: Request, creative_id: str) -> Response:
    """The banner's bytes as partners holds them, asked with the viewer's credential."""
    creative = await _creative(console, await console.viewer(request), creative_id)
    content_type = (creative.get("image") or {}).get("content_type")
    if content_type not in IMAGE_TYPES or not creative.get("image_base64"):
        raise PageError(404, "This creative has no image.")
    try:
        data = base64.b64decode(creative["image_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise PageError(404, "This creative has no readable image.") from None
    return Response(data, media_type=content_type,
                    headers={**SECURITY_HEADERS, "Content-Security-Policy": IMAGE_POLICY})


async def upload_refused(console: Console, request: Request, refused: UploadRefused) -> Response:
    """An upload not read (too large, or not a form): its form again, saying why (blank:
    none of its fields were read); the error page when even that cannot be shown."""
    try:
        viewer = await console.viewer(request)
        found = UPLOADS.match(request.url.path)
        target = found.group(1) if found else ""
        if target.startswith("creatives/"):
            creative = await _creative(console, viewer, target.removeprefix("creatives/"))
            return await form_page(console, viewer, creative["offer_id"], creative["kind"],
                                   values_of(creative), creative, refused)
        offer_id = target.removeprefix("offers/").removesuffix("/creatives")
        return await form_page(console, viewer, offer_id, "banner", {}, None, refused)
    except (SignInFirst, Refused, Unavailable, PageError):
        return await console.error_page(request, refused.status, refused.message)


async def _posted(console: Console, request: Request) -> tuple[Viewer, UploadForm]:
    """As ``Console.posted``, for a form that may carry a file (``UploadRefused``: the form
    again, saying why)."""
    viewer = await console.viewer(request)
    form = await read_upload(request)
    if not csrf_ok(form.get("csrf"), viewer.token):
        raise PageError(403, FORM_EXPIRED)
    return viewer, form


async def _creative(console: Console, viewer: Viewer, creative_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await console.read(viewer, "partners", f"/v1/creatives/{segment(creative_id)}")
    return found


def bound_uploads(app: FastAPI, console: Console) -> None:
    """Answer an upload declared too large with its form, before the service-wide bound."""

    async def answer(request: Request, refused: UploadRefused) -> Response:
        return await upload_refused(console, request, refused)

    app.add_middleware(UploadBound, matches=lambda path: bool(UPLOADS.match(path)), answer=answer)


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/offers/{offer_id}/creatives")
    async def creatives(request: Request, offer_id: str) -> Response:
        return await creatives_page(console, await console.viewer(request), offer_id, request)

    @router.get("/console/offers/{offer_id}/creatives/new")
    async def new(request: Request, offer_id: str) -> Response:
        viewer = await console.viewer(request)
        _writer(viewer)
        kind = request.query_params.get("kind", "banner")
        if kind not in KINDS:
            raise PageError(422, "Kind: a banner, a text link or an email.")
        return await form_page(console, viewer, offer_id, kind, {})

    @router.post("/console/offers/{offer_id}/creatives")
    async def create(request: Request, offer_id: str) -> Response:
        try:
            return await save_new(console, request, offer_id)
        except UploadRefused as refused:
            return await upload_refused(console, request, refused)

    @router.get("/console/creatives/{creative_id}/edit")
    async def edit(request: Request, creative_id: str) -> Response:
        viewer = await console.viewer(request)
        _writer(viewer)
        creative = await _creative(console, viewer, creative_id)
        return await form_page(console, viewer, creative["offer_id"], creative["kind"], values_of(creative),
                               creative)

    @router.post("/console/creatives/{creative_id}")
    async def save(request: Request, creative_id: str) -> Response:
        try:
            return await save_edit(console, request, creative_id)
        except UploadRefused as refused:
            return await upload_refused(console, request, refused)

    @router.post("/console/creatives/{creative_id}/status")
    async def status(request: Request, creative_id: str) -> Response:
        return await change_status(console, request, creative_id)

    @router.get("/console/creatives/{creative_id}/image")
    async def banner(request: Request, creative_id: str) -> Response:
        return await image(console, request, creative_id)

    NOTICES.update({
        "creative_added": "The creative was added: the offer's partners get it with their own link.",
        "creative_saved": "The creative was saved.",
        "creative_archived": "The creative was archived: partners no longer see it.",
        "creative_active": "The creative was restored: partners see it again.",
    })
    return router
