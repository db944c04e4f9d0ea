"""Creatives for a partner: an offer's active banners, text links and emails, each with
the partner's own tracking link filled in and the code to paste.

``CreativeShelf`` is the projection (``@handles``, mixed into the gateway's projections
like ``People``): each ``CreativeSet`` carries the creative's whole state, so a run keeps
the last per creative. ``creatives_for`` is what the API and the portal answer, for an
offer the partner may run (the tracking link's own rule).

The code is HTML a partner pastes into its own pages, so every value that goes into it
is escaped for where it goes: the link, the image's address and the alt text as
attribute values, a link's text as text. An email's body is the network's own HTML
(staff wrote it); only the link put in place of ``{tracking_link}`` is escaped, as the
attribute value or text it lands in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Protocol

from afflux_contracts import CreativeSet, ImageFormat
from afflux_contracts.creatives import TRACKING_LINK
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, Write

Row = Mapping[str, Any]


class CreativeWrites(Protocol):
    def save_creatives(self, creatives: Sequence[CreativeSet]) -> Write | None: ...


class CreativeReads(Protocol):
    def active_creatives(self, offer_id: str) -> list[dict[str, Any]]:
        """The offer's active creatives in the order staff made them, without image bytes."""
        ...

    def active_banner(self, creative_id: str) -> dict[str, Any] | None:
        """``image_format``, ``sha256`` and ``image`` (bytes) of an active banner."""
        ...


class CreativeShelf:
    """The creatives projection (mixed into the gateway's projections)."""

    shelf: CreativeWrites

    @handles(CreativeSet)
    def on_creative(self, run: Run) -> Changes:
        last = {record.payload.creative_id: record.payload for record in run}
        write = self.shelf.save_creatives(list(last.values()))
        return Changes(writes=[write] if write is not None else [])


def image_path(creative_id: str, sha256: str, image_format: str) -> str:
    """Where a banner's image is served: its digest is in the path, so the address changes
    with the image and an answer may be cached for good."""
    return f"/creatives/{creative_id}/{sha256}.{ImageFormat(image_format).extension}"


def banner_code(link: str, image_url: str, width: int, height: int, alt: str) -> str:
    return (f'<a href="{escape(link)}"><img src="{escape(image_url)}" width="{width}" height="{height}" '
            f'alt="{escape(alt)}"></a>')


def text_link_code(link: str, text: str) -> str:
    return f'<a href="{escape(link)}">{escape(text)}</a>'


def email_body(html_body: str, link: str) -> str:
    """The network's email with the partner's link (HTML-escaped) where it says."""
    return html_body.replace(TRACKING_LINK, escape(link))


def for_partner(row: Row, link: str, site_url: str) -> dict[str, Any]:
    """One creative as a partner gets it: its link, and the code or body filled in with it."""
    shown: dict[str, Any] = {"creative_id": row["creative_id"], "name": row["name"], "kind": row["kind"],
                             "tracking_link": link}
    if row["kind"] == "banner":
        path = image_path(row["creative_id"], row["sha256"], row["image_format"])
        alt = row["alt_text"] or row["name"]
        shown.update(image_path=path, image_url=f"{site_url}{path}", format=row["image_format"],
                     width=row["width"], height=row["height"], alt_text=alt,
                     html=banner_code(link, f"{site_url}{path}", row["width"], row["height"], alt))
    elif row["kind"] == "text_link":
        shown.update(link_text=row["link_text"], html=text_link_code(link, row["link_text"]))
    else:
        shown.update(subject_lines=list(row["subject_lines"]), from_lines=list(row["from_lines"]),
                     html_body=email_body(row["html_body"], link))
    return shown


def creatives_for(reads: CreativeReads, offer_id: str, link: str, site_url: str) -> list[dict[str, Any]]:
    """The offer's active creatives filled in with ``link`` (the partner's, with its subs);
    the caller has checked that the partner may run the offer."""
    return [for_partner(row, link, site_url) for row in reads.active_creatives(offer_id)]
