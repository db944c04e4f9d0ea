"""A creative: a banner, a text link or an email that an offer's partners promote, each
filled in with the partner's own tracking link where the gateway hands it out.

A banner's image is judged by its bytes, read with Pillow (the maintained reader of
these formats), never by its file name or a declared content type: a PNG uploaded as
``.jpg`` is a PNG, an SVG (a document that can carry script) or anything Pillow cannot
read as PNG, JPEG, GIF or WebP is refused, and so is a file over the IAB's 150 KiB or a
side over 4,096 px. An email's HTML body is the network's own (staff write it) and must
say where the partner's link goes: ``{tracking_link}``.

Every event carries the creative's whole state (as a smart link's do), so a reader of
any one of them knows the creative as it now stands; a rule violation names the field of
the request to fix (``image_base64``, ``html_body``, ``subject_lines.1``). The limits and
the formats are the contract's (``afflux_contracts.creatives``), read from there rather
than written twice: an event past them would not decode anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import posixpath
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate, event
from PIL import Image, UnidentifiedImageError

from afflux_contracts.creatives import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, TRACKING_LINK, ImageFormat
from afflux_partners.domain.rules import RuleViolation, check_name

CREATIVE_CREATED = "afflux_partners:Creative.Created"
CREATIVE_UPDATED = "afflux_partners:Creative.Updated"
"""Stored event topics, fixed forever."""

KINDS = ("banner", "text_link", "email")
STATUSES = ("active", "archived")
FIELDS_OF_KIND = {"banner": ("image", "alt_text"), "text_link": ("link_text",),
                  "email": ("subject_lines", "from_lines", "html_body")}
EDITABLE = ("name", "status", "image", "alt_text", "link_text", "subject_lines", "from_lines", "html_body")
MAX_TEXT = 200
"""A link text, an alt text, a subject or from line: a line of text, not a paragraph."""
MAX_LINES = 20
MAX_HTML = 100_000
"""An email's HTML body, in characters: a long newsletter is well under this."""
_PILLOW_FORMATS = {"PNG": ImageFormat.PNG, "JPEG": ImageFormat.JPEG, "MPO": ImageFormat.JPEG,
                   "GIF": ImageFormat.GIF, "WEBP": ImageFormat.WEBP}
"""What Pillow calls each format it may find (a camera's multi-picture JPEG is ``MPO``:
browsers show it as the JPEG it starts with)."""
_READERS = ["PNG", "JPEG", "GIF", "WEBP"]
"""The only readers Pillow may try: no other format's parser ever sees an upload."""


@dataclass(frozen=True)
class BannerImage:
    """A banner's image as read from its bytes; ``filename`` only says what it was called."""

    format: ImageFormat
    width: int
    height: int
    data: bytes
    filename: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def byte_size(self) -> int:
        return len(self.data)


def decode_base64(text: str, field: str = "image_base64") -> bytes:
    """Standard base64 (whitespace such as line breaks is ignored), nothing else."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise RuleViolation(field, f"is not base64 ({error})", "invalid_base64") from error


def read_image(data: bytes, filename: str | None = None, field: str = "image_base64") -> BannerImage:
    """The image these bytes are (format, width, height), or a ``RuleViolation`` naming
    ``field``: too large, not an image Pillow reads as PNG, JPEG, GIF or WebP, damaged,
    or with a side over ``MAX_IMAGE_SIDE``. Pillow reads the header to open a file and
    ``verify`` walks its structure, without decoding pixels."""
    if not data:
        raise RuleViolation(field, "is empty", "invalid_image")
    if len(data) > MAX_IMAGE_BYTES:
        raise RuleViolation(field, f"is {len(data)} bytes: at most {MAX_IMAGE_BYTES} (150 KiB, the IAB's "
                            "limit for a display ad's initial load)", "image_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_READERS) as image:
                found, width, height = image.format, image.width, image.height
                image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise RuleViolation(field, "is not a PNG, JPEG, GIF or WebP image (SVG is refused: it can carry "
                            "script)", "unsupported_format") from error
    except Exception as error:  # Pillow's verify raises many kinds for a damaged file
        raise RuleViolation(field, f"is a damaged image ({type(error).__name__})", "invalid_image") from error
    image_format = _PILLOW_FORMATS.get(found or "")
    if image_format is None:
        raise RuleViolation(field, f"is a {found} image: only PNG, JPEG, GIF or WebP", "unsupported_format")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise RuleViolation(field, f"is {width}x{height} px: at most {MAX_IMAGE_SIDE} px a side",
                            "image_too_large")
    return BannerImage(image_format, width, height, data, check_filename(filename))


def check_filename(value: str | None, field: str = "filename") -> str | None:
    """The upload's own name, kept for staff to recognise (its last path part; blank: none)."""
    if value is None or not value.strip():
        return None
    name = posixpath.basename(value.replace("\\", "/")).strip()
    if not name or len(name) > 255 or _has_control(name):
        raise RuleViolation(field, "must be a file name of 1 to 255 characters", "invalid_filename")
    return name


def check_line(value: Any, field: str, limit: int = MAX_TEXT) -> str:
    """One line of text people will read: not blank, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation(field, "must not be blank", "invalid_text")
    text = value.strip()
    if len(text) > limit or _has_control(text):
        raise RuleViolation(field, f"must be one line of at most {limit} characters", "invalid_text")
    return text


def check_lines(values: Sequence[Any], field: str, *, required: bool) -> tuple[str, ...]:
    """Up to ``MAX_LINES`` lines, each once; ``required``: one at least."""
    lines = tuple(check_line(value, f"{field}.{i}") for i, value in enumerate(values))
    if required and not lines:
        raise RuleViolation(field, "must list at least one line", "too_few")
    if len(lines) > MAX_LINES:
        raise RuleViolation(field, f"at most {MAX_LINES} lines", "too_many")
    if len(set(lines)) != len(lines):
        raise RuleViolation(field, "lists a line twice", "duplicate_line")
    return lines


def check_html_body(value: Any, field: str = "html_body") -> str:
    """The network's HTML, with ``{tracking_link}`` where each partner's link goes (the
    gateway fills it in, HTML-escaped, per partner)."""
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation(field, "must not be blank", "invalid_text")
    if len(value) > MAX_HTML or "\x00" in value:
        raise RuleViolation(field, f"must be at most {MAX_HTML} characters of text", "invalid_text")
    if TRACKING_LINK not in value:
        raise RuleViolation(field, f"must contain {TRACKING_LINK} where the partner's link goes",
                            "missing_placeholder")
    return value


def checked_creative(kind: str, fields: Mapping[str, Any], *, whole: bool) -> dict[str, Any]:
    """The fields given, each validated for ``kind``; ``whole`` (a new creative): what the
    kind needs is there. A field of another kind is refused, not ignored."""
    for name in fields:
        if name not in EDITABLE:
            raise RuleViolation(name, "cannot be edited", "not_editable")
        if name not in ("name", "status", *FIELDS_OF_KIND[kind]):
            raise RuleViolation(_field_name(name), f"is not a field of a {kind}", "not_for_kind")
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None and name in ("name", "status", "image", "link_text", "subject_lines", "html_body"):
            raise RuleViolation(_field_name(name), "must not be null", "invalid_value")
        checked[name] = _check(name, value)
    if whole:
        needed = {"banner": "image", "text_link": "link_text", "email": "html_body"}[kind]
        if needed not in checked:
            raise RuleViolation(_field_name(needed), f"a {kind} needs it", "missing_field")
        if kind == "email" and not checked.get("subject_lines"):
            raise RuleViolation("subject_lines", "must list at least one line", "too_few")
    return checked


def _check(name: str, value: Any) -> Any:
    if name == "name":
        return check_name(value)
    if name == "status":
        if value not in STATUSES:
            raise RuleViolation("status", "must be active or archived", "invalid_status")
        return value
    if name == "image":
        if not isinstance(value, BannerImage):
            raise RuleViolation("image_base64", "must be an image", "invalid_image")
        return value
    if name in ("alt_text", "link_text"):
        return None if value is None else check_line(value, name)
    if name in ("subject_lines", "from_lines"):
        return check_lines(value or (), name, required=name == "subject_lines")
    return check_html_body(value)


def _field_name(name: str) -> str:
    """The request's name of a field (a banner's image is sent as ``image_base64``)."""
    return "image_base64" if name == "image" else name


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


class Creative(Aggregate):
    """Its id (as 32 hex characters) is the public ``creative_id``; its offer and kind
    never change."""

    TOPIC = "afflux_partners:Creative"

    @classmethod
    def create(cls, offer_id: str, kind: str, fields: Mapping[str, Any]) -> Creative:
        if kind not in KINDS:
            raise RuleViolation("kind", "must be banner, text_link or email", "invalid_kind")
        checked = checked_creative(kind, {"status": "active", **fields}, whole=True)
        return cls(offer_id=offer_id, kind=kind, **_state({}, checked))

    @event("Created", topic=CREATIVE_CREATED)
    def __init__(self, offer_id: str, kind: str, name: str, status: str, image: BannerImage | None,
                 alt_text: str | None, link_text: str | None, subject_lines: tuple[str, ...],
                 from_lines: tuple[str, ...], html_body: str | None) -> None:
        self.offer_id = offer_id
        self.kind = kind
        self._set(name, status, image, alt_text, link_text, subject_lines, from_lines, html_body)

    @property
    def creative_id(self) -> str:
        return self.id.hex

    @property
    def active(self) -> bool:
        return self.status == "active"

    def edit(self, changes: Mapping[str, Any]) -> tuple[str, ...]:
        """Apply an edit (fields not named keep their value); the names of the fields that
        changed, none (and no event) if nothing does."""
        checked = checked_creative(self.kind, changes, whole=False)
        changed = tuple(name for name in EDITABLE if name in checked and checked[name] != getattr(self, name))
        if changed:
            self._updated(offer_id=self.offer_id, kind=self.kind, **_state(self.state(), checked),
                          changed=changed)
        return changed

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EDITABLE}

    @event("Updated", topic=CREATIVE_UPDATED)
    def _updated(self, offer_id: str, kind: str, name: str, status: str, image: BannerImage | None,
                 alt_text: str | None, link_text: str | None, subject_lines: tuple[str, ...],
                 from_lines: tuple[str, ...], html_body: str | None, changed: tuple[str, ...]) -> None:
        """``offer_id`` and ``kind`` never change: each event carries them so that the relay
        publishes the whole state from the event alone."""
        self._set(name, status, image, alt_text, link_text, subject_lines, from_lines, html_body)

    def _set(self, name: str, status: str, image: BannerImage | None, alt_text: str | None,
             link_text: str | None, subject_lines: Sequence[str], from_lines: Sequence[str],
             html_body: str | None) -> None:
        self.name = name
        self.status = status
        self.image = image
        self.alt_text = alt_text
        self.link_text = link_text
        self.subject_lines = tuple(subject_lines)
        self.from_lines = tuple(from_lines)
        self.html_body = html_body


def _state(held: Mapping[str, Any], checked: Mapping[str, Any]) -> dict[str, Any]:
    """The whole state after ``checked`` over ``held`` (a new creative: over nothing)."""
    empty: dict[str, Any] = {"image": None, "alt_text": None, "link_text": None, "subject_lines": (),
                             "from_lines": (), "html_body": None}
    return {**empty, **held, **checked}
