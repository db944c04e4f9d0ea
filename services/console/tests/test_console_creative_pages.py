"""An offer's creatives in the console over a real console and a real partners service
(one PostgreSQL, a broker of the module's own; the other services away): a manager
uploads a banner (a PNG made here) through the multipart form and adds a text link and an
email; the page lists them, the preview route serves the banner's exact bytes; an SVG and
a file too large come back on the form at the image field (a request far too large is a
413 page, never a 5xx, whether its size is declared or streamed); archiving and restoring
move a creative between the tabs; an analyst sees them with no form, and a form forged in
their browser is refused by partners (403)."""

from __future__ import annotations

import hashlib
import html
import io
import os
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from console_fixtures import RunningConsole
from partners_fixtures import ADMIN_TOKEN as PARTNERS_TOKEN
from partners_fixtures import RunningPartners, offer_body
from PIL import Image
from test_console_pages import csrf_of, new_user, nowhere, signed_in_browser  # noqa: F401 (a fixture)

from afflux_console.entrypoints.browser_session import SESSION_COOKIE
from afflux_console.entrypoints.pages_creatives import PAGE
from afflux_console.entrypoints.upload_form import MAX_UPLOAD_BYTES
from afflux_infra.testing import broker_of_its_own, eventually

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="250"><script>alert(1)</script></svg>'
EMAIL = '<p style="color:#1f2a44">Spring is here: <a href="{tracking_link}">Shop the sale</a></p>'


@pytest.fixture(scope="module")
def creatives_broker(infra: object) -> Iterator[str]:
    with broker_of_its_own(infra) as servers:  # type: ignore[arg-type]
        yield servers


@pytest.fixture(scope="module")
async def partners(infra: object, creatives_broker: str) -> AsyncIterator[RunningPartners]:
    async with RunningPartners(infra.new_database(), creatives_broker,  # type: ignore[attr-defined]
                               AFFLUX_TRACKING_URL="https://track.example/") as service:
        yield service


@pytest.fixture(scope="module")
async def console(infra: object, creatives_broker: str, partners: RunningPartners,
                  nowhere: None) -> AsyncIterator[RunningConsole]:  # noqa: F811 (the fixture)
    """The console asking the real partners; every other service a port nothing listens on."""
    os.environ["AFFLUX_PARTNERS_URL"] = partners.base_url
    async with RunningConsole(infra.new_database(), creatives_broker) as service:  # type: ignore[attr-defined]
        yield service


def picture(kind: str = "PNG", colour: str = "seagreen") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 250), colour).save(out, kind)
    return out.getvalue()


def noise_png(at_least: int) -> bytes:
    """A PNG of random pixels (it cannot compress) of at least ``at_least`` bytes."""
    side = int((at_least / 3) ** 0.5) + 8
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), hashlib.shake_256(b"noise").digest(side * side * 3)).save(out, "PNG")
    assert len(out.getvalue()) >= at_least
    return out.getvalue()


async def new_offer(partners: RunningPartners) -> str:
    async with partners.client(headers={"Authorization": f"Bearer {PARTNERS_TOKEN}"}) as admin:
        created = await admin.post("/v1/offers", json=offer_body(name="Garden tools"))
    assert created.status_code == 201, created.text
    return str(created.json()["offer_id"])


async def staff_of(console: RunningConsole, partners: RunningPartners, role: str) -> httpx.AsyncClient:
    """A browser signed in as a new staff user of ``role``, once partners admits the session
    (its staff view reads it from the log: a page asked before would be signed out)."""
    email = (await new_user(console.base_url, role))["email"]
    browser: httpx.AsyncClient = await signed_in_browser(console.base_url, email)
    headers = {"Authorization": f"Bearer {browser.cookies[SESSION_COOKIE]}"}
    await eventually(lambda: partners.get("/v1/offers", headers=headers).status_code != 401, timeout=30)
    return browser


@pytest.fixture(scope="module")
async def manager(console: RunningConsole, partners: RunningPartners) -> AsyncIterator[httpx.AsyncClient]:
    browser = await staff_of(console, partners, "manager")
    yield browser
    await browser.aclose()


async def upload(browser: httpx.AsyncClient, offer_id: str, name: str, filename: str, data: bytes,
                 content_type: str = "image/png") -> httpx.Response:
    """The banner form as a browser posts it: multipart, the file beside the fields."""
    form = await browser.get(f"/console/offers/{offer_id}/creatives/new?kind=banner")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text, form.text
    fields = {"csrf": csrf_of(form.text), "kind": "banner", "name": name, "alt_text": "Garden tools: 20% off"}
    return await browser.post(f"/console/offers/{offer_id}/creatives", data=fields,
                              files={"image": (filename, data, content_type)})


def ids_on(page: str) -> list[str]:
    return re.findall(r'<section class="card creative" id="creative-([0-9a-f]+)"', page)


async def test_a_manager_adds_a_banner_a_text_link_and_an_email_and_the_page_shows_each(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    offer = await manager.get(f"/console/offers/{offer_id}")
    assert f'href="/console/offers/{offer_id}/creatives"' in offer.text
    png = picture()

    made = await upload(manager, offer_id, "Rectangle", "spring.png", png)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == f"/console/offers/{offer_id}/creatives?done=creative_added"
    form = await manager.get(f"/console/offers/{offer_id}/creatives/new?kind=text_link")
    csrf = csrf_of(form.text)
    link = await manager.post(f"/console/offers/{offer_id}/creatives", files={
        "csrf": (None, csrf), "kind": (None, "text_link"), "name": (None, "Footer link"),
        "link_text": (None, "Shop garden tools <20% off>")})
    assert link.status_code == 303, link.text
    email = await manager.post(f"/console/offers/{offer_id}/creatives", data={
        "csrf": csrf, "kind": "email", "name": "Spring mail",
        "subject_lines": "Spring is here\nTools for spring", "from_lines": "Garden Co", "html_body": EMAIL})
    assert email.status_code == 303, email.text

    page = await manager.get(made.headers["location"])
    assert page.status_code == 200 and "The creative was added" in page.text
    banner_id = ids_on(page.text)[0]
    assert len(ids_on(page.text)) == 3
    assert f'<img src="/console/creatives/{banner_id}/image" width="300" height="250"' in page.text
    assert "300\N{MULTIPLICATION SIGN}250 px · PNG" in page.text and "spring.png" in page.text
    assert "Shop garden tools &lt;20% off&gt;" in page.text, "the link text, escaped"
    assert "Tools for spring" in page.text and "Garden Co" in page.text
    escaped = "&lt;p style=&#34;color:#1f2a44&#34;&gt;Spring is here"
    assert f"<code>{escaped}" in page.text, "the HTML shown as source"
    assert f'sandbox="" srcdoc="{escaped}' in page.text, "the preview: a sandboxed frame, escaped"
    policy = page.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy

    served = await manager.get(f"/console/creatives/{banner_id}/image")
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    text_link_id = ids_on(page.text)[1]
    assert (await manager.get(f"/console/creatives/{text_link_id}/image")).status_code == 404


async def test_an_edit_replaces_the_banners_image_and_keeps_it_when_no_file_is_chosen(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    assert (await upload(manager, offer_id, "Leaderboard", "a.png", picture())).status_code == 303
    banner_id = ids_on((await manager.get(f"/console/offers/{offer_id}/creatives")).text)[0]
    form = await manager.get(f"/console/creatives/{banner_id}/edit")
    assert form.status_code == 200 and 'value="Leaderboard"' in form.text
    gif = picture("GIF", "tomato")
    edited = await manager.post(f"/console/creatives/{banner_id}", data={
        "csrf": csrf_of(form.text), "name": "Leaderboard, autumn", "alt_text": ""},
        files={"image": ("autumn.gif", gif, "image/gif")})
    assert edited.status_code == 303, edited.text
    served = await manager.get(f"/console/creatives/{banner_id}/image")
    assert (served.content, served.headers["content-type"]) == (gif, "image/gif")

    renamed = await manager.post(f"/console/creatives/{banner_id}", data={
        "csrf": csrf_of(form.text), "name": "Leaderboard, winter"}, files={"image": ("", b"", "")})
    assert renamed.status_code == 303, renamed.text
    page = await manager.get(f"/console/offers/{offer_id}/creatives")
    assert "Leaderboard, winter" in page.text and "autumn.gif" in page.text, "the image kept"


async def test_an_svg_and_a_file_too_large_come_back_on_the_form_at_the_image_field(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    svg = await upload(manager, offer_id, "Vector", "logo.png", SVG)
    assert svg.status_code == 422, svg.text
    assert 'id="image-error"' in svg.text and "SVG is refused" in svg.text
    assert 'value="Vector"' in svg.text and 'value="Garden tools: 20% off"' in svg.text, "what was typed kept"

    heavy = await upload(manager, offer_id, "Heavy", "heavy.png", noise_png(200 * 1024))
    assert heavy.status_code == 422 and 'id="image-error"' in heavy.text and "150 KiB" in heavy.text

    huge = await upload(manager, offer_id, "Huge", "huge.png", noise_png(2 * 1024 * 1024))
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/html"), huge.text
    assert 'id="creative-form"' in huge.text and "at most 150 KiB" in huge.text

    form = await manager.get(f"/console/offers/{offer_id}/creatives/new?kind=banner")
    boundary = "afflux-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf_of(form.text)}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode()
    body += b"\0" * MAX_UPLOAD_BYTES + f"\r\n--{boundary}--\r\n".encode()

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it is read
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    chunked = await manager.post(f"/console/offers/{offer_id}/creatives", content=streamed(),
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert chunked.status_code == 413 and "at most 150 KiB" in chunked.text, chunked.text
    listed = await manager.get(f"/console/offers/{offer_id}/creatives")
    assert ids_on(listed.text) == [] and 'id="no-creatives"' in listed.text


async def test_archiving_and_restoring_move_a_creative_between_the_tabs(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    form = await manager.get(f"/console/offers/{offer_id}/creatives/new?kind=text_link")
    made = await manager.post(f"/console/offers/{offer_id}/creatives", data={
        "csrf": csrf_of(form.text), "kind": "text_link", "name": "Sidebar", "link_text": "Garden sale"})
    assert made.status_code == 303, made.text
    active = await manager.get(f"/console/offers/{offer_id}/creatives")
    [creative_id] = ids_on(active.text)
    assert f'id="archive-{creative_id}"' in active.text

    archived = await manager.post(f"/console/creatives/{creative_id}/status",
                                  data={"csrf": csrf_of(active.text), "status": "archived"})
    assert archived.status_code == 303, archived.text
    assert ids_on((await manager.get(archived.headers["location"])).text) == []
    shelf = await manager.get(f"/console/offers/{offer_id}/creatives?status=archived")
    assert ids_on(shelf.text) == [creative_id] and f'id="restore-{creative_id}"' in shelf.text

    restored = await manager.post(f"/console/creatives/{creative_id}/status",
                                  data={"csrf": csrf_of(shelf.text), "status": "active"})
    assert restored.status_code == 303, restored.text
    assert ids_on((await manager.get(f"/console/offers/{offer_id}/creatives")).text) == [creative_id]


async def test_an_analyst_sees_the_creatives_with_no_form_and_a_forged_post_is_refused(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    png = picture("PNG", "gold")
    assert (await upload(manager, offer_id, "Square", "square.png", png)).status_code == 303
    analyst = await staff_of(console, partners, "analyst")
    page = await analyst.get(f"/console/offers/{offer_id}/creatives")
    assert page.status_code == 200 and "Square" in page.text
    [banner_id] = ids_on(page.text)
    marks = ("new-banner", "edit-", "archive-", 'method="post" action="/console/creatives')
    offered = [mark for mark in marks if mark in page.text]
    assert not offered, f"an analyst is offered {offered}"
    assert (await analyst.get(f"/console/creatives/{banner_id}/image")).content == png
    assert (await analyst.get(f"/console/offers/{offer_id}/creatives/new?kind=banner")).status_code == 403

    csrf = csrf_of(page.text)  # the sign-out form's: the analyst's own session
    forged = await analyst.post(f"/console/offers/{offer_id}/creatives", data={
        "csrf": csrf, "kind": "banner", "name": "Forged"}, files={"image": ("f.png", png, "image/png")})
    assert forged.status_code == 403 and "You may not do this" in forged.text, forged.text
    archive = await analyst.post(f"/console/creatives/{banner_id}/status",
                                 data={"csrf": csrf, "status": "archived"})
    assert archive.status_code == 403 and "You may not do this" in archive.text, archive.text
    assert ids_on((await manager.get(f"/console/offers/{offer_id}/creatives")).text) == [banner_id]
    await analyst.aclose()


async def test_an_offers_creatives_are_shown_a_page_at_a_time(
    console: RunningConsole, partners: RunningPartners, manager: httpx.AsyncClient
) -> None:
    offer_id = await new_offer(partners)
    async with partners.client(headers={"Authorization": f"Bearer {PARTNERS_TOKEN}"}) as admin:
        for n in range(PAGE + 1):
            made = await admin.post(f"/v1/offers/{offer_id}/creatives",
                                    json={"kind": "text_link", "name": f"Link {n}", "link_text": f"Sale {n}"})
            assert made.status_code == 201, made.text
    first = await manager.get(f"/console/offers/{offer_id}/creatives?kind=text_link")
    assert len(ids_on(first.text)) == PAGE
    following = re.search(r'<a href="([^"]+)" rel="next" id="next-page">', first.text)
    assert following, first.text
    second = await manager.get(html.unescape(following.group(1)))
    assert second.status_code == 200 and ids_on(second.text) and "Link 24" in second.text
    assert set(ids_on(second.text)).isdisjoint(ids_on(first.text))
