"""The creatives of an offer: the use cases of the staff API over the event store.

A command reads the upload (a banner's image arrives as base64 and is judged by its
bytes: ``domain/creative.py``), asks the ``Creative`` aggregate to change, and saves its
events with its row of the creative index (one transaction); the outbox relay publishes
each as ``CreativeSet`` with the whole state, the image included. Reads of one creative
come from its aggregate; an offer's list pages over the index (``CreativeViews``, kept on
PostgreSQL by ``adapters/creatives.py``) and loads the aggregates of the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from afflux_partners.application.partners import Page, Partners
from afflux_partners.domain.creative import Creative, decode_base64, read_image
from afflux_partners.domain.rules import Conflict, RuleViolation
from afflux_partners.domain.values import OfferStatus
from afflux_plumbing.http import NotFound
from afflux_plumbing.store import Write


class CreativeViews(Protocol):
    """The creative index: the row a creative's new state puts there (written with its
    events), and an offer's page of it."""

    def creative_rows(self, creative: Creative) -> Sequence[Write]: ...

    def page(self, offer_id: str, status: str | None, kind: str | None, after: int | None,
             limit: int) -> list[dict[str, Any]]:
        """``id`` and ``seq`` of up to ``limit + 1`` of the offer's creatives after ``after``,
        in creation order."""
        ...


def with_image_read(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields with ``image_base64`` (and ``filename``) read into the image
    they are; a ``filename`` alone names nothing to read."""
    given = dict(fields)
    if "image_base64" in given:
        encoded, filename = given.pop("image_base64"), given.pop("filename", None)
        if encoded is None:
            raise RuleViolation("image_base64", "must not be null", "invalid_value")
        given["image"] = read_image(decode_base64(encoded), filename)
    elif "filename" in given:
        raise RuleViolation("filename", "names an uploaded image: send image_base64 with it", "missing_field")
    return given


class Creatives:
    def __init__(self, store: Partners, views: CreativeViews) -> None:
        self.store = store
        self.views = views

    def create(self, offer_id: str, kind: str, fields: Mapping[str, Any]) -> Creative:
        """A new creative of the offer (404 for an unknown one, 409 for a deleted one)."""
        offer = self.store.get_offer(offer_id)
        if offer.status is OfferStatus.DELETED:
            raise Conflict("offer_deleted", f"offer {offer_id!r} is deleted: it takes no creatives",
                           "offer_id")
        creative = Creative.create(offer.offer_id, kind, with_image_read(fields))
        self.store.save(creative, writes=self.views.creative_rows(creative))
        return creative

    def get(self, creative_id: str) -> Creative:
        return self.store._get(Creative, creative_id,
                               NotFound("creative_not_found", f"no creative {creative_id!r}"))

    def edit(self, creative_id: str, changes: Mapping[str, Any]) -> Creative:
        """Change the fields given (PATCH): texts, the image, ``status`` to archive or restore."""
        given = with_image_read(changes)

        def edit() -> Creative:
            creative = self.get(creative_id)
            if creative.edit(given):
                self.store.save(creative, writes=self.views.creative_rows(creative))
            return creative

        return self.store._retrying(edit)

    def of_offer(self, offer_id: str, status: str | None, kind: str | None, after: int | None,
                 limit: int) -> Page[Creative]:
        """The offer's creatives, oldest first (404 for an unknown offer)."""
        offer = self.store.get_offer(offer_id)
        rows = self.views.page(offer.offer_id, status, kind, after, limit)
        page = rows[:limit]
        keys = [UUID(hex=row["id"]) for row in page]
        found = self.store.aggregates(keys)
        items = [creative for key in keys if isinstance(creative := found.get(key), Creative)]
        return Page(items, page[-1]["seq"] if len(rows) > limit else None)
