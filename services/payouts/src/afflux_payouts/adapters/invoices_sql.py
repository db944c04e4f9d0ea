"""What invoicing reads in PostgreSQL (``application/invoices.py``'s ``InvoiceDesk``)."""

from __future__ import annotations

from functools import cache

from psycopg import sql

from afflux_payouts.adapters.runs_sql import unfolded
from afflux_payouts.adapters.tables import INVOICES, PROFILES, STATEMENTS
from afflux_payouts.application.invoices import Ready
from afflux_payouts.domain.invoices import INVOICE_ISSUED
from afflux_plumbing.store import TrackedApplication


class InvoicesSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def ready(self) -> list[Ready]:
        """Payable or paid statements of partners whose profile is complete, with no standing
        invoice (none, or as many credit notes as invoices), oldest first."""
        rows = self.store.query(_select_ready(self.store.schema))
        return [Ready(row["statement_id"], row["sealed"]) for row in rows]

    def numbers(self, statement_id: str) -> list[str]:
        rows = self.store.query(_select_numbers(self.store.schema), (statement_id,))
        return [row["invoice_number"] for row in rows]

    def unfolded(self) -> int:
        return unfolded(self.store, ((INVOICE_ISSUED, INVOICES, ""),))


@cache
def _select_ready(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT s.statement_id, p.sealed FROM {statements} s "
        "JOIN {profiles} p ON p.partner_id = s.partner_id AND p.complete "
        "WHERE s.status IN ('payable', 'paid') AND (SELECT count(*) FILTER (WHERE i.kind = 'invoice') "
        "  - count(*) FILTER (WHERE i.kind = 'credit_note') FROM {invoices} i "
        "  WHERE i.statement_id = s.statement_id) = 0 "
        "ORDER BY s.issued_at, s.statement_id"
    ).format(statements=STATEMENTS.ident(schema), profiles=PROFILES.ident(schema),
             invoices=INVOICES.ident(schema))


@cache
def _select_numbers(schema: str) -> sql.Composed:
    return sql.SQL("SELECT invoice_number FROM {} WHERE statement_id = %s ORDER BY issued_at, invoice_number"
                   ).format(INVOICES.ident(schema))
