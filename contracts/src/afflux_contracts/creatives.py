"""Creatives on ``afflux.partners.v1``: the banners, text links and emails a network
hands the partners approved on an offer, each filled in with the partner's own link.

``CreativeSet`` carries a creative's whole state (consumers replace their row), a
banner's image included: the log alone can serve it, and a replay proves what was
served (its bytes, their SHA-256 and their format are checked on every decode). Kept
apart from ``partners.py`` as finance's profile is: one concern per module, same topic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from afflux_contracts.event import Event
from afflux_contracts.topics import PARTNERS

MAX_IMAGE_BYTES = 150 * 1024
"""150 KiB: the IAB's limit on a display ad's initial load (its "New Ad Portfolio" and
LEAN guidelines). A heavier banner slows the partner's page, and networks and ad
servers refuse it anyway; the cap also keeps each event well under a broker's 1 MB
default record size, the image travelling in the event as base64 (a third more)."""
MAX_IMAGE_SIDE = 4096
"""Pixels per side: larger than any IAB unit or a retina double of one, and small
enough that no file under the byte cap can ask a reader to decode a pixel flood."""
TRACKING_LINK = "{tracking_link}"
"""The placeholder an email's HTML body must contain: the partner's link goes there."""


class CreativeKind(StrEnum):
    BANNER = "banner"
    TEXT_LINK = "text_link"
    EMAIL = "email"


class CreativeStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    """Hidden from partners (and its image no longer served); it may be restored."""


class ImageFormat(StrEnum):
    """The raster formats a banner may have. Never SVG: it is a document that can carry
    script, and a partner's page would run it in its own origin."""

    PNG = "png"
    JPEG = "jpeg"
    GIF = "gif"
    WEBP = "webp"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"

    @property
    def extension(self) -> str:
        return "jpg" if self is ImageFormat.JPEG else self.value


def signature_matches(image_format: ImageFormat, data: bytes) -> bool:
    """Whether ``data`` starts as a file of ``image_format`` does (its magic number). The
    producer reads the whole file to know its format; this only makes sure no other
    producer can put HTML or SVG on the log under an image's name."""
    if image_format is ImageFormat.PNG:
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if image_format is ImageFormat.JPEG:
        return data.startswith(b"\xff\xd8\xff")
    if image_format is ImageFormat.GIF:
        return data[:6] in (b"GIF87a", b"GIF89a")
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


class BannerImage(BaseModel):
    """A banner's image: its bytes (``data``, standard base64) and what was read from
    them (format, width and height from the file itself, never from a name or a declared
    content type), its size and SHA-256 (hex; the digest names the image's public URL)."""

    model_config = ConfigDict(frozen=True)

    format: ImageFormat
    width: int = Field(ge=1, le=MAX_IMAGE_SIDE)
    height: int = Field(ge=1, le=MAX_IMAGE_SIDE)
    byte_size: int = Field(ge=1, le=MAX_IMAGE_BYTES)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    data: str = Field(max_length=4 * (MAX_IMAGE_BYTES // 3 + 1))
    filename: str | None = Field(default=None, max_length=255)
    """The name it was uploaded under (informative only: the format is read from the bytes)."""

    @model_validator(mode="after")
    def _bytes_are_what_they_say(self) -> BannerImage:
        content = self.content()
        if len(content) != self.byte_size:
            raise ValueError(f"data holds {len(content)} bytes, byte_size says {self.byte_size}")
        if hashlib.sha256(content).hexdigest() != self.sha256:
            raise ValueError("data does not match its sha256")
        if not signature_matches(self.format, content):
            raise ValueError(f"data is not a {self.format.value} file")
        return self

    def content(self) -> bytes:
        """The image's bytes (``ValueError`` if ``data`` is not strict base64)."""
        try:
            return base64.b64decode(self.data, validate=True)
        except binascii.Error as error:
            raise ValueError(f"data is not base64: {error}") from error


class CreativeSet(Event):
    """A creative's whole state (consumers replace their row), for the partners the
    offer lets run it: a ``banner`` (``image``, ``alt_text``), a ``text_link``
    (``link_text``) or an ``email`` (``subject_lines`` and ``from_lines`` to choose from,
    and ``html_body``, the network's own HTML with ``{tracking_link}`` where each partner's
    link goes). Keyed by ``offer_id``: an offer's creatives stay in order with the offer."""

    topic: ClassVar = PARTNERS

    creative_id: str
    offer_id: str
    name: str
    kind: CreativeKind
    status: CreativeStatus = CreativeStatus.ACTIVE
    image: BannerImage | None = None
    alt_text: str | None = None
    link_text: str | None = None
    subject_lines: tuple[str, ...] = ()
    from_lines: tuple[str, ...] = ()
    html_body: str | None = None

    @model_validator(mode="after")
    def _what_its_kind_needs(self) -> CreativeSet:
        if self.kind is CreativeKind.BANNER and self.image is None:
            raise ValueError("a banner has an image")
        if self.kind is CreativeKind.TEXT_LINK and not self.link_text:
            raise ValueError("a text link has a link_text")
        if self.kind is CreativeKind.EMAIL:
            if not self.subject_lines:
                raise ValueError("an email has at least one subject line")
            if self.html_body is None or TRACKING_LINK not in self.html_body:
                raise ValueError(f"an email's html_body contains {TRACKING_LINK}")
        return self

    def partition_key(self) -> str:
        return self.offer_id
