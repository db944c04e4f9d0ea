"""The creatives contract: a banner's bytes are what its digest, size and format say, on
every decode (so the log alone proves what a partner was served); each kind carries what
it needs; an offer's creatives share its partition."""

from __future__ import annotations

import base64
import hashlib

import pytest
from creative_samples import PIXEL_PNG, image_of
from pydantic import ValidationError
from test_partners_contract_additions import wire

from afflux_contracts import (
    CreativeKind,
    CreativeSet,
    Envelope,
    ImageFormat,
    OfferCreated,
    PayoutType,
    Terms,
    decode,
    encode,
)
from afflux_contracts.creatives import MAX_IMAGE_BYTES

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def banner(**image: object) -> dict[str, object]:
    fields = image_of(PIXEL_PNG).model_dump(mode="json")
    return {"creative_id": "cr1", "offer_id": "o1", "name": "1x1", "kind": "banner",
            "image": {**fields, **image}}


def test_a_banner_decodes_to_the_exact_bytes_it_was_published_with() -> None:
    event = CreativeSet(**banner())
    decoded = decode(encode(Envelope.wrap(event, producer="partners"))).payload
    assert isinstance(decoded, CreativeSet) and decoded.image is not None
    assert decoded.image.content() == PIXEL_PNG
    assert decoded.partition_key() == "o1"


def test_bytes_that_differ_from_their_digest_or_size_are_refused() -> None:
    with pytest.raises(ValidationError, match="sha256"):
        CreativeSet(**banner(sha256="0" * 64))
    with pytest.raises(ValidationError, match="byte_size"):
        CreativeSet(**banner(byte_size=len(PIXEL_PNG) + 1))
    with pytest.raises(ValidationError, match="base64"):
        CreativeSet(**banner(data="not base64!"))


def test_an_svg_under_an_image_format_is_refused_and_svg_is_no_format() -> None:
    svg = {"data": base64.b64encode(SVG).decode(), "byte_size": len(SVG),
           "sha256": hashlib.sha256(SVG).hexdigest()}
    with pytest.raises(ValidationError, match="not a png file"):
        CreativeSet(**banner(**svg))
    with pytest.raises(ValidationError, match="format"):
        CreativeSet(**banner(**svg, format="svg"))


def test_an_image_over_the_cap_is_refused() -> None:
    with pytest.raises(ValidationError, match="byte_size"):
        CreativeSet(**banner(byte_size=MAX_IMAGE_BYTES + 1))


def test_each_kind_carries_what_it_needs() -> None:
    with pytest.raises(ValidationError, match="a banner has an image"):
        CreativeSet(creative_id="c", offer_id="o", name="n", kind=CreativeKind.BANNER)
    with pytest.raises(ValidationError, match="link_text"):
        CreativeSet(creative_id="c", offer_id="o", name="n", kind=CreativeKind.TEXT_LINK)
    with pytest.raises(ValidationError, match="tracking_link"):
        CreativeSet(creative_id="c", offer_id="o", name="n", kind=CreativeKind.EMAIL, subject_lines=("Hi",),
                    html_body='<a href="https://shop.example/">Shop</a>')
    with pytest.raises(ValidationError, match="subject line"):
        CreativeSet(creative_id="c", offer_id="o", name="n", kind=CreativeKind.EMAIL,
                    html_body='<a href="{tracking_link}">Shop</a>')


def test_a_creative_from_the_wire_decodes_with_its_defaults_and_shares_its_offers_partition() -> None:
    payload = {"creative_id": "cr2", "offer_id": "o1", "name": "Footer", "kind": "text_link",
               "link_text": "Shop now"}
    creative = decode(wire("CreativeSet", payload)).payload
    offer = OfferCreated(offer_id="o1", name="O", destination_url="https://shop.example/", currency="USD",
                         payout=Terms(type=PayoutType.CPA))
    assert isinstance(creative, CreativeSet)
    assert (creative.status, creative.image, creative.subject_lines) == ("active", None, ())
    assert creative.partition_key() == offer.partition_key()


def test_formats_name_their_content_type_and_extension() -> None:
    assert [(f.content_type, f.extension) for f in ImageFormat] == [
        ("image/png", "png"), ("image/jpeg", "jpg"), ("image/gif", "gif"), ("image/webp", "webp")]
