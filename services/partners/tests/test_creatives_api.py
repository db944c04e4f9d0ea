"""An offer's creatives through the staff API on a running partners service: created,
listed a page at a time, read, edited, archived and restored, each write published as
``CreativeSet`` (the banner's exact bytes in it, keyed by the offer); a bad image, a
missing placeholder or a field of another kind is a 422 naming the field."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import httpx
import pytest
from partners_fixtures import RunningPartners, assert_error, offer_body, published_until
from PIL import Image

from afflux_contracts import CreativeSet, Envelope, Event, ImageFormat

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="250"><script>alert(1)</script></svg>'


def image_file(kind: str = "PNG", width: int = 300, height: int = 250) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, kind)
    return out.getvalue()


def noise_png(at_least: int) -> bytes:
    """A PNG that cannot compress (random pixels) of at least ``at_least`` bytes."""
    side = int((at_least / 3) ** 0.5) + 8
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), hashlib.shake_256(b"noise").digest(side * side * 3)).save(out, "PNG")
    assert len(out.getvalue()) >= at_least
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def new_offer(admin: httpx.AsyncClient) -> str:
    created = await admin.post("/v1/offers", json=offer_body())
    assert created.status_code == 201, created.text
    return str(created.json()["offer_id"])


def about(creative_id: str) -> Any:
    def mine(envelope: Envelope[Event]) -> bool:
        return isinstance(envelope.payload, CreativeSet) and envelope.payload.creative_id == creative_id
    return mine


async def test_a_banner_is_created_read_with_its_bytes_and_published_whole_under_its_offer(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer_id = await new_offer(admin)
    png = image_file("PNG", 300, 250)

    created = await admin.post(f"/v1/offers/{offer_id}/creatives", json={
        "kind": "banner", "name": "Medium rectangle", "image_base64": b64(png), "filename": "rect.jpg",
        "alt_text": "Spring sale: 20% off"})

    assert created.status_code == 201, created.text
    body = created.json()
    creative_id = body["creative_id"]
    assert body["image"] == {"format": "png", "content_type": "image/png", "width": 300, "height": 250,
                             "byte_size": len(png), "sha256": hashlib.sha256(png).hexdigest(),
                             "filename": "rect.jpg"}
    assert (body["offer_id"], body["status"], body["image_base64"]) == (offer_id, "active", None)
    read = (await admin.get(f"/v1/creatives/{creative_id}")).json()
    assert base64.b64decode(read["image_base64"]) == png
    bootstrap = partners_service.settings.kafka_bootstrap_servers
    [record] = await published_until(bootstrap, about(creative_id), bool)
    published = record.envelope.payload
    assert isinstance(published, CreativeSet) and published.image is not None
    assert record.key == offer_id
    assert (published.image.format, published.image.content(), published.alt_text) == (
        ImageFormat.PNG, png, "Spring sale: 20% off")


async def test_text_links_and_emails_are_listed_in_order_a_page_at_a_time_and_archived_ones_filtered(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer_id = await new_offer(admin)
    bodies = [
        {"kind": "text_link", "name": "Footer", "link_text": "Shop the spring sale"},
        {"kind": "email", "name": "Newsletter", "subject_lines": ["20% off", "Spring is here"],
         "from_lines": ["Shop Example"], "html_body": '<p><a href="{tracking_link}">Shop now</a></p>'},
        {"kind": "banner", "name": "Leaderboard", "image_base64": b64(image_file("GIF", 728, 90))},
    ]
    ids = []
    for body in bodies:
        created = await admin.post(f"/v1/offers/{offer_id}/creatives", json=body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["creative_id"])

    archived = await admin.patch(f"/v1/creatives/{ids[0]}", json={"status": "archived"})
    first = (await admin.get(f"/v1/offers/{offer_id}/creatives", params={"limit": 2})).json()
    rest = (await admin.get(f"/v1/offers/{offer_id}/creatives", params={"after": first["next"]})).json()
    active = (await admin.get(f"/v1/offers/{offer_id}/creatives", params={"status": "active"})).json()
    emails = (await admin.get(f"/v1/offers/{offer_id}/creatives", params={"kind": "email"})).json()

    assert (archived.status_code, archived.json()["status"]) == (200, "archived")
    assert [c["creative_id"] for c in first["creatives"] + rest["creatives"]] == ids
    assert rest["next"] is None
    assert [c["creative_id"] for c in active["creatives"]] == ids[1:]
    assert [c["subject_lines"] for c in emails["creatives"]] == [["20% off", "Spring is here"]]
    assert first["creatives"][1]["image"] is None and rest["creatives"][0]["image_base64"] is None
    restored = await admin.patch(f"/v1/creatives/{ids[0]}",
                                 json={"status": "active", "link_text": "Shop now"})
    assert (restored.json()["status"], restored.json()["link_text"]) == ("active", "Shop now")
    records = await published_until(partners_service.settings.kafka_bootstrap_servers, about(ids[0]),
                                    lambda found: len(found) == 3)
    assert [(r.envelope.payload.status, r.envelope.payload.link_text) for r in records] == [
        ("active", "Shop the spring sale"), ("archived", "Shop the spring sale"), ("active", "Shop now")]


async def test_a_banners_image_is_replaced_by_a_patch(admin: httpx.AsyncClient) -> None:
    offer_id = await new_offer(admin)
    created = await admin.post(f"/v1/offers/{offer_id}/creatives", json={
        "kind": "banner", "name": "Skyscraper", "image_base64": b64(image_file("PNG", 160, 600))})
    webp = image_file("WEBP", 120, 600)

    patched = await admin.patch(f"/v1/creatives/{created.json()['creative_id']}",
                                json={"image_base64": b64(webp), "filename": "sky.webp"})

    assert patched.status_code == 200, patched.text
    image = patched.json()["image"]
    assert (image["format"], image["width"]) == ("webp", 120)
    assert image["sha256"] == hashlib.sha256(webp).hexdigest()


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"kind": "banner", "name": "B", "image_base64": b64(SVG), "filename": "b.png"}, "unsupported_format",
     "image_base64"),
    ({"kind": "banner", "name": "B", "image_base64": b64(noise_png(151 * 1024))}, "image_too_large",
     "image_base64"),
    ({"kind": "banner", "name": "B", "image_base64": "%%%"}, "invalid_base64", "image_base64"),
    ({"kind": "banner", "name": "B"}, "missing_field", "image_base64"),
    ({"kind": "email", "name": "E", "subject_lines": ["Hi"], "html_body": "<p>no link</p>"},
     "missing_placeholder", "html_body"),
    ({"kind": "text_link", "name": "T", "link_text": "Go", "html_body": "{tracking_link}"}, "not_for_kind",
     "html_body"),
    ({"kind": "text_link", "name": "T", "link_text": "Go", "colour": "red"}, "invalid_request", "colour"),
    ({"kind": "video", "name": "V"}, "invalid_request", "kind"),
])
async def test_a_bad_creative_is_a_422_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], code: str, field: str,
) -> None:
    offer_id = await new_offer(admin)
    assert_error(await admin.post(f"/v1/offers/{offer_id}/creatives", json=body), 422, code, field)


async def test_an_unknown_offer_or_creative_is_a_404_and_a_deleted_offer_takes_none(
    admin: httpx.AsyncClient,
) -> None:
    text_link = {"kind": "text_link", "name": "T", "link_text": "Go"}
    offer_id = await new_offer(admin)
    await admin.post(f"/v1/offers/{offer_id}/status", json={"status": "deleted"})

    assert_error(await admin.post(f"/v1/offers/{'f' * 32}/creatives", json=text_link), 404, "offer_not_found")
    assert_error(await admin.get(f"/v1/offers/{'f' * 32}/creatives"), 404, "offer_not_found")
    assert_error(await admin.get(f"/v1/creatives/{offer_id}"), 404, "creative_not_found")
    unknown = await admin.patch(f"/v1/creatives/{'f' * 32}", json={"name": "x"})
    assert_error(unknown, 404, "creative_not_found")
    assert_error(await admin.post(f"/v1/offers/{offer_id}/creatives", json=text_link), 409, "offer_deleted",
                 "offer_id")


async def test_reading_needs_a_credential(partners_service: RunningPartners) -> None:
    async with partners_service.client(headers={}) as anonymous:
        answer = await anonymous.get(f"/v1/offers/{'f' * 32}/creatives")
    assert answer.status_code == 401
