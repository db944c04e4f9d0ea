"""What the admin API and the replay read, in PostgreSQL (``application/reads.py``'s
``PayoutsReads``). Balances are sums PostgreSQL makes: accrued = earned +
adjustments - claimed, payable = claimed on unpaid statements, paid = claimed on
paid ones; being sums, they do not depend on the order the logs were folded in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from psycopg import sql

from afflux_payouts.adapters.ledger_sql import ENTRY_COLUMNS, entry_of
from afflux_payouts.adapters.tables import ADJUSTMENTS, CHANGES, LEDGER, LINES, REJECTIONS, STATEMENTS
from afflux_payouts.application.reads import CommissionPage, PageKey
from afflux_payouts.domain.balance import Balance, Sums, balance_from_sums
from afflux_payouts.domain.ledger import LedgerEntry, Rejection
from afflux_plumbing.store import TrackedApplication
from afflux_plumbing.tables import keys_param

INFINITY = datetime.max.replace(tzinfo=UTC)
CLAIMING = "('payable', 'on_hold', 'paid')"


class ReadsSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def balances(self, partner_id: str, as_of: datetime | None = None,
                 as_known_on: datetime | None = None) -> dict[str, Balance]:
        params = {"partner": partner_id, "as_of": as_of or INFINITY, "known": as_known_on or INFINITY}
        rows = self.store.query(_select_balance(self.store.schema), params)
        return {row["currency"]: balance_from_sums(Sums(row["currency"], row["pending"], row["earned"],
                                                        row["claimed"], row["paid"])) for row in rows}

    def claims(self, partner_id: str) -> dict[str, tuple[Decimal, Decimal]]:
        rows = self.store.query(_select_claims(self.store.schema), {"partner": partner_id})
        return {row["ref"]: (row["claimed"], row["paid"]) for row in rows}

    def commissions(self, partner_id: str, limit: int, after: PageKey | None = None) -> CommissionPage:
        params: dict[str, Any] = {"partner_id": partner_id, "limit": limit + 1}
        if after is not None:
            params |= {"after_at": after.converted_at, "after_id": after.conversion_id}
        rows = self.store.query(_select_page(self.store.schema, after is not None), params)
        entries = [entry_of(row) for row in rows]
        if len(entries) <= limit:
            return CommissionPage(entries, None)
        last = entries[limit - 1]
        return CommissionPage(entries[:limit], PageKey(last.converted_at, last.conversion_id))

    def rejections(self, partner_id: str) -> list[Rejection]:
        rows = self.store.query(_select_rejections(self.store.schema), (partner_id,))
        return [Rejection(conversion_id=row["conversion_id"], partner_id=row["partner_id"],
                          offer_id=row["offer_id"], reason=row["reason"], message=row["message"],
                          converted_at=row["converted_at"].astimezone(UTC), event_id=row["event_id"],
                          recorded_from=row["recorded_from"]) for row in rows]

    def entry(self, conversion_id: str) -> LedgerEntry | None:
        keys = keys_param([conversion_id], ("conversion_id",))
        rows = self.store.query(LEDGER.select(self.store.schema), keys)
        return entry_of(rows[0]) if rows else None

    def statements(self, partner_id: str | None, status: str | None, limit: int) -> list[Mapping[str, Any]]:
        statement = _select_statements(self.store.schema, partner_id is not None, status is not None)
        return list(self.store.query(statement, {"partner": partner_id, "status": status, "limit": limit}))

    def statement(self, statement_id: str) -> Mapping[str, Any] | None:
        keys = keys_param([statement_id], ("statement_id",))
        rows = self.store.query(STATEMENTS.select(self.store.schema), keys)
        return rows[0] if rows else None

    def statement_lines(self, statement_id: str) -> list[Mapping[str, Any]]:
        statement = LINES.select(self.store.schema, ("statement_id",), order_by=("kind", "ref"))
        return list(self.store.query(statement, keys_param([statement_id], ("statement_id",))))


@cache
def _select_balance(schema: str) -> sql.Composed:
    """One partner's sums per currency as of %(as_of)s / known by %(known)s: pending,
    earned (approved commissions and adjustments), claimed by statements, paid."""
    return sql.SQL(
        "WITH state AS (SELECT DISTINCT ON (conversion_id) currency, status, amount FROM {changes} "
        "  WHERE partner_id = %(partner)s AND happened_at <= %(as_of)s AND known_on <= %(known)s "
        "  ORDER BY conversion_id, log_offset DESC), "
        "earned AS (SELECT currency, sum(amount) FILTER (WHERE status = 'pending') AS pending, "
        "  sum(amount) FILTER (WHERE status = 'accrued') AS earned FROM state GROUP BY currency "
        "  UNION ALL SELECT currency, NULL, sum(amount) FROM {adjustments} WHERE partner_id = %(partner)s "
        "  AND happened_at <= %(as_of)s AND known_on <= %(known)s GROUP BY currency), "
        "claims AS (SELECT s.currency, sum(l.amount) AS claimed, sum(l.amount) FILTER (WHERE "
        "  s.paid_at <= %(as_of)s AND s.paid_known_on <= %(known)s) AS paid FROM {statements} s "
        "  JOIN {lines} l ON l.statement_id = s.statement_id WHERE s.partner_id = %(partner)s "
        "  AND s.status IN " + CLAIMING + " AND s.issued_at <= %(as_of)s AND s.known_on <= %(known)s "
        "  GROUP BY s.currency) "
        "SELECT currency, coalesce(sum(pending), 0) AS pending, coalesce(sum(earned), 0) AS earned, "
        "  coalesce(sum(claimed), 0) AS claimed, coalesce(sum(paid), 0) AS paid FROM ("
        "  SELECT currency, pending, earned, NULL::numeric AS claimed, NULL::numeric AS paid FROM earned "
        "  UNION ALL SELECT currency, NULL, NULL, claimed, paid FROM claims) AS sums "
        "GROUP BY currency ORDER BY currency"
    ).format(changes=CHANGES.ident(schema), adjustments=ADJUSTMENTS.ident(schema),
             statements=STATEMENTS.ident(schema), lines=LINES.ident(schema))


@cache
def _select_claims(schema: str) -> sql.Composed:
    """Per conversion of %(partner)s: what payable and paid statements claimed of it."""
    return sql.SQL(
        "SELECT l.ref, sum(l.amount) AS claimed, coalesce(sum(l.amount) FILTER (WHERE s.status = 'paid'), 0) "
        "AS paid FROM {} l JOIN {} s ON s.statement_id = l.statement_id WHERE l.partner_id = %(partner)s "
        "AND l.kind = 'commission' AND s.status IN " + CLAIMING + " GROUP BY l.ref"
    ).format(LINES.ident(schema), STATEMENTS.ident(schema))


@cache
def _select_page(schema: str, after: bool) -> sql.Composed:
    """Up to %(limit)s entries of a partner in (converted_at, conversion_id) order,
    strictly after the page key when ``after``."""
    keyset = sql.SQL(" AND (converted_at, conversion_id) > (%(after_at)s, %(after_id)s)" if after else "")
    return sql.SQL(
        "SELECT {} FROM {} WHERE partner_id = %(partner_id)s{} ORDER BY converted_at, conversion_id "
        "LIMIT %(limit)s"
    ).format(sql.SQL(", ").join(map(sql.Identifier, ENTRY_COLUMNS)), LEDGER.ident(schema), keyset)


@cache
def _select_rejections(schema: str) -> sql.Composed:
    """A partner's rejections, but those an appeal credited since (a commission is held)."""
    return sql.SQL(
        "SELECT r.* FROM {} r WHERE r.partner_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM {} e WHERE e.conversion_id = r.conversion_id) "
        "ORDER BY r.converted_at, r.conversion_id"
    ).format(REJECTIONS.ident(schema), LEDGER.ident(schema))


@cache
def _select_statements(schema: str, partner: bool, status: bool) -> sql.Composed:
    conditions = [sql.SQL("TRUE")]
    if partner:
        conditions.append(sql.SQL("partner_id = %(partner)s"))
    if status:
        conditions.append(sql.SQL("status = %(status)s"))
    return sql.SQL(
        "SELECT * FROM {} WHERE {} ORDER BY period_end, partner_id, currency LIMIT %(limit)s"
    ).format(STATEMENTS.ident(schema), sql.SQL(" AND ").join(conditions))
