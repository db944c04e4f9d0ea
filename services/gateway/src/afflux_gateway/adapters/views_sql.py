"""The gateway's tables and SQL: what partners may see, kept from the log.

``counters`` is the reporting projection: one row per (partner, offer, UTC hour,
sub1..sub5) summing clicks, unique clicks, conversions, payout and revenue as the
events arrive, so a report reads a few rows per day whatever the traffic; ``totals``
holds the same sums per (partner, offer, hour) for reports that do not group by sub, and
``daily`` per (partner, offer, UTC day) for those that are also in UTC. An hour
(not a day) is the grain so that a report can be cut at midnight in any time zone
with a whole-hour offset. Absent subs are stored as ``''`` (a primary key column
cannot be NULL).

``clicks`` keeps each valid click's subs by transaction_id: a conversion is counted
in its click's subs, and a click re-published under another event_id is counted
once (the upsert into ``counters`` runs only when the click row is new).
"""

from __future__ import annotations

from functools import cache

from psycopg import sql

SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")

VIEW_DDL = [
    """CREATE TABLE IF NOT EXISTS {schema}.partners (
        partner_id text PRIMARY KEY,
        name text NOT NULL,
        email text NOT NULL,
        status text NOT NULL,
        currency text
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.api_keys (
        key_id text PRIMARY KEY,
        partner_id text NOT NULL,
        key_sha256 text NOT NULL UNIQUE,
        prefix text NOT NULL,
        issued_at timestamptz NOT NULL,
        revoked_at timestamptz
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.offers (
        offer_id text PRIMARY KEY,
        name text NOT NULL,
        status text NOT NULL,
        visibility text NOT NULL,
        currency text NOT NULL,
        payout jsonb NOT NULL,
        events jsonb NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.relationships (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        approved boolean NOT NULL,
        application boolean NOT NULL,
        payout jsonb,
        events jsonb NOT NULL,
        PRIMARY KEY (partner_id, offer_id)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.clicks (
        transaction_id text PRIMARY KEY,
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        sub1 text NOT NULL, sub2 text NOT NULL, sub3 text NOT NULL, sub4 text NOT NULL, sub5 text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.counters (
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        hour timestamptz NOT NULL,
        sub1 text NOT NULL, sub2 text NOT NULL, sub3 text NOT NULL, sub4 text NOT NULL, sub5 text NOT NULL,
        clicks bigint NOT NULL DEFAULT 0,
        unique_clicks bigint NOT NULL DEFAULT 0,
        conversions bigint NOT NULL DEFAULT 0,
        payout numeric NOT NULL DEFAULT 0,
        revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (partner_id, hour, offer_id, sub1, sub2, sub3, sub4, sub5)
    )""",
    "CREATE INDEX IF NOT EXISTS counters_by_hour ON {schema}.counters (hour)",
    # The same figures without the subs: what day, offer and partner reports read (a 90-day
    # report of one partner is 90 x 24 rows per offer, however many subs it uses).
    """CREATE TABLE IF NOT EXISTS {schema}.totals (
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        hour timestamptz NOT NULL,
        clicks bigint NOT NULL DEFAULT 0,
        unique_clicks bigint NOT NULL DEFAULT 0,
        conversions bigint NOT NULL DEFAULT 0,
        payout numeric NOT NULL DEFAULT 0,
        revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (partner_id, hour, offer_id)
    )""",
    "CREATE INDEX IF NOT EXISTS totals_by_hour ON {schema}.totals (hour)",
    # And per UTC day: what a report in UTC reads (90 rows per offer for 90 days).
    """CREATE TABLE IF NOT EXISTS {schema}.daily (
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        day date NOT NULL,
        clicks bigint NOT NULL DEFAULT 0,
        unique_clicks bigint NOT NULL DEFAULT 0,
        conversions bigint NOT NULL DEFAULT 0,
        payout numeric NOT NULL DEFAULT 0,
        revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (partner_id, day, offer_id)
    )""",
    "CREATE INDEX IF NOT EXISTS daily_by_day ON {schema}.daily (day)",
    """CREATE TABLE IF NOT EXISTS {schema}.conversions (
        conversion_id text PRIMARY KEY,
        partner_id text,
        offer_id text,
        transaction_id text,
        event text,
        status text NOT NULL,
        reason text,
        payout numeric,
        revenue numeric,
        currency text,
        converted_at timestamptz NOT NULL,
        hour timestamptz NOT NULL,
        sub1 text NOT NULL, sub2 text NOT NULL, sub3 text NOT NULL, sub4 text NOT NULL, sub5 text NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS conversions_by_partner
        ON {schema}.conversions (partner_id, converted_at, conversion_id)""",
    """CREATE TABLE IF NOT EXISTS {schema}.postbacks (
        delivery_id text PRIMARY KEY,
        partner_id text NOT NULL,
        conversion_id text NOT NULL,
        offer_id text NOT NULL,
        url text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL,
        status_code integer,
        error text,
        ended_at timestamptz NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS postbacks_by_partner ON {schema}.postbacks (partner_id, ended_at)",
    """CREATE TABLE IF NOT EXISTS {schema}.statements (
        statement_id text PRIMARY KEY,
        partner_id text NOT NULL,
        currency text NOT NULL,
        total numeric NOT NULL,
        status text NOT NULL,
        period_end timestamptz,
        issued_at timestamptz NOT NULL,
        paid_at timestamptz,
        reference text,
        lines jsonb NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX IF NOT EXISTS statements_by_partner ON {schema}.statements (partner_id, issued_at)",
]


@cache
def upsert_partner(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.partners (partner_id, name, email, status, currency) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (partner_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, "
        "status = EXCLUDED.status, currency = EXCLUDED.currency"
    ).format(sql.Identifier(schema))


@cache
def update_partner_status(schema: str) -> sql.Composed:
    return sql.SQL("UPDATE {}.partners SET status = %s WHERE partner_id = %s").format(sql.Identifier(schema))


@cache
def insert_key(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.api_keys (key_id, partner_id, key_sha256, prefix, issued_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    ).format(sql.Identifier(schema))


@cache
def revoke_key(schema: str) -> sql.Composed:
    return sql.SQL(
        "UPDATE {}.api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE key_id = %s AND partner_id = %s"
    ).format(sql.Identifier(schema))


@cache
def upsert_offer(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.offers (offer_id, name, status, visibility, currency, payout, events) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (offer_id) DO UPDATE SET name = EXCLUDED.name, "
        "status = EXCLUDED.status, visibility = EXCLUDED.visibility, currency = EXCLUDED.currency, "
        "payout = EXCLUDED.payout, events = EXCLUDED.events"
    ).format(sql.Identifier(schema))


@cache
def update_offer_status(schema: str) -> sql.Composed:
    return sql.SQL("UPDATE {}.offers SET status = %s WHERE offer_id = %s").format(sql.Identifier(schema))


@cache
def upsert_relationship(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.relationships (offer_id, partner_id, approved, application, payout, events) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (partner_id, offer_id) DO UPDATE SET "
        "approved = EXCLUDED.approved, application = EXCLUDED.application, payout = EXCLUDED.payout, "
        "events = EXCLUDED.events"
    ).format(sql.Identifier(schema))


_SUB_COLUMNS = sql.SQL(", ").join(sql.Identifier(sub) for sub in SUBS)
_COUNTER_KEY = sql.SQL("partner_id, hour, offer_id, sub1, sub2, sub3, sub4, sub5")
_ADD_COUNTS = sql.SQL(
    "clicks = c.clicks + EXCLUDED.clicks, unique_clicks = c.unique_clicks + EXCLUDED.unique_clicks, "
    "conversions = c.conversions + EXCLUDED.conversions, payout = c.payout + EXCLUDED.payout, "
    "revenue = c.revenue + EXCLUDED.revenue"
)


_TOTALS_KEY = sql.SQL("partner_id, hour, offer_id")
_DAILY_KEY = sql.SQL("partner_id, day, offer_id")
_UTC_DAY = sql.SQL("(({}) AT TIME ZONE 'UTC')::date")
_ADD_TOTALS = sql.SQL(
    "clicks = t.clicks + EXCLUDED.clicks, unique_clicks = t.unique_clicks + EXCLUDED.unique_clicks, "
    "conversions = t.conversions + EXCLUDED.conversions, payout = t.payout + EXCLUDED.payout, "
    "revenue = t.revenue + EXCLUDED.revenue"
)
_ADD_DAILY = sql.SQL(
    "clicks = d.clicks + EXCLUDED.clicks, unique_clicks = d.unique_clicks + EXCLUDED.unique_clicks, "
    "conversions = d.conversions + EXCLUDED.conversions, payout = d.payout + EXCLUDED.payout, "
    "revenue = d.revenue + EXCLUDED.revenue"
)


@cache
def count_click(schema: str) -> sql.Composed:
    """Keep a new click's subs and count it in ``counters``, ``totals`` and ``daily``, in one statement:
    nothing is counted when the transaction_id is known (the same click re-published).
    Named parameters: transaction_id, partner_id, offer_id, sub1..sub5, hour, unique (0|1)."""
    s = sql.Identifier(schema)
    return sql.SQL(
        "WITH fresh AS (INSERT INTO {s}.clicks (transaction_id, partner_id, offer_id, {subs}) "
        "VALUES (%(transaction_id)s, %(partner_id)s, %(offer_id)s, %(sub1)s, %(sub2)s, %(sub3)s, %(sub4)s, "
        "%(sub5)s) ON CONFLICT DO NOTHING RETURNING partner_id, offer_id, {subs}), "
        "by_sub AS (INSERT INTO {s}.counters AS c ({key}, clicks, unique_clicks) "
        "SELECT partner_id, %(hour)s, offer_id, {subs}, 1, %(unique)s FROM fresh "
        "ON CONFLICT ({key}) DO UPDATE SET {add}), "
        "by_hour AS (INSERT INTO {s}.totals AS t ({totals_key}, clicks, unique_clicks) "
        "SELECT partner_id, %(hour)s, offer_id, 1, %(unique)s FROM fresh "
        "ON CONFLICT ({totals_key}) DO UPDATE SET {add_totals}) "
        "INSERT INTO {s}.daily AS d ({daily_key}, clicks, unique_clicks) "
        "SELECT partner_id, {day}, offer_id, 1, %(unique)s FROM fresh "
        "ON CONFLICT ({daily_key}) DO UPDATE SET {add_daily}"
    ).format(
        s=s,
        subs=_SUB_COLUMNS,
        key=_COUNTER_KEY,
        add=_ADD_COUNTS,
        totals_key=_TOTALS_KEY,
        add_totals=_ADD_TOTALS,
        daily_key=_DAILY_KEY,
        add_daily=_ADD_DAILY,
        day=_UTC_DAY.format(sql.SQL("%(hour)s::timestamptz")),
    )


@cache
def count_clicks(schema: str) -> sql.Composed:
    """``count_click`` for a run of clicks at once, given as one JSON array of objects with
    the same fields (``unique`` as ``uniq``; JSON is far cheaper to send than one array per
    field): a click already known, or twice in the run, counts once; counts are summed
    per row before the upserts."""
    s = sql.Identifier(schema)
    return sql.SQL(
        "WITH input AS (SELECT DISTINCT ON (transaction_id) * FROM jsonb_to_recordset(%s::jsonb) "
        "AS i(transaction_id text, partner_id text, offer_id text, sub1 text, sub2 text, sub3 text, "
        "sub4 text, sub5 text, hour timestamptz, uniq int) ORDER BY transaction_id), "
        "fresh AS (INSERT INTO {s}.clicks (transaction_id, partner_id, offer_id, {subs}) "
        "SELECT transaction_id, partner_id, offer_id, {subs} FROM input ON CONFLICT DO NOTHING "
        "RETURNING transaction_id), "
        "counted AS (SELECT input.* FROM input JOIN fresh USING (transaction_id)), "
        "by_sub AS (INSERT INTO {s}.counters AS c ({key}, clicks, unique_clicks) "
        "SELECT partner_id, hour, offer_id, {subs}, count(*), sum(uniq) FROM counted "
        "GROUP BY partner_id, hour, offer_id, {subs} ON CONFLICT ({key}) DO UPDATE SET {add}), "
        "by_hour AS (INSERT INTO {s}.totals AS t ({totals_key}, clicks, unique_clicks) "
        "SELECT partner_id, hour, offer_id, count(*), sum(uniq) FROM counted GROUP BY 1, 2, 3 "
        "ON CONFLICT ({totals_key}) DO UPDATE SET {add_totals}) "
        "INSERT INTO {s}.daily AS d ({daily_key}, clicks, unique_clicks) "
        "SELECT partner_id, {day}, offer_id, count(*), sum(uniq) FROM counted GROUP BY 1, 2, 3 "
        "ON CONFLICT ({daily_key}) DO UPDATE SET {add_daily}"
    ).format(
        s=s,
        subs=_SUB_COLUMNS,
        key=_COUNTER_KEY,
        add=_ADD_COUNTS,
        totals_key=_TOTALS_KEY,
        add_totals=_ADD_TOTALS,
        daily_key=_DAILY_KEY,
        add_daily=_ADD_DAILY,
        day=_UTC_DAY.format(sql.SQL("hour")),
    )


def claim_inbox(inbox: sql.Identifier) -> sql.Composed:
    """Record a run's event_ids as applied at once; returns those that were not yet."""
    return sql.SQL(
        "INSERT INTO {} (event_id, position) SELECT * FROM unnest(%s::uuid[], %s::text[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    ).format(inbox)


@cache
def add_to_counter(schema: str) -> sql.Composed:
    """Add (conversions, payout, revenue) to one row of ``counters``, ``totals`` and ``daily``. Named
    parameters: partner_id, hour, offer_id, sub1..sub5, conversions, payout, revenue."""
    s = sql.Identifier(schema)
    return sql.SQL(
        "WITH by_sub AS (INSERT INTO {s}.counters AS c ({key}, conversions, payout, revenue) "
        "VALUES (%(partner_id)s, %(hour)s, %(offer_id)s, %(sub1)s, %(sub2)s, %(sub3)s, %(sub4)s, %(sub5)s, "
        "%(conversions)s, %(payout)s, %(revenue)s) ON CONFLICT ({key}) DO UPDATE SET {add}), "
        "by_hour AS (INSERT INTO {s}.totals AS t ({totals_key}, conversions, payout, revenue) "
        "VALUES (%(partner_id)s, %(hour)s, %(offer_id)s, %(conversions)s, %(payout)s, %(revenue)s) "
        "ON CONFLICT ({totals_key}) DO UPDATE SET {add_totals}) "
        "INSERT INTO {s}.daily AS d ({daily_key}, conversions, payout, revenue) "
        "VALUES (%(partner_id)s, {day}, %(offer_id)s, %(conversions)s, %(payout)s, %(revenue)s) "
        "ON CONFLICT ({daily_key}) DO UPDATE SET {add_daily}"
    ).format(
        s=s,
        key=_COUNTER_KEY,
        add=_ADD_COUNTS,
        totals_key=_TOTALS_KEY,
        add_totals=_ADD_TOTALS,
        daily_key=_DAILY_KEY,
        add_daily=_ADD_DAILY,
        day=_UTC_DAY.format(sql.SQL("%(hour)s::timestamptz")),
    )


def counter_params(partner_id: str, hour: object, offer_id: str, subs: tuple[str, ...]) -> dict[str, object]:
    return {
        "partner_id": partner_id,
        "hour": hour,
        "offer_id": offer_id,
        **dict(zip(SUBS, subs, strict=True)),
    }


@cache
def select_click(schema: str) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}.clicks WHERE transaction_id = %s").format(
        _SUB_COLUMNS, sql.Identifier(schema)
    )


@cache
def insert_conversion(schema: str) -> sql.Composed:
    """Parameters: conversion_id, partner_id, offer_id, transaction_id, event, status,
    reason, payout, revenue, currency, converted_at, hour, sub1..sub5."""
    return sql.SQL(
        "INSERT INTO {}.conversions (conversion_id, partner_id, offer_id, transaction_id, event, status, "
        "reason, payout, revenue, currency, converted_at, hour, {}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (conversion_id) DO NOTHING RETURNING conversion_id"
    ).format(sql.Identifier(schema), _SUB_COLUMNS)


@cache
def select_conversion(schema: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM {}.conversions WHERE conversion_id = %s").format(sql.Identifier(schema))


@cache
def update_conversion(schema: str) -> sql.Composed:
    return sql.SQL(
        "UPDATE {}.conversions SET status = %s, reason = %s, payout = %s WHERE conversion_id = %s"
    ).format(sql.Identifier(schema))


@cache
def upsert_postback(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.postbacks (delivery_id, partner_id, conversion_id, offer_id, url, status, attempts, "
        "status_code, error, ended_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (delivery_id) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, "
        "status_code = EXCLUDED.status_code, error = EXCLUDED.error, ended_at = EXCLUDED.ended_at, "
        "url = EXCLUDED.url"
    ).format(sql.Identifier(schema))


ADJUSTMENTS_DDL = """CREATE TABLE IF NOT EXISTS {schema}.adjustments (
    adjustment_id text PRIMARY KEY,
    partner_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    reason text NOT NULL,
    adjusted_at timestamptz NOT NULL
)"""
VIEW_DDL.append(ADJUSTMENTS_DDL)


@cache
def insert_adjustment(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.adjustments (adjustment_id, partner_id, currency, amount, reason, adjusted_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    ).format(sql.Identifier(schema))


@cache
def upsert_statement(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {}.statements (statement_id, partner_id, currency, total, status, period_end, "
        "issued_at, lines) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (statement_id) DO NOTHING"
    ).format(sql.Identifier(schema))


@cache
def mark_statement_paid(schema: str) -> sql.Composed:
    return sql.SQL(
        "UPDATE {}.statements SET status = 'paid', paid_at = %s, reference = %s "
        "WHERE statement_id = %s AND partner_id = %s"
    ).format(sql.Identifier(schema))
