"""The payouts store: the commission ledger, folded from ``afflux.attribution.v1``.

It is a projection with no aggregates of its own (yet): each consumed decision
becomes at most one view write, and each review (ConversionStatusChanged) moves
its commission or adds a correction, committed with the log position and the
event_id. A review of a conversion whose commission is not recorded yet is
parked until it is (the same partner key keeps them in order on the log, so this
only happens while a decision is being re-driven from the DLQ). The fold is
deterministic: the ledger depends only on the log, not on restarts, redeliveries
or re-published duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from afflux_contracts import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    Envelope,
    Event,
)
from afflux_payouts.adapters import ledger_sql
from afflux_payouts.domain.balance import Balance, balances_from_totals
from afflux_payouts.domain.ledger import (
    Bucket,
    Correction,
    LedgerEntry,
    NotCommissionable,
    Rejection,
    ReviewMismatch,
    commission_for,
    rejection_for,
    review,
)
from afflux_plumbing.consume import RetryLater, Unprocessable
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
        if isinstance(payload, ConversionStatusChanged):
            return self._record_review(payload, envelope.event_id)
        return Changes()

    def _record_review(self, change: ConversionStatusChanged, event_id: UUID) -> Changes:
        entry = self.entry(change.conversion_id)
        if entry is None:
            if self.query(ledger_sql.select_rejection(self.table("rejections")), (change.conversion_id,)):
                raise Unprocessable(f"status change {event_id}: conversion {change.conversion_id} was "
                                    "rejected at attribution and has no commission to change")
            raise RetryLater(f"status change of conversion {change.conversion_id}, "
                             "whose commission is not recorded yet")
        try:
            reviewed = review(entry, self.corrections(change.conversion_id), change, event_id)
        except ReviewMismatch as error:
            raise Unprocessable(str(error)) from error
        moved = reviewed.entry
        writes = [Write(ledger_sql.update_entry(self.table("ledger_entries")),
                        (moved.amount, moved.bucket.value, moved.decided_amount,
                         moved.decided_bucket.value if moved.decided_bucket else None, moved.conversion_id))]
        if (c := reviewed.correction) is not None:
            writes.append(Write(
                ledger_sql.insert_correction(self.table("corrections"), self.tracked_recorder.inbox_table),
                (c.event_id, c.conversion_id, c.partner_id, c.offer_id, c.amount, c.currency, c.bucket.value,
                 c.happened_at, c.event_id),
            ))
        return Changes(writes=writes)

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

    def corrections(self, conversion_id: str) -> list[Correction]:
        rows = self.query(ledger_sql.select_corrections(self.table("corrections")), (conversion_id,))
        return [
            Correction(
                conversion_id=row["conversion_id"], partner_id=row["partner_id"], offer_id=row["offer_id"],
                amount=row["amount"], currency=row["currency"], bucket=Bucket(row["bucket"]),
                happened_at=row["happened_at"].astimezone(UTC), event_id=row["event_id"],
            )
            for row in rows
        ]

    def balances(self, partner_id: str) -> dict[str, Balance]:
        """The partner's balance per currency, summed by PostgreSQL from the ledger's buckets
        (commissions and corrections)."""
        statement = ledger_sql.select_bucket_totals(self.table("ledger_entries"), self.table("corrections"))
        rows = self.query(statement, (partner_id, partner_id))
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
        decided_amount=row["decided_amount"],
        decided_bucket=Bucket(row["decided_bucket"]) if row["decided_bucket"] is not None else None,
    )
