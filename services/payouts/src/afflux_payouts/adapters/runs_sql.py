"""What payment runs read in PostgreSQL (``application/payment_runs.py``'s ``RunDesk``):
the statements a selection may take, the payees' sealed details, and whether the fold
has caught up with the runs recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from psycopg import sql

from afflux_payouts.adapters.tables import PROFILES, RUN_PAYMENTS, RUNS, STATEMENTS
from afflux_payouts.domain.payment_runs import PAYMENT_RUN_CONFIRMED, PAYMENT_RUN_CREATED, Candidate
from afflux_plumbing.store import TrackedApplication
from afflux_plumbing.tables import Table


class RunsSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def candidates(self, statement_ids: Sequence[str] | None, due_by: datetime | None) -> list[Candidate]:
        """The statements named, or every payable one whose period ended by ``due_by``."""
        rows = self.store.query(_select_candidates(self.store.schema, named=statement_ids is not None),
                                {"ids": list(statement_ids or ()), "due_by": due_by})
        return [Candidate(**row) for row in rows]

    def sealed(self, partner_ids: Sequence[str]) -> dict[str, str]:
        """Each partner's sealed tax and payment details (as the partners log gave them)."""
        rows = self.store.query(_select_sealed(self.store.schema), (list(partner_ids),))
        return {row["partner_id"]: row["sealed"] for row in rows}

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest runs first, each with how many statements it pays and its totals per
        currency (the finance console's list; one run in full is its aggregate's)."""
        return [dict(row) for row in self.store.query(_select_recent(self.store.schema), (limit,))]

    def unfolded(self) -> int:
        """Runs (and confirmations) this store recorded that its fold has not recorded yet."""
        return unfolded(self.store, ((PAYMENT_RUN_CREATED, RUNS, ""),
                                     (PAYMENT_RUN_CONFIRMED, RUNS, "status = 'confirmed'")))


@cache
def _select_candidates(schema: str, *, named: bool) -> sql.Composed:
    where = "s.statement_id = ANY(%(ids)s)" if named else \
        "s.status = 'payable' AND (%(due_by)s::timestamptz IS NULL OR s.period_end <= %(due_by)s)"
    return sql.SQL(
        "SELECT s.statement_id, s.partner_id, coalesce(s.paid_currency, s.currency) AS currency, "
        "coalesce(s.paid_total, s.total) AS total, s.status, p.payment_method, "
        "EXISTS (SELECT 1 FROM {payments} r JOIN {runs} u USING (payment_run_id) "
        "  WHERE r.statement_id = s.statement_id AND r.status = 'pending' AND u.status = 'open') "
        "  AS in_open_run "
        "FROM {statements} s LEFT JOIN {profiles} p USING (partner_id) "
        "WHERE " + where + " ORDER BY s.period_end, s.partner_id, s.currency, s.statement_id"
    ).format(payments=RUN_PAYMENTS.ident(schema), runs=RUNS.ident(schema),
             statements=STATEMENTS.ident(schema), profiles=PROFILES.ident(schema))


@cache
def _select_recent(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT u.payment_run_id, u.method, u.status, u.due_by, u.created_at, u.confirmed_at, "
        "(SELECT count(*) FROM {payments} r WHERE r.payment_run_id = u.payment_run_id) AS statements, "
        "(SELECT coalesce(jsonb_object_agg(currency, total), '{{}}') FROM (SELECT currency, "
        "  sum(amount)::text AS total FROM {payments} r WHERE r.payment_run_id = u.payment_run_id "
        "  GROUP BY currency) t) AS totals "
        "FROM {runs} u ORDER BY u.created_at DESC, u.payment_run_id LIMIT %s"
    ).format(runs=RUNS.ident(schema), payments=RUN_PAYMENTS.ident(schema))


@cache
def _select_sealed(schema: str) -> sql.Composed:
    return sql.SQL("SELECT partner_id, sealed FROM {} WHERE partner_id = ANY(%s)").format(
        PROFILES.ident(schema))


def unfolded(store: TrackedApplication, counted: Sequence[tuple[str, Table, str]]) -> int:
    """Events of each stored topic the store recorded less the rows of its table (matching
    the condition) the fold wrote for them: what the fold has not caught up with yet."""
    events = store.table(store.tracked_recorder.events_table_name)
    term = sql.SQL("(SELECT count(*) FROM {} WHERE topic = %s) - (SELECT count(*) FROM {}{})")
    terms = [term.format(events, table.ident(store.schema), sql.SQL(f" WHERE {where}" if where else ""))
             for _, table, where in counted]
    statement = sql.SQL("SELECT {} AS n").format(sql.SQL(" + ").join(terms))
    return int(store.query(statement, tuple(topic for topic, _, _ in counted))[0]["n"])

