"""The ledger's tables and SQL. Money is ``numeric`` here and is summed by PostgreSQL.

``recorded_from`` is the log position (``topic#partition@offset``) the decision
was read at. The handler that builds a write does not see the position, but the
store records it in its inbox, in the same transaction and before the view
writes run, so the insert reads it from there by event_id.
"""

from __future__ import annotations

from psycopg import sql

VIEW_DDL = [
    """CREATE TABLE IF NOT EXISTS {schema}.ledger_entries (
        conversion_id text PRIMARY KEY,
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        amount numeric NOT NULL,
        currency text NOT NULL,
        bucket text NOT NULL CHECK (bucket IN ('pending', 'accrued', 'payable', 'paid')),
        converted_at timestamptz NOT NULL,
        recorded_from text NOT NULL,
        event_id uuid NOT NULL
    )""",
    # Leads with partner_id (balances) and keeps the listing's order (keyset pagination).
    """CREATE INDEX IF NOT EXISTS ledger_entries_by_partner
        ON {schema}.ledger_entries (partner_id, converted_at, conversion_id)""",
    """CREATE TABLE IF NOT EXISTS {schema}.rejections (
        conversion_id text PRIMARY KEY,
        partner_id text,
        offer_id text,
        reason text NOT NULL,
        message text NOT NULL,
        converted_at timestamptz NOT NULL,
        recorded_from text NOT NULL,
        event_id uuid NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS rejections_by_partner ON {schema}.rejections (partner_id)",
]

ENTRY_COLUMNS = sql.SQL(
    "conversion_id, partner_id, offer_id, amount, currency, bucket, converted_at, event_id, recorded_from"
)


def insert_entry(ledger: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    """Record a commission once per conversion_id; a later decision for it changes nothing."""
    return sql.SQL(
        "INSERT INTO {} (conversion_id, partner_id, offer_id, amount, currency, bucket, converted_at, "
        "event_id, recorded_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "(SELECT position FROM {} WHERE event_id = %s)) ON CONFLICT (conversion_id) DO NOTHING"
    ).format(ledger, inbox)


def insert_rejection(rejections: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (conversion_id, partner_id, offer_id, reason, message, converted_at, "
        "event_id, recorded_from) VALUES (%s, %s, %s, %s, %s, %s, %s, "
        "(SELECT position FROM {} WHERE event_id = %s)) ON CONFLICT (conversion_id) DO NOTHING"
    ).format(rejections, inbox)


def select_entry(ledger: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {} WHERE conversion_id = %s").format(ENTRY_COLUMNS, ledger)


def select_bucket_totals(ledger: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT currency, bucket, sum(amount) AS total FROM {} WHERE partner_id = %s "
        "GROUP BY currency, bucket ORDER BY currency, bucket"
    ).format(ledger)


def select_page(ledger: sql.Identifier, *, after: bool) -> sql.Composed:
    """Up to %(limit)s entries of a partner in (converted_at, conversion_id) order,
    strictly after the page key when ``after``."""
    keyset = sql.SQL(" AND (converted_at, conversion_id) > (%(after_at)s, %(after_id)s)" if after else "")
    return sql.SQL(
        "SELECT {} FROM {} WHERE partner_id = %(partner_id)s{} "
        "ORDER BY converted_at, conversion_id LIMIT %(limit)s"
    ).format(ENTRY_COLUMNS, ledger, keyset)


def select_rejections(rejections: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT conversion_id, partner_id, offer_id, reason, message, converted_at, event_id "
        "FROM {} WHERE partner_id = %s ORDER BY converted_at, conversion_id"
    ).format(rejections)
