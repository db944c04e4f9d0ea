"""The ledger's tables and SQL. Money is ``numeric`` here and is summed by PostgreSQL.

``recorded_from`` is the log position (``topic#partition@offset``) the decision
was read at. The handler that builds a write does not see the position, but the
store records it in its inbox, in the same transaction and before the view
writes run, so the insert reads it from there by event_id.

A review moves a commission (``update_entry``: its amount and bucket, keeping the
ones the decision opened it with in ``decided_*``) or, once it is settled, adds a
row to ``corrections``, keyed by the review's event_id.
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
        bucket text NOT NULL CHECK (bucket IN ('pending', 'accrued', 'payable', 'paid', 'void')),
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
    "ALTER TABLE {schema}.ledger_entries ADD COLUMN IF NOT EXISTS decided_amount numeric",
    "ALTER TABLE {schema}.ledger_entries ADD COLUMN IF NOT EXISTS decided_bucket text",
    # A ledger created before reviews existed checks the buckets without 'void'.
    """DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = '{schema}.ledger_entries'::regclass
                     AND conname = 'ledger_entries_bucket_check'
                     AND pg_get_constraintdef(oid) NOT LIKE '%void%') THEN
            ALTER TABLE {schema}.ledger_entries DROP CONSTRAINT ledger_entries_bucket_check;
            ALTER TABLE {schema}.ledger_entries ADD CONSTRAINT ledger_entries_bucket_check
                CHECK (bucket IN ('pending', 'accrued', 'payable', 'paid', 'void'));
        END IF;
    END $$""",
    """CREATE TABLE IF NOT EXISTS {schema}.corrections (
        event_id uuid PRIMARY KEY,
        conversion_id text NOT NULL,
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        amount numeric NOT NULL,
        currency text NOT NULL,
        bucket text NOT NULL CHECK (bucket IN ('accrued', 'payable', 'paid')),
        happened_at timestamptz NOT NULL,
        recorded_from text NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS corrections_by_conversion ON {schema}.corrections (conversion_id)",
    "CREATE INDEX IF NOT EXISTS corrections_by_partner ON {schema}.corrections (partner_id)",
]

ENTRY_COLUMNS = sql.SQL(
    "conversion_id, partner_id, offer_id, amount, currency, bucket, converted_at, event_id, recorded_from, "
    "decided_amount, decided_bucket"
)
CORRECTION_COLUMNS = sql.SQL(
    "event_id, conversion_id, partner_id, offer_id, amount, currency, bucket, happened_at, recorded_from"
)


def insert_entry(ledger: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    """Record a commission once per conversion_id; a later decision for it changes nothing."""
    return sql.SQL(
        "INSERT INTO {} (conversion_id, partner_id, offer_id, amount, currency, bucket, converted_at, "
        "event_id, recorded_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "(SELECT position FROM {} WHERE event_id = %s)) ON CONFLICT (conversion_id) DO NOTHING"
    ).format(ledger, inbox)


def insert_entries(ledger: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    """``insert_entry`` for many commissions: a JSON array of objects with its columns but
    ``recorded_from``, which each row reads from the inbox by its event_id."""
    return sql.SQL(
        "INSERT INTO {} (conversion_id, partner_id, offer_id, amount, currency, bucket, converted_at, "
        "event_id, recorded_from) SELECT r.*, (SELECT position FROM {} AS i WHERE i.event_id = r.event_id) "
        "FROM json_to_recordset(%s::json) AS r(conversion_id text, partner_id text, offer_id text, "
        "amount numeric, currency text, bucket text, converted_at timestamptz, event_id uuid) "
        "ON CONFLICT (conversion_id) DO NOTHING"
    ).format(ledger, inbox)


def update_entries(ledger: sql.Identifier) -> sql.Composed:
    """``update_entry`` for many commissions, one row each: a JSON array of objects with
    conversion_id, amount, bucket, decided_amount, decided_bucket."""
    return sql.SQL(
        "UPDATE {} AS entry SET amount = r.amount, bucket = r.bucket, decided_amount = r.decided_amount, "
        "decided_bucket = r.decided_bucket FROM json_to_recordset(%s::json) AS r(conversion_id text, "
        "amount numeric, bucket text, decided_amount numeric, decided_bucket text) "
        "WHERE entry.conversion_id = r.conversion_id"
    ).format(ledger)


def insert_rejection(rejections: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (conversion_id, partner_id, offer_id, reason, message, converted_at, "
        "event_id, recorded_from) VALUES (%s, %s, %s, %s, %s, %s, %s, "
        "(SELECT position FROM {} WHERE event_id = %s)) ON CONFLICT (conversion_id) DO NOTHING"
    ).format(rejections, inbox)


def update_entry(ledger: sql.Identifier) -> sql.Composed:
    """A reviewed commission's amount and bucket, and what its decision opened it with."""
    return sql.SQL(
        "UPDATE {} SET amount = %s, bucket = %s, decided_amount = %s, decided_bucket = %s "
        "WHERE conversion_id = %s"
    ).format(ledger)


def insert_correction(corrections: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} ({}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "(SELECT position FROM {} WHERE event_id = %s)) ON CONFLICT (event_id) DO NOTHING"
    ).format(corrections, CORRECTION_COLUMNS, inbox)


def select_corrections(corrections: sql.Identifier) -> sql.Composed:
    """A conversion's corrections (their order does not matter: they are summed)."""
    return sql.SQL("SELECT {} FROM {} WHERE conversion_id = %s ORDER BY happened_at, event_id").format(
        CORRECTION_COLUMNS, corrections)


def select_entry(ledger: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {} WHERE conversion_id = %s").format(ENTRY_COLUMNS, ledger)


def select_entries(ledger: sql.Identifier) -> sql.Composed:
    """The entries of the conversion_ids in a text array (those recorded)."""
    return sql.SQL("SELECT {} FROM {} WHERE conversion_id = ANY(%s)").format(ENTRY_COLUMNS, ledger)


def select_bucket_totals(ledger: sql.Identifier, corrections: sql.Identifier) -> sql.Composed:
    """A partner's sums per currency and bucket, of its commissions and corrections
    (the fold leaves 'void' out); parameters: the partner_id, twice."""
    return sql.SQL(
        "SELECT currency, bucket, sum(amount) AS total FROM ("
        "SELECT currency, bucket, amount FROM {} WHERE partner_id = %s "
        "UNION ALL SELECT currency, bucket, amount FROM {} WHERE partner_id = %s"
        ") AS lines GROUP BY currency, bucket ORDER BY currency, bucket"
    ).format(ledger, corrections)


def select_page(ledger: sql.Identifier, *, after: bool) -> sql.Composed:
    """Up to %(limit)s entries of a partner in (converted_at, conversion_id) order,
    strictly after the page key when ``after``."""
    keyset = sql.SQL(" AND (converted_at, conversion_id) > (%(after_at)s, %(after_id)s)" if after else "")
    return sql.SQL(
        "SELECT {} FROM {} WHERE partner_id = %(partner_id)s{} "
        "ORDER BY converted_at, conversion_id LIMIT %(limit)s"
    ).format(ENTRY_COLUMNS, ledger, keyset)


def select_rejection(rejections: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT 1 FROM {} WHERE conversion_id = %s").format(rejections)


def select_rejections(rejections: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT conversion_id, partner_id, offer_id, reason, message, converted_at, event_id "
        "FROM {} WHERE partner_id = %s ORDER BY converted_at, conversion_id"
    ).format(rejections)
