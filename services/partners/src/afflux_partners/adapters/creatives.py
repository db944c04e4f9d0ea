"""The creative index on PostgreSQL (``CreativeViews``): per creative, what an offer's list
filters and pages on, written in the same transaction as the creative's events.

The aggregate is the truth (the image lives in its events); a row holds its offer, kind,
status and ``seq`` (creation order, what a page cursor names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from afflux_partners.domain.creative import Creative
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table

if TYPE_CHECKING:
    from afflux_partners.adapters.store import PartnersStore

CREATIVE_INDEX = Table("creative_index", (
    "seq bigserial UNIQUE", "creative_id text", "offer_id text NOT NULL", "kind text NOT NULL",
    "status text NOT NULL"), key=("creative_id",))

CREATIVES_DDL = [
    *CREATIVE_INDEX.ddl(),
    "CREATE INDEX IF NOT EXISTS creative_index_by_offer ON {schema}.creative_index (offer_id, seq)",
]


class CreativeTables:
    """``CreativeViews`` on the store's schema (reads through its ``query``)."""

    def __init__(self, store: PartnersStore) -> None:
        self.store = store
        self.schema = store.schema

    def creative_rows(self, creative: Creative) -> Sequence[Write]:
        row = {"creative_id": creative.creative_id, "offer_id": creative.offer_id, "kind": creative.kind,
               "status": creative.status}
        write = CREATIVE_INDEX.write(CREATIVE_INDEX.upsert(self.schema, ("status",), tuple(row)), [row])
        return [write] if write is not None else []

    def page(self, offer_id: str, status: str | None, kind: str | None, after: int | None,
             limit: int) -> list[dict[str, Any]]:
        clauses: list[str] = ["offer_id = %s"]
        params: list[object] = [offer_id]
        for clause, value in (("status = %s", status), ("kind = %s", kind), ("seq > %s", after)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        statement = sql.SQL("SELECT creative_id AS id, seq FROM {} WHERE {} ORDER BY seq LIMIT %s").format(
            CREATIVE_INDEX.ident(self.schema), sql.SQL(" AND ".join(clauses)))
        return self.store.query(statement, [*params, limit + 1])
