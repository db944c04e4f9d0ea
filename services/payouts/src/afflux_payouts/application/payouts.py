"""The payouts store: the commission ledger and its statements, folded from the log.

It folds three topics (``FOLDED_TOPICS``): ``afflux.attribution.v1`` (commissions
and their reviews), ``afflux.partners.v1`` (billing terms) and its own
``afflux.payouts.v1`` (statements, payments, adjustments, which payouts decides in
``statements.py`` and only takes effect here, when they come back from the log).
Each record becomes view writes committed with its log position and event_id. A
review of a conversion whose commission is not recorded yet is parked until it is
(the same partner key keeps them in order on the log, so this only happens while a
decision is being re-driven from the DLQ).

The fold is deterministic and order-independent across topics: balances are sums
of facts (see ``adapters/statements_sql.py``), and nothing here reads a clock.

Running the fold elsewhere (replay, drift): open this class on any schema and feed
it envelopes, e.g.::

    store = open_store(Payouts, database_url, "payouts_replay_1234")
    store.apply(store.handle(envelope), Position(topic, partition, offset), envelope.event_id)

(``apply_run`` for runs of one partition: the run's ledger steps are decided together,
see ``run_ledger.py``). Its view tables are ``VIEW_TABLES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar
from uuid import UUID

from psycopg import sql

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    BalanceAdjusted,
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    Envelope,
    Event,
    ImpressionsPriced,
    PartnerCreated,
    PartnerStatusChanged,
    PartnerUpdated,
    StatementIssued,
    StatementPaid,
    round_money,
    statement_digest,
)
from afflux_payouts.adapters import ledger_sql, statements_sql
from afflux_payouts.application.run_ledger import ChangeRow, Opened, Reviewed, RunLedger, RunMemory, json_rows
from afflux_payouts.domain.balance import Balance, Sums, balance_from_sums
from afflux_payouts.domain.ledger import (
    Bucket,
    LedgerEntry,
    NotCommissionable,
    Rejection,
    ReviewMismatch,
    commission_for,
    commission_for_traffic,
    rejection_for,
    review,
)
from afflux_plumbing.consume import RetryLater, Unprocessable
from afflux_plumbing.store import Changes, RunItem, TrackedApplication, Write


@dataclass(frozen=True)
class PageKey:
    """Where a page of commissions ends: the listing's sort key of its last entry."""

    converted_at: datetime
    conversion_id: str


@dataclass(frozen=True)
class RunStatements:
    """The statements of ``Payouts.apply_run``, composed for one store's schema."""

    select_entries: sql.SQL
    insert_entries: sql.SQL
    update_entries: sql.SQL
    insert_changes: sql.SQL


@dataclass(frozen=True)
class CommissionPage:
    entries: list[LedgerEntry]
    next: PageKey | None


FOLDED_TOPICS = (ATTRIBUTION.name, PARTNERS.name, PAYOUTS.name)
"""Every topic the payouts projection is a fold of (each consumed in its own group)."""

VIEW_TABLES = ("ledger_entries", "rejections", "commission_changes", "adjustments", "statements",
               "statement_lines", "partner_terms")
"""The projection's tables (the rest of the schema is the event store's bookkeeping)."""

INFINITY = datetime.max.replace(tzinfo=UTC)


class Payouts(TrackedApplication):
    """Commission ledger, statements and balances of every partner, by currency."""

    name = "Payouts"
    view_ddl: ClassVar = [*ledger_sql.VIEW_DDL, *statements_sql.STATEMENTS_DDL]

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.run_memory = RunMemory()
        super().__init__(env)

    def apply_run(self, run: Sequence[RunItem]) -> list[bool]:
        """As ``TrackedApplication.apply_run``, with the run's ledger steps left to its end
        (``end_of_run``) and decided together (``run_ledger.py``): one read of the entries
        the run touches and three multi-row writes, instead of a read and two writes per
        record."""
        self.run_memory.current = RunLedger()
        try:
            return super().apply_run(run)
        finally:
            self.run_memory.current = None

    def end_of_run(self) -> Changes:
        ledger = self.run_memory.current
        return self._settle(ledger) if ledger is not None and ledger.steps else Changes()

    @cached_property
    def run_sql(self) -> RunStatements:
        """The run path's statements, composed once per store (composing a statement's
        identifiers on every run costs more than some of the statements)."""
        ledger, inbox = self.table("ledger_entries"), self.tracked_recorder.inbox_table
        return RunStatements(
            select_entries=sql.SQL(ledger_sql.select_entries(ledger).as_string()),
            insert_entries=sql.SQL(ledger_sql.insert_entries(ledger, inbox).as_string()),
            update_entries=sql.SQL(ledger_sql.update_entries(ledger).as_string()),
            insert_changes=sql.SQL(statements_sql.insert_changes(self.table("commission_changes"),
                                                                 inbox).as_string()),
        )

    def _settle(self, ledger: RunLedger) -> Changes:
        """The run's ledger steps decided over the entries they touch (read in one query)
        and written in three multi-row statements: new entries, moved entries, history."""
        statements = self.run_sql
        rows = self.query(statements.select_entries, (ledger.conversion_ids(),))
        settled = ledger.settle({row["conversion_id"]: _entry(row) for row in rows}, self.change_row)
        writes = []
        if settled.inserted:
            writes.append(Write(statements.insert_entries, (json_rows(
                {"conversion_id": e.conversion_id, "partner_id": e.partner_id, "offer_id": e.offer_id,
                 "amount": e.amount, "currency": e.currency, "bucket": e.bucket.value,
                 "converted_at": e.converted_at, "event_id": e.event_id} for e in settled.inserted),)))
        if settled.moved:
            writes.append(Write(statements.update_entries, (json_rows(
                {"conversion_id": e.conversion_id, "amount": e.amount, "bucket": e.bucket.value,
                 "decided_amount": e.decided_amount,
                 "decided_bucket": e.decided_bucket.value if e.decided_bucket else None}
                for e in settled.moved.values()),)))
        if settled.changes:
            writes.append(Write(statements.insert_changes, (json_rows(settled.changes),)))
        return Changes(writes=writes)

    # -- consuming the attribution log -------------------------------------------------

    def handle(self, envelope: Envelope[Event]) -> Changes:
        """The ledger change one attribution event causes (runs in the consumer's thread)."""
        payload = envelope.payload
        if isinstance(payload, ConversionAttributed):
            return self._record_commission(payload, envelope)
        if isinstance(payload, ClickPriced | ImpressionsPriced):
            return self._record_traffic(payload, envelope)
        if isinstance(payload, ConversionRejected):
            return self._record_rejection(rejection_for(payload, envelope.event_id))
        if isinstance(payload, ConversionStatusChanged):
            return self._record_review(payload, envelope)
        if isinstance(payload, PartnerCreated | PartnerUpdated):
            return self._record_terms(payload, envelope.event_id)
        if isinstance(payload, PartnerStatusChanged):
            return Changes(writes=[Write(statements_sql.update_terms_status(self.table("partner_terms")),
                                         (payload.status.value, payload.partner_id))])
        if isinstance(payload, StatementIssued):
            return self._record_statement(payload, envelope)
        if isinstance(payload, StatementPaid):
            return self._record_payment(payload, envelope)
        if isinstance(payload, BalanceAdjusted):
            return self._record_adjustment(payload, envelope)
        return Changes()

    def _change(self, entry: LedgerEntry, happened_at: datetime, envelope: Envelope[Event]) -> Write:
        """The history row of what ``entry`` holds after ``envelope``'s record."""
        return Write(
            statements_sql.insert_change(self.table("commission_changes"), self.tracked_recorder.inbox_table),
            self.change_row(entry, happened_at, envelope),
        )

    @staticmethod
    def change_row(entry: LedgerEntry, happened_at: datetime, envelope: Envelope[Event]) -> ChangeRow:
        """The ``commission_changes`` columns of what ``entry`` holds after ``envelope``'s record."""
        return {"event_id": envelope.event_id, "conversion_id": entry.conversion_id,
                "partner_id": entry.partner_id, "offer_id": entry.offer_id, "currency": entry.currency,
                "status": entry.bucket.value,
                "amount": round_money(entry.amount if entry.bucket is not Bucket.VOID else Decimal(0),
                                      entry.currency),
                "happened_at": happened_at, "known_on": envelope.occurred_at}

    def _record_terms(self, partner: PartnerCreated | PartnerUpdated, event_id: UUID) -> Changes:
        billing = partner.billing
        params = (partner.partner_id, partner.name, partner.status.value,
                  billing.currency if billing else None, billing.frequency.value if billing else None,
                  billing.minimum_payout if billing else None, billing.method if billing else None, event_id)
        return Changes(writes=[Write(statements_sql.upsert_terms(self.table("partner_terms")), params)])

    def _record_statement(self, issued: StatementIssued, envelope: Envelope[Event]) -> Changes:
        rederived = statement_digest(issued.statement_id, issued.partner_id, issued.currency,
                                     issued.period_end, issued.lines)
        if rederived != issued.digest:
            raise Unprocessable(f"statement {issued.statement_id}: its digest {issued.digest} is not the one "
                                f"of its lines ({rederived}); it is not folded")
        lines = issued.lines
        columns = ([line.kind.value for line in lines], [line.ref for line in lines],
                   [line.offer_id for line in lines], [line.happened_at for line in lines],
                   [round_money(line.amount, issued.currency) for line in lines])
        params = (
            issued.statement_id, issued.partner_id, issued.currency, issued.period_start, issued.period_end,
            issued.status.value, round_money(issued.total, issued.currency),
            round_money(issued.carried_over, issued.currency), issued.minimum_payout, issued.frequency,
            issued.closed_by, json.dumps(issued.log_position, sort_keys=True, separators=(",", ":")),
            issued.digest, issued.issued_at, envelope.occurred_at, envelope.event_id,
            issued.statement_id, issued.partner_id, issued.currency, *columns)
        statement = statements_sql.insert_statement(self.table("statements"), self.table("statement_lines"))
        return Changes(writes=[Write(statement, params)])

    def _record_payment(self, paid: StatementPaid, envelope: Envelope[Event]) -> Changes:
        rows = self.query(statements_sql.select_statement(self.schema), (paid.statement_id,))
        if not rows:
            raise RetryLater(f"payment of statement {paid.statement_id}, which is not recorded yet")
        if rows[0]["status"] == "carried_over":
            raise Unprocessable(f"payment {envelope.event_id} of statement {paid.statement_id}, "
                                "which carried its total over and is not payable")
        params = (paid.paid_at, envelope.occurred_at, paid.reference, paid.statement_id)
        return Changes(writes=[Write(statements_sql.mark_paid(self.table("statements")), params)])

    def _record_adjustment(self, adjusted: BalanceAdjusted, envelope: Envelope[Event]) -> Changes:
        return Changes(writes=[Write(statements_sql.insert_adjustment(self.table("adjustments")), (
            adjusted.adjustment_id, adjusted.partner_id, adjusted.currency,
            round_money(adjusted.amount, adjusted.currency), adjusted.reason, adjusted.note,
            adjusted.adjusted_at, envelope.occurred_at, envelope.event_id))])

    def _record_review(self, change: ConversionStatusChanged, envelope: Envelope[Event]) -> Changes:
        ledger = self.run_memory.current
        if ledger is not None:  # decided with the run's other steps, at its end
            ledger.steps.append(Reviewed(change, envelope))
            return Changes()
        event_id = envelope.event_id
        entry = self.entry(change.conversion_id)
        if entry is None:
            if self.query(ledger_sql.select_rejection(self.table("rejections")), (change.conversion_id,)):
                raise Unprocessable(f"status change {event_id}: conversion {change.conversion_id} was "
                                    "rejected at attribution and has no commission to change")
            raise RetryLater(f"status change of conversion {change.conversion_id}, "
                             "whose commission is not recorded yet")
        try:
            moved = review(entry, change, event_id)
        except ReviewMismatch as error:
            raise Unprocessable(str(error)) from error
        return Changes(writes=[
            Write(ledger_sql.update_entry(self.table("ledger_entries")),
                  (moved.amount, moved.bucket.value, moved.decided_amount,
                   moved.decided_bucket.value if moved.decided_bucket else None, moved.conversion_id)),
            self._change(moved, change.changed_at, envelope),
        ])

    def _record_commission(self, decision: ConversionAttributed, envelope: Envelope[Event]) -> Changes:
        event_id = envelope.event_id
        try:
            entry = commission_for(decision, event_id)
        except NotCommissionable as error:
            raise Unprocessable(str(error)) from error
        return self._record_entry(entry, envelope)

    def _record_traffic(self, priced: ClickPriced | ImpressionsPriced, envelope: Envelope[Event]) -> Changes:
        try:
            entry = commission_for_traffic(priced, envelope.event_id)
        except NotCommissionable as error:
            raise Unprocessable(str(error)) from error
        return self._record_entry(entry, envelope)

    def _record_entry(self, entry: LedgerEntry, envelope: Envelope[Event]) -> Changes:
        """Open ``entry``'s commission once; the same decision again is a no-op, a conflicting
        one is dead-lettered (it would change a payout silently)."""
        ledger = self.run_memory.current
        if ledger is not None:  # decided with the run's other steps, at its end
            ledger.steps.append(Opened(entry, envelope))
            return Changes()
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
        return Changes(writes=[write, self._change(entry, entry.converted_at, envelope)])

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

    def balances(self, partner_id: str, as_of: datetime | None = None,
                 as_known_on: datetime | None = None) -> dict[str, Balance]:
        """The partner's balance per currency from the facts that happened by ``as_of`` and
        were recorded by ``as_known_on`` (both: everything), summed by PostgreSQL."""
        params = {"partner": partner_id, "as_of": as_of or INFINITY, "known": as_known_on or INFINITY}
        rows = self.query(statements_sql.select_balance(self.schema), params)
        return {row["currency"]: balance_from_sums(Sums(row["currency"], row["pending"], row["earned"],
                                                        row["claimed"], row["paid"])) for row in rows}

    def claims(self, partner_id: str) -> dict[str, tuple[Decimal, Decimal]]:
        """conversion_id -> (claimed by payable or paid statements, of which paid)."""
        rows = self.query(statements_sql.select_claims_of(self.schema), {"partner": partner_id})
        return {row["ref"]: (row["claimed"], row["paid"]) for row in rows}

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
