"""The payouts store: the commission ledger, folded from ``afflux.attribution.v1``.

It is a projection with no aggregates of its own (yet): each consumed decision
becomes at most one view write, committed with the log position and the
event_id. The fold is deterministic: the ledger depends only on the log, not on
restarts, redeliveries or re-published duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from afflux_contracts import ConversionAttributed, ConversionRejected, Envelope, Event
from afflux_payouts.adapters import ledger_sql
from afflux_payouts.domain.balance import Balance, balances_from_totals
from afflux_payouts.domain.ledger import (
    Bucket,
    LedgerEntry,
    NotCommissionable,
    Rejection,
    commission_for,
    rejection_for,
)
from afflux_plumbing.consume import Unprocessable
from afflux_plumbing.store import Changes, TrackedApplication, Write


@dataclass(frozen=True)
class PageKey:
    """Where a page of commissions ends: the listing's sort key of its last entry."""

    converted_at: datetime
    conversion_id: str


@dataclass(frozen=True)
class CommissionPage:
    entries: list[LedgerEntry]
    next: PageKey | None


class Payouts(TrackedApplication):
    """Commission ledger and balances of every partner, by currency."""

    name = "Payouts"
    view_ddl: ClassVar = ledger_sql.VIEW_DDL

    # -- consuming the attribution log -------------------------------------------------

    def handle(self, envelope: Envelope[Event]) -> Changes:
        """The ledger change one attribution event causes (runs in the consumer's thread)."""
        payload = envelope.payload
        if isinstance(payload, ConversionAttributed):
            return self._record_commission(payload, envelope.event_id)
        if isinstance(payload, ConversionRejected):
            return self._record_rejection(rejection_for(payload, envelope.event_id))
        return Changes()

    def _record_commission(self, decision: ConversionAttributed, event_id: UUID) -> Changes:
        try:
            entry = commission_for(decision, event_id)
        except NotCommissionable as error:
            raise Unprocessable(str(error)) from error
        existing = self.entry(entry.conversion_id)
        if existing is not None:
            if existing.same_commission(entry):
                return Changes()  # the same decision re-published: counted once already
            raise Unprocessable(
                f"conversion {entry.conversion_id} was already recorded from event {existing.event_id} "
                f"({existing.partner_id}, {existing.amount} {existing.currency}, {existing.bucket}); "
                f"a conflicting decision ({entry.partner_id}, {entry.amount} {entry.currency}, "
                f"{entry.bucket}) does not change a commission"
            )
        write = Write(
            ledger_sql.insert_entry(self.table("ledger_entries"), self.tracked_recorder.inbox_table),
            (entry.conversion_id, entry.partner_id, entry.offer_id, entry.amount, entry.currency,
             entry.bucket.value, entry.converted_at, entry.event_id, entry.event_id),
        )
        return Changes(writes=[write])

    def _record_rejection(self, rejection: Rejection) -> Changes:
        write = Write(
            ledger_sql.insert_rejection(self.table("rejections"), self.tracked_recorder.inbox_table),
            (rejection.conversion_id, rejection.partner_id, rejection.offer_id, rejection.reason,
             rejection.message, rejection.converted_at, rejection.event_id, rejection.event_id),
        )
        return Changes(writes=[write])

    # -- reading -----------------------------------------------------------------------

    def entry(self, conversion_id: str) -> LedgerEntry | None:
        rows = self.query(ledger_sql.select_entry(self.table("ledger_entries")), (conversion_id,))
        return _entry(rows[0]) if rows else None

    def balances(self, partner_id: str) -> dict[str, Balance]:
        """The partner's balance per currency, summed by PostgreSQL from the ledger's buckets."""
        rows = self.query(ledger_sql.select_bucket_totals(self.table("ledger_entries")), (partner_id,))
        return balances_from_totals((row["currency"], Bucket(row["bucket"]), row["total"]) for row in rows)

    def commissions(self, partner_id: str, limit: int, after: PageKey | None = None) -> CommissionPage:
        """One page of the partner's commissions in (converted_at, conversion_id) order."""
        params: dict[str, Any] = {"partner_id": partner_id, "limit": limit + 1}
        if after is not None:
            params |= {"after_at": after.converted_at, "after_id": after.conversion_id}
        statement = ledger_sql.select_page(self.table("ledger_entries"), after=after is not None)
        entries = [_entry(row) for row in self.query(statement, params)]
        if len(entries) <= limit:
            return CommissionPage(entries, None)
        last = entries[limit - 1]
        return CommissionPage(entries[:limit], PageKey(last.converted_at, last.conversion_id))

    def rejections(self, partner_id: str) -> list[Rejection]:
        """The partner's conversions that earned nothing, with their reasons."""
        rows = self.query(ledger_sql.select_rejections(self.table("rejections")), (partner_id,))
        return [
            Rejection(
                conversion_id=row["conversion_id"], partner_id=row["partner_id"], offer_id=row["offer_id"],
                reason=row["reason"], message=row["message"],
                converted_at=row["converted_at"].astimezone(UTC), event_id=row["event_id"],
            )
            for row in rows
        ]


def _entry(row: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        conversion_id=row["conversion_id"],
        partner_id=row["partner_id"],
        offer_id=row["offer_id"],
        amount=row["amount"],
        currency=row["currency"],
        bucket=Bucket(row["bucket"]),
        converted_at=row["converted_at"].astimezone(UTC),
        event_id=row["event_id"],
        recorded_from=row["recorded_from"],
    )
