"""The commission ledger in PostgreSQL: the reads and batch writes of a run of attribution
records (``application/ledger.py``'s ``LedgerTables``). Money is ``numeric`` here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from functools import cache
from typing import Any

from psycopg import sql

from afflux_payouts.adapters.tables import CHANGES, LEDGER, REJECTIONS
from afflux_payouts.domain.ledger import Bucket, LedgerEntry
from afflux_payouts.domain.ledger_fold import Holdings, Outcome
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import keys_param

MOVED = ("amount", "bucket", "decided_amount", "decided_bucket")


class LedgerSql:
    """``LedgerTables`` on the store's schema (reads go through the store, so a run's
    reads see what the run wrote before them)."""

    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def holding(self, conversion_ids: Sequence[str]) -> Holdings:
        keys = keys_param(conversion_ids, ("conversion_id",))
        rows = self.store.query(_select_holdings(self.store.schema), keys)
        return Holdings(entries={row["conversion_id"]: entry_of(row) for row in rows if row["event_id"]},
                        rejected={row["conversion_id"] for row in rows if row["rejected"]})

    def writes(self, outcome: Outcome) -> list[Write]:
        schema = self.store.schema
        found = [
            LEDGER.write(LEDGER.insert(schema), (_entry_row(e) for e in outcome.opened)),
            LEDGER.write(LEDGER.update(schema, MOVED), (_entry_row(e) for e in outcome.moved.values())),
            CHANGES.write(CHANGES.insert(schema), (
                {"event_id": c.source.event_id, "conversion_id": c.conversion_id, "partner_id": c.partner_id,
                 "offer_id": c.offer_id, "currency": c.currency, "status": c.status, "amount": c.amount,
                 "happened_at": c.happened_at, "known_on": c.source.known_on,
                 "log_offset": c.source.log_offset, "recorded_from": c.source.recorded_from}
                for c in outcome.changes)),
            REJECTIONS.write(REJECTIONS.insert(schema), (
                {"conversion_id": r.conversion_id, "partner_id": r.partner_id, "offer_id": r.offer_id,
                 "reason": r.reason, "message": r.message, "converted_at": r.converted_at,
                 "recorded_from": r.recorded_from, "event_id": r.event_id} for r in outcome.rejections)),
        ]
        return [write for write in found if write is not None]


def _entry_row(entry: LedgerEntry) -> dict[str, Any]:
    return {"conversion_id": entry.conversion_id, "partner_id": entry.partner_id, "offer_id": entry.offer_id,
            "amount": entry.amount, "currency": entry.currency, "bucket": entry.bucket,
            "converted_at": entry.converted_at, "recorded_from": entry.recorded_from,
            "event_id": entry.event_id, "decided_amount": entry.decided_amount,
            "decided_bucket": entry.decided_bucket}


def entry_of(row: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        conversion_id=row["conversion_id"], partner_id=row["partner_id"], offer_id=row["offer_id"],
        amount=row["amount"], currency=row["currency"], bucket=Bucket(row["bucket"]),
        converted_at=row["converted_at"].astimezone(UTC), event_id=row["event_id"],
        recorded_from=row["recorded_from"], decided_amount=row["decided_amount"],
        decided_bucket=Bucket(row["decided_bucket"]) if row["decided_bucket"] is not None else None)


ENTRY_COLUMNS = LEDGER.column_names


@cache
def _select_holdings(schema: str) -> sql.Composed:
    """Per conversion asked: its commission (if held) and whether it was rejected."""
    return sql.SQL("SELECT k.conversion_id, {}, r.conversion_id IS NOT NULL AS rejected "
                   "FROM {} LEFT JOIN {} AS e USING (conversion_id) LEFT JOIN {} AS r USING (conversion_id)"
                   ).format(sql.SQL(", ").join(sql.Identifier("e", c) for c in ENTRY_COLUMNS
                                               if c != "conversion_id"),
                            LEDGER.recordset(("conversion_id",), "k"), LEDGER.ident(schema),
                            REJECTIONS.ident(schema))
