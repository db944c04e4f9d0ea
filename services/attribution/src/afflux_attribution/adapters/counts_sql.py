"""The statements behind exact caps, tiers and per-IP limits.

A decision reads the tallies of its offer (every partner, and the credited one) for
the periods its conversion falls in, *locked* (``FOR UPDATE``) inside the transaction
that records it, and adds the conversion to them in that same transaction (with the
consumer's position). So two instances deciding conversions of one offer at once
take turns on the offer's rows, and a replay rebuilds the counts with the decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

Key = tuple[str, str, str]
"""(offer_id, partner_id ('' = every partner), period bucket)."""


def _values(count: int, width: int) -> sql.Composed:
    row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * width))
    return sql.SQL(", ").join([row] * count)


def ensure_rows(table: sql.Identifier, keys: Sequence[Key]) -> tuple[sql.Composed, list[Any]]:
    """Create the missing tally rows (zero), so that they can be locked."""
    statement = sql.SQL(
        "INSERT INTO {} (offer_id, partner_id, period) VALUES {} ON CONFLICT DO NOTHING"
    ).format(table, _values(len(keys), 3))
    return statement, [value for key in keys for value in key]


def lock_rows(table: sql.Identifier, keys: Sequence[Key]) -> tuple[sql.Composed, list[Any]]:
    """The tally rows of ``keys``, locked until the transaction ends (in key order, so
    two transactions never wait on each other in a cycle)."""
    statement = sql.SQL(
        "SELECT * FROM {} WHERE (offer_id, partner_id, period) IN (VALUES {}) "
        "ORDER BY offer_id, partner_id, period FOR UPDATE").format(table, _values(len(keys), 3))
    return statement, [value for key in sorted(keys) for value in key]


TallyRow = tuple[str, str, str, int, int, Any, Any]
"""(offer_id, partner_id, period, conversions, approved, payout, revenue) to add."""


def add(table: sql.Identifier, rows: Sequence[TallyRow]) -> tuple[sql.Composed, list[Any]]:
    """Add (conversions, approved, payout, revenue) to each row's tally."""
    statement = sql.SQL(
        "INSERT INTO {t} AS prior (offer_id, partner_id, period, conversions, approved, payout, revenue) "
        "VALUES {values} ON CONFLICT (offer_id, partner_id, period) DO UPDATE SET "
        "conversions = prior.conversions + EXCLUDED.conversions, "
        "approved = prior.approved + EXCLUDED.approved, "
        "payout = prior.payout + EXCLUDED.payout, revenue = prior.revenue + EXCLUDED.revenue"
    ).format(t=table, values=_values(len(rows), 7))
    return statement, [value for row in rows for value in row]


def add_ip(table: sql.Identifier) -> sql.Composed:
    """Add %(conversions)s to the conversions from %(ip)s on %(offer_id)s on %(day)s."""
    return sql.SQL(
        "INSERT INTO {} AS prior (offer_id, ip, day, conversions) "
        "VALUES (%(offer_id)s, %(ip)s, %(day)s, %(conversions)s) ON CONFLICT (offer_id, ip, day) "
        "DO UPDATE SET conversions = prior.conversions + EXCLUDED.conversions").format(table)


def add_impression(table: sql.Identifier) -> sql.Composed:
    """Count one impression of a partner on an offer."""
    return sql.SQL(
        "INSERT INTO {} AS prior (offer_id, partner_id, impressions) "
        "VALUES (%(offer_id)s, %(partner_id)s, 1) "
        "ON CONFLICT (offer_id, partner_id) DO UPDATE SET impressions = prior.impressions + 1"
       ).format(table)


def replace_coupons(table: sql.Identifier) -> sql.Composed:
    """Forget the codes a partner held on an offer (its new ones are inserted after)."""
    return sql.SQL(
        "DELETE FROM {} WHERE offer_id = %(offer_id)s AND partner_id = %(partner_id)s").format(table)
