"""The routing view's tables and statements on PostgreSQL.

Partners events arrive in order per key only, so a relationship may be seen before
its offer, and a status change before the offer it changes. Every write is therefore
an upsert of one group of columns stamped with the event's ``occurred_at``, applied
only if it is not older than what the row already has (last writer wins per group):
any arrival order and any redelivery leave the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql

VIEW_DDL: Sequence[str] = (
    """CREATE TABLE IF NOT EXISTS {schema}.offers (
        offer_id text PRIMARY KEY,
        destination_url text,
        fallback_url text,
        visibility text,
        details_at timestamptz,
        status text,
        status_at timestamptz
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.partners (
        partner_id text PRIMARY KEY,
        status text NOT NULL,
        status_at timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.relationships (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        approved boolean NOT NULL,
        set_at timestamptz NOT NULL,
        PRIMARY KEY (offer_id, partner_id)
    )""",
    # Added with conversion security and the coupon register (older schemas gain them).
    "ALTER TABLE {schema}.offers ADD COLUMN IF NOT EXISTS security jsonb",
    "ALTER TABLE {schema}.relationships ADD COLUMN IF NOT EXISTS coupon_codes text[] NOT NULL DEFAULT '{{}}'",
    # Hard click caps (issue 8), counted at the edge.
    "ALTER TABLE {schema}.offers ADD COLUMN IF NOT EXISTS click_caps jsonb",
    "ALTER TABLE {schema}.relationships ADD COLUMN IF NOT EXISTS click_caps jsonb",
)


def newest_wins(
    table: sql.Identifier,
    keys: dict[str, Any],
    values: dict[str, Any],
    stamp: tuple[str, datetime],
) -> tuple[sql.Composed, tuple[Any, ...]]:
    """An upsert of ``values`` (stamped ``stamp``) into the row at ``keys`` that leaves
    the row alone when it already holds a newer stamp for these columns."""
    stamp_column, occurred_at = stamp
    columns = [*keys, *values, stamp_column]
    updated = [*values, stamp_column]
    statement = sql.SQL(
        "INSERT INTO {table} AS prior ({columns}) VALUES ({placeholders}) "
        "ON CONFLICT ({keys}) DO UPDATE SET {assignments} "
        "WHERE prior.{stamp} IS NULL OR prior.{stamp} <= EXCLUDED.{stamp}"
    ).format(
        table=table,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        placeholders=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
        keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
        assignments=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column)) for column in updated
        ),
        stamp=sql.Identifier(stamp_column),
    )
    return statement, (*keys.values(), *values.values(), occurred_at)


def select_all(table: sql.Identifier) -> sql.Composed:
    """Every row of a view table: the memory view is rebuilt from them at start."""
    return sql.SQL("SELECT * FROM {}").format(table)
