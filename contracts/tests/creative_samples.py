"""Samples of the partners log's creatives (a banner, a text link, an email), kept beside
``contract_samples`` which lists them with every other event."""

from __future__ import annotations

import base64
import hashlib

from afflux_contracts import BannerImage, CreativeKind, CreativeSet, CreativeStatus, Event, ImageFormat

PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
"""A 1x1 PNG: the smallest real image (the contract checks its signature and digest)."""


def image_of(data: bytes, image_format: ImageFormat = ImageFormat.PNG, width: int = 1,
             height: int = 1) -> BannerImage:
    return BannerImage(format=image_format, width=width, height=height, byte_size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), data=base64.b64encode(data).decode(),
                       filename="pixel.png")


CREATIVES: list[Event] = [
    CreativeSet(creative_id="cr1", offer_id="o1", name="Spring 1x1", kind=CreativeKind.BANNER,
                image=image_of(PIXEL_PNG), alt_text="Spring sale: 20% off"),
    CreativeSet(creative_id="cr2", offer_id="o1", name="Footer link", kind=CreativeKind.TEXT_LINK,
                link_text="Shop the spring sale", status=CreativeStatus.ARCHIVED),
    CreativeSet(creative_id="cr3", offer_id="o1", name="Newsletter", kind=CreativeKind.EMAIL,
                subject_lines=("20% off this week", "Spring is here"), from_lines=("Shop Example",),
                html_body='<p>Spring is here. <a href="{tracking_link}">Shop now</a></p>'),
]
