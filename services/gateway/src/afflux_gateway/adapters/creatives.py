"""Offers' creatives in the gateway's schema (``CreativeWrites``, ``CreativeReads``): one row
per creative as its last ``CreativeSet`` says, a banner's image bytes included, so the
partner API, the portal and the public image route answer from the gateway's own view.
``seq`` keeps the order they were first seen in (the order staff created them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from afflux_contracts import CreativeSet
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table

if TYPE_CHECKING:
    from afflux_gateway.adapters.views import GatewayStore

CREATIVES = Table("creatives", (
    "creative_id text", "offer_id text NOT NULL", "name text NOT NULL", "kind text NOT NULL",
    "status text NOT NULL", "alt_text text", "link_text text", "subject_lines jsonb NOT NULL DEFAULT '[]'",
    "from_lines jsonb NOT NULL DEFAULT '[]'", "html_body text", "image_format text", "width integer",
    "height integer", "sha256 text", "image bytea", "seq bigserial"), key=("creative_id",))

CREATIVES_DDL = [
    *CREATIVES.ddl(),
    "CREATE INDEX IF NOT EXISTS creatives_by_offer ON {schema}.creatives (offer_id, seq)",
]
_SHOWN = ("creative_id", "offer_id", "name", "kind", "alt_text", "link_text", "subject_lines", "from_lines",
          "html_body", "image_format", "width", "height", "sha256")
"""What a partner's list reads: everything but the image's bytes (the image route serves those)."""
_STATE = (*_SHOWN[1:], "status", "image")


def creative_row(p: CreativeSet) -> dict[str, Any]:
    image = p.image
    return {
        "creative_id": p.creative_id, "offer_id": p.offer_id, "name": p.name, "kind": p.kind.value,
        "status": p.status.value, "alt_text": p.alt_text, "link_text": p.link_text,
        "subject_lines": list(p.subject_lines), "from_lines": list(p.from_lines), "html_body": p.html_body,
        "image_format": image.format.value if image else None, "width": image.width if image else None,
        "height": image.height if image else None, "sha256": image.sha256 if image else None,
        # bytea's input form: the hex of the bytes (the row travels as JSON, which has no bytes)
        "image": "\\x" + image.content().hex() if image else None,
    }


class CreativeTables:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.schema = store.schema

    def save_creatives(self, creatives: Sequence[CreativeSet]) -> Write | None:
        """Each creative's row replaced by its new state (its ``seq`` kept)."""
        statement = CREATIVES.upsert(self.schema, _STATE, ("creative_id", *_STATE))
        return CREATIVES.write(statement, [creative_row(p) for p in creatives])

    def active_creatives(self, offer_id: str) -> list[dict[str, Any]]:
        query = sql.SQL("SELECT {} FROM {} WHERE offer_id = %s AND status = 'active' ORDER BY seq")
        columns = sql.SQL(", ").join(map(sql.Identifier, _SHOWN))
        statement = query.format(columns, CREATIVES.ident(self.schema))
        return self.store.query(statement, (offer_id,))

    def active_banner(self, creative_id: str) -> dict[str, Any] | None:
        """An active banner's format, digest and bytes (None: unknown, archived or not a banner)."""
        statement = sql.SQL("SELECT image_format, sha256, image FROM {} "
                            "WHERE creative_id = %s AND kind = 'banner' AND status = 'active'").format(
            CREATIVES.ident(self.schema))
        rows = self.store.query(statement, (creative_id,))
        return rows[0] if rows else None
