"""Creatives through the gateway, over a real broker and PostgreSQL: ``CreativeSet`` events
as partners publishes them, read back by partners through ``/v1/me/offers/{id}/creatives``
(each creative's code filled in with the caller's own link, escaped for HTML; only for an
offer the caller may run, refused as its tracking link is) and by anyone through the
banner's public image route (the exact bytes, typed, nosniff, cached for good; 404 once
archived or for any other name)."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Any

import pytest
from gateway_fixtures import (
    TRACKING_URL,
    RunningGateway,
    key_issued,
    new_id,
    new_key,
    offer,
    partner,
    publish,
    relationship,
    wrap,
)
from PIL import Image

from afflux_contracts import BannerImage, CreativeKind, CreativeSet, CreativeStatus, ImageFormat, Visibility
from afflux_gateway.application.creatives import banner_code, email_body, text_link_code
from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher

BODY = '<p>Hi!</p><p><a href="{tracking_link}">Shop the sale</a> or paste {tracking_link}</p>'


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "crimson").save(out, "PNG")
    return out.getvalue()


def banner(creative_id: str, offer_id: str, data: bytes, status: CreativeStatus = CreativeStatus.ACTIVE,
           name: str = "Medium rectangle") -> Any:
    width, height = Image.open(io.BytesIO(data)).size
    image = BannerImage(format=ImageFormat.PNG, width=width, height=height, byte_size=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), data=base64.b64encode(data).decode())
    return wrap(CreativeSet(creative_id=creative_id, offer_id=offer_id, name=name, kind=CreativeKind.BANNER,
                            status=status, image=image, alt_text='Spring "sale" <20% off>'))


@dataclass
class Shelf:
    offer_id: str
    approval_offer_id: str
    approved_key: str
    approved_id: str
    stranger_key: str
    banner_id: str
    text_id: str
    email_id: str
    archived_id: str
    image: bytes


@pytest.fixture(scope="module")
async def shelf(gateway: RunningGateway, log: Publisher) -> Shelf:
    """A private offer with a banner, a text link, an email and an archived text link;
    a partner approved on it, and another approved on nothing (who sees an offer that
    requires approval, not the private one)."""
    offer_id, approval_offer_id = new_id("o"), new_id("o")
    approved_id, stranger_id = new_id("p"), new_id("p")
    approved_key, stranger_key = new_key(), new_key()
    ids = [new_id("cr") for _ in range(4)]
    image = png(300, 250)
    await publish(
        log,
        partner(approved_id, "Approved"), key_issued(approved_id, approved_key),
        partner(stranger_id, "Stranger"), key_issued(stranger_id, stranger_key),
        offer(offer_id, Visibility.PRIVATE, name="Spring sale"), relationship(offer_id, approved_id),
        offer(approval_offer_id, Visibility.REQUIRE_APPROVAL, name="Needs approval"),
        banner(ids[0], offer_id, image),
        wrap(CreativeSet(creative_id=ids[1], offer_id=offer_id, name="Footer", kind=CreativeKind.TEXT_LINK,
                         link_text='Shop "now" <b>')),
        wrap(CreativeSet(creative_id=ids[2], offer_id=offer_id, name="Newsletter", kind=CreativeKind.EMAIL,
                         subject_lines=("20% off", "Spring is here"), from_lines=("Shop Example",),
                         html_body=BODY)),
        wrap(CreativeSet(creative_id=ids[3], offer_id=offer_id, name="Old", kind=CreativeKind.TEXT_LINK,
                         link_text="Old", status=CreativeStatus.ARCHIVED)),
    )

    def shelved() -> bool:
        answer = gateway.get(f"/v1/me/offers/{offer_id}/creatives", approved_key)
        seen = gateway.get(f"/v1/me/offers/{approval_offer_id}/tracking-link", stranger_key).status_code
        return answer.status_code == 200 and len(answer.json()["creatives"]) == 3 and seen == 403

    await eventually(shelved, timeout=60)
    banner_id, text_id, email_id, archived_id = ids
    return Shelf(offer_id, approval_offer_id, approved_key, approved_id, stranger_key, banner_id, text_id,
                 email_id, archived_id, image)


async def test_an_approved_partner_gets_its_own_link_in_every_creatives_code(
    gateway: RunningGateway, shelf: Shelf,
) -> None:
    answer = await gateway.aget(f"/v1/me/offers/{shelf.offer_id}/creatives", shelf.approved_key,
                                sub1="mail", sub2="a&b")
    body = answer.json()
    link = f"{TRACKING_URL}/c/{shelf.offer_id}/{shelf.approved_id}?sub1=mail&sub2=a%26b"
    in_html = link.replace("&", "&amp;")
    site = gateway.settings.site_url
    sha = hashlib.sha256(shelf.image).hexdigest()

    assert answer.status_code == 200, answer.text
    assert body["tracking_link"] == link
    banner_, text, email = body["creatives"]
    assert [c["creative_id"] for c in body["creatives"]] == [shelf.banner_id, shelf.text_id, shelf.email_id]
    assert {c["tracking_link"] for c in body["creatives"]} == {link}
    assert banner_["image_url"] == f"{site}/creatives/{shelf.banner_id}/{sha}.png"
    assert (banner_["width"], banner_["height"]) == (300, 250)
    assert banner_["html"] == (
        f'<a href="{in_html}"><img src="{banner_["image_url"]}" width="300" height="250" '
        'alt="Spring &quot;sale&quot; &lt;20% off&gt;"></a>')
    assert text["html"] == f'<a href="{in_html}">Shop &quot;now&quot; &lt;b&gt;</a>'
    assert (email["subject_lines"], email["from_lines"]) == (["20% off", "Spring is here"], ["Shop Example"])
    assert email["html_body"] == BODY.replace("{tracking_link}", in_html)


async def test_the_offers_refusals_are_the_tracking_links(gateway: RunningGateway, shelf: Shelf) -> None:
    """Not approved on an offer that requires it: 403; a private offer it was never added to
    does not exist for it: 404 (exactly what its tracking link answers)."""
    for offer_id, status in ((shelf.approval_offer_id, 403), (shelf.offer_id, 404)):
        creatives = await gateway.aget(f"/v1/me/offers/{offer_id}/creatives", shelf.stranger_key)
        link = await gateway.aget(f"/v1/me/offers/{offer_id}/tracking-link", shelf.stranger_key)
        assert (creatives.status_code, link.status_code) == (status, status), creatives.text
    assert (await gateway.aget(f"/v1/me/offers/{shelf.offer_id}/creatives")).status_code == 401


async def test_the_public_image_is_the_exact_bytes_typed_nosniff_and_cached_for_good(
    gateway: RunningGateway, shelf: Shelf,
) -> None:
    sha = hashlib.sha256(shelf.image).hexdigest()
    served = await gateway.aget(f"/creatives/{shelf.banner_id}/{sha}.png")

    assert served.status_code == 200
    assert served.content == shelf.image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    for path in (f"{shelf.banner_id}/{'0' * 64}.png", f"{shelf.banner_id}/{sha}.jpg",
                 f"{shelf.text_id}/{sha}.png", f"{new_id('cr')}/{sha}.png"):
        assert (await gateway.aget(f"/creatives/{path}")).status_code == 404, path


async def test_an_archived_creative_vanishes_with_its_image(
    gateway: RunningGateway, log: Publisher, shelf: Shelf,
) -> None:
    offer_id, creative_id, image = shelf.offer_id, new_id("cr"), png(320, 50)
    address = f"/creatives/{creative_id}/{hashlib.sha256(image).hexdigest()}.png"
    await publish(log, banner(creative_id, offer_id, image, name="Mobile banner"))
    await eventually(lambda: gateway.get(address).status_code == 200, timeout=30)

    await publish(log, banner(creative_id, offer_id, image, CreativeStatus.ARCHIVED, name="Mobile banner"))

    def gone() -> bool:
        listed = gateway.get(f"/v1/me/offers/{offer_id}/creatives", shelf.approved_key).json()["creatives"]
        return creative_id not in [c["creative_id"] for c in listed]

    await eventually(gone, timeout=30)
    assert (await gateway.aget(address)).status_code == 404


def test_the_code_escapes_what_goes_into_html() -> None:
    link = 'https://trk.example/c/o/p?sub1=x"><script>&sub2=y'
    assert banner_code(link, "https://gw.example/i.png", 1, 2, "a\"b") == (
        '<a href="https://trk.example/c/o/p?sub1=x&quot;&gt;&lt;script&gt;&amp;sub2=y">'
        '<img src="https://gw.example/i.png" width="1" height="2" alt="a&quot;b"></a>')
    assert text_link_code(link, "<i>Go</i>").endswith('">&lt;i&gt;Go&lt;/i&gt;</a>')
    assert email_body('<a href="{tracking_link}">{tracking_link}</a>', link) == (
        '<a href="https://trk.example/c/o/p?sub1=x&quot;&gt;&lt;script&gt;&amp;sub2=y">'
        'https://trk.example/c/o/p?sub1=x&quot;&gt;&lt;script&gt;&amp;sub2=y</a>')
