"""A creative's form and the partners API's body, both ways.

The console judges nothing of a creative: partners reads the image's bytes, checks the
texts and the email's ``{tracking_link}``, and names the field it refuses. This module
only carries the form's fields there (a file as base64, one line per subject or from
line) and brings a refusal back to the field the person filled in: partners names a
banner's image ``image_base64`` and the second subject line ``subject_lines.1``, the form
has one file field, ``image``, and one box of subject lines.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from afflux_console.entrypoints.upload_form import UploadForm

KINDS = {"banner": "Banner", "text_link": "Text link", "email": "Email"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""What a banner may be (the contract's formats): the file input's ``accept`` and the only
types the console's image route answers."""
TEXTS = ("name", "alt_text", "link_text", "subject_lines", "from_lines", "html_body")
LABELS = {"name": "Name", "image": "Image", "alt_text": "Alt text", "link_text": "Link text",
          "subject_lines": "Subject lines", "from_lines": "From lines", "html_body": "HTML body"}


def creative_body(kind: str, form: UploadForm, creating: bool) -> dict[str, Any]:
    """What partners is asked to create (with ``kind``) or to change: the kind's fields as
    typed (a blank optional text clears it), and the image only when a file was chosen."""
    body: dict[str, Any] = {"kind": kind} if creating else {}
    body["name"] = form.get("name")
    if kind == "banner":
        upload = form.file("image")
        if upload is not None:
            body["image_base64"] = base64.b64encode(upload.data).decode()
            body["filename"] = upload.filename or None
        body["alt_text"] = form.get("alt_text") or None
    elif kind == "text_link":
        body["link_text"] = form.get("link_text")
    else:
        body["subject_lines"] = lines(form.get("subject_lines"))
        body["from_lines"] = lines(form.get("from_lines"))
        body["html_body"] = form.get("html_body")
    return body


def lines(text: str) -> list[str]:
    """One line each, blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def posted_values(form: UploadForm) -> dict[str, str]:
    """The typed texts, to fill the form in again (a file is never sent back)."""
    return {name: form.get(name) for name in TEXTS}


def values_of(creative: Mapping[str, Any]) -> dict[str, str]:
    """A creative's texts as its edit form shows them."""
    return {
        "name": creative.get("name") or "",
        "alt_text": creative.get("alt_text") or "",
        "link_text": creative.get("link_text") or "",
        "subject_lines": "\n".join(creative.get("subject_lines") or []),
        "from_lines": "\n".join(creative.get("from_lines") or []),
        "html_body": creative.get("html_body") or "",
    }


def form_field(refused_field: str | None) -> str | None:
    """The form's field for the one partners named (``image_base64`` → ``image``,
    ``subject_lines.1`` → ``subject_lines``); None when the form has no such field."""
    if refused_field is None:
        return None
    name = refused_field.split(".", 1)[0]
    name = "image" if name in ("image_base64", "filename") else name
    return name if name in LABELS else None
