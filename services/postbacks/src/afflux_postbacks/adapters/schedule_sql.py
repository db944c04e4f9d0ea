"""The schedule and the delivery log: tables and SQL.

``deliveries`` is both the schedule (rows ``owed`` or ``pending`` with their
``next_attempt_at``) and the log's summary (one row per delivery, whatever became
of it); ``attempts`` keeps every call. A delivery is ``owed`` from the moment its
decision is applied (same transaction as the consumer's position) until its URL is
filled in, then ``pending`` until it ends ``delivered``, ``failed`` or ``skipped``
(the relationship has no postback URL).

A worker claims due rows by moving their ``next_attempt_at`` a lease ahead; the
``UPDATE`` re-checks that they are still due, so two workers never claim one row,
and a worker that dies leaves its rows to be claimed again when the lease ends.
"""

from __future__ import annotations

from psycopg import sql

VIEW_DDL = [
    """CREATE TABLE IF NOT EXISTS {schema}.relationships (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        postback_url text,
        set_at timestamptz NOT NULL,
        PRIMARY KEY (offer_id, partner_id)
    )""",
    """ALTER TABLE {schema}.relationships
        ADD COLUMN IF NOT EXISTS postback_method text NOT NULL DEFAULT 'get'""",
    """ALTER TABLE {schema}.relationships
        ADD COLUMN IF NOT EXISTS postback_status_changes boolean NOT NULL DEFAULT false""",
    # The partner's global postback (PartnerCreated/PartnerUpdated.postback; url NULL: none).
    """CREATE TABLE IF NOT EXISTS {schema}.partner_postbacks (
        partner_id text PRIMARY KEY,
        url text,
        method text NOT NULL,
        status_changes boolean NOT NULL,
        set_at timestamptz NOT NULL
    )""",
    # Per offer, the names of its events that do not fire partner postbacks.
    """CREATE TABLE IF NOT EXISTS {schema}.offers (
        offer_id text PRIMARY KEY,
        silent_events text[] NOT NULL,
        set_at timestamptz NOT NULL
    )""",
    # Only clicks that carry a sub: the rest would be rows nobody ever reads.
    """CREATE TABLE IF NOT EXISTS {schema}.click_subs (
        transaction_id text PRIMARY KEY,
        sub1 text, sub2 text, sub3 text, sub4 text, sub5 text
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.deliveries (
        seq bigserial UNIQUE,
        delivery_id text PRIMARY KEY,
        conversion_id text NOT NULL,
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        facts jsonb NOT NULL,
        correlation_id text,
        status text NOT NULL CHECK (status IN ('owed', 'pending', 'delivered', 'failed', 'skipped')),
        template text,
        url text,
        url_masked text,
        host text,
        attempts integer NOT NULL DEFAULT 0,
        owed_at timestamptz NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        last_status_code integer,
        last_error text,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS deliveries_due ON {schema}.deliveries (next_attempt_at)
        WHERE status IN ('owed', 'pending')""",
    """CREATE INDEX IF NOT EXISTS deliveries_due_by_host ON {schema}.deliveries (host, next_attempt_at)
        WHERE status = 'pending'""",
    "CREATE INDEX IF NOT EXISTS deliveries_by_conversion ON {schema}.deliveries (conversion_id, seq)",
    "CREATE INDEX IF NOT EXISTS deliveries_by_partner ON {schema}.deliveries (partner_id, seq)",
    # Hosts whose postbacks failed until given up: none of theirs is called until resumed.
    """CREATE TABLE IF NOT EXISTS {schema}.paused_hosts (
        host text PRIMARY KEY,
        paused_at timestamptz NOT NULL,
        reason text NOT NULL
    )""",
    "ALTER TABLE {schema}.deliveries ADD COLUMN IF NOT EXISTS method text NOT NULL DEFAULT 'get'",
    "ALTER TABLE {schema}.deliveries ADD COLUMN IF NOT EXISTS body text",
    """CREATE TABLE IF NOT EXISTS {schema}.attempts (
        delivery_id text NOT NULL,
        attempt integer NOT NULL,
        url text NOT NULL,
        status_code integer,
        latency_ms numeric NOT NULL,
        error text,
        attempted_at timestamptz NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    )""",
]

DELIVERY_COLUMNS = sql.SQL(
    "seq, delivery_id, conversion_id, partner_id, offer_id, facts, correlation_id, status, template, url, "
    "url_masked, host, method, body, attempts, owed_at, next_attempt_at, last_status_code, last_error, "
    "updated_at"
)


def upsert_relationship(table: sql.Identifier) -> sql.Composed:
    """The newest RelationshipSet of an (offer, partner) wins, whatever order they come in."""
    return sql.SQL(
        "INSERT INTO {t} (offer_id, partner_id, postback_url, postback_method, postback_status_changes, "
        "set_at) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (offer_id, partner_id) DO UPDATE SET postback_url = EXCLUDED.postback_url, "
        "postback_method = EXCLUDED.postback_method, "
        "postback_status_changes = EXCLUDED.postback_status_changes, "
        "set_at = EXCLUDED.set_at WHERE {t}.set_at <= EXCLUDED.set_at"
    ).format(t=table)


def upsert_partner_postback(table: sql.Identifier) -> sql.Composed:
    """The partner's newest state wins (its global postback, or none)."""
    return sql.SQL(
        "INSERT INTO {t} (partner_id, url, method, status_changes, set_at) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (partner_id) DO UPDATE SET url = EXCLUDED.url, method = EXCLUDED.method, "
        "status_changes = EXCLUDED.status_changes, set_at = EXCLUDED.set_at "
        "WHERE {t}.set_at <= EXCLUDED.set_at"
    ).format(t=table)


def upsert_offer(table: sql.Identifier) -> sql.Composed:
    """The offer's newest state wins: which of its events stay silent."""
    return sql.SQL(
        "INSERT INTO {t} (offer_id, silent_events, set_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (offer_id) DO UPDATE SET silent_events = EXCLUDED.silent_events, "
        "set_at = EXCLUDED.set_at WHERE {t}.set_at <= EXCLUDED.set_at"
    ).format(t=table)


def insert_click_subs(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (transaction_id, sub1, sub2, sub3, sub4, sub5) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (transaction_id) DO NOTHING"
    ).format(table)


def insert_owed(table: sql.Identifier) -> sql.Composed:
    """A delivery owed from now; the same decision applied again changes nothing."""
    return sql.SQL(
        "INSERT INTO {} (delivery_id, conversion_id, partner_id, offer_id, facts, correlation_id, status, "
        "owed_at, next_attempt_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'owed', now(), now(), now()) "
        "ON CONFLICT (delivery_id) DO NOTHING"
    ).format(table)


def insert_status_change(table: sql.Identifier) -> sql.Composed:
    """A status change owed from now, with the facts of its conversion's attributed
    delivery (transaction, event: a status change does not carry them) under its own."""
    return sql.SQL(
        "INSERT INTO {t} (delivery_id, conversion_id, partner_id, offer_id, facts, correlation_id, status, "
        "owed_at, next_attempt_at, updated_at) SELECT %(delivery_id)s, %(conversion_id)s, %(partner_id)s, "
        "%(offer_id)s, COALESCE((SELECT facts FROM {t} WHERE delivery_id = %(attributed_id)s), "
        "'{{}}'::jsonb) || %(facts)s, %(correlation_id)s, 'owed', now(), now(), now() "
        "ON CONFLICT (delivery_id) DO NOTHING"
    ).format(t=table)


def claim_owed(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {t} SET next_attempt_at = now() + make_interval(secs => %(lease)s) WHERE delivery_id IN ("
        "SELECT delivery_id FROM {t} WHERE status = 'owed' AND next_attempt_at <= now() "
        "ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING {c}"
    ).format(t=table, c=DELIVERY_COLUMNS)


def select_unfinished(table: sql.Identifier) -> sql.Composed:
    """The deliveries of these conversions that have not ended (owed or pending)."""
    return sql.SQL(
        "SELECT conversion_id, seq FROM {} WHERE conversion_id = ANY(%s) AND status IN ('owed', 'pending')"
    ).format(table)


def claim_due(table: sql.Identifier, paused: sql.Identifier) -> sql.Composed:
    """Claim up to ``per_host`` due deliveries of each host (hosts in ``busy`` and paused
    ones left out), at most ``limit`` in all, in one statement: each host's earliest
    through its index. The ``UPDATE`` re-checks that a row is still due, so of two
    instances claiming at once only one gets it."""
    return sql.SQL(
        "WITH hosts AS (SELECT DISTINCT host FROM {t} WHERE status = 'pending' AND next_attempt_at <= now() "
        "AND NOT (host = ANY(%(busy)s)) AND host NOT IN (SELECT host FROM {p})), "
        "due AS (SELECT d.delivery_id FROM hosts h CROSS JOIN LATERAL (SELECT delivery_id, next_attempt_at "
        "FROM {t} WHERE status = 'pending' AND host = h.host AND next_attempt_at <= now() "
        "ORDER BY next_attempt_at LIMIT %(per_host)s) d ORDER BY d.next_attempt_at LIMIT %(limit)s) "
        "UPDATE {t} SET next_attempt_at = now() + make_interval(secs => %(lease)s) "
        "WHERE delivery_id IN (SELECT delivery_id FROM due) AND status = 'pending' "
        "AND next_attempt_at <= now() RETURNING {c}"
    ).format(t=table, p=paused, c=DELIVERY_COLUMNS)


def pause_host(paused: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (host, paused_at, reason) VALUES (%(host)s, now(), %(reason)s) ON CONFLICT DO NOTHING"
    ).format(paused)


def count_paused(paused: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT count(*) AS paused FROM {}").format(paused)


def select_paused(paused: sql.Identifier, deliveries: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT p.host, p.paused_at, p.reason, (SELECT count(*) FROM {d} d WHERE d.host = p.host "
        "AND d.status = 'pending') AS waiting FROM {p} p ORDER BY p.paused_at, p.host"
    ).format(p=paused, d=deliveries)


def resume_host(paused: sql.Identifier) -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE host = %(host)s RETURNING host").format(paused)


def due_now(deliveries: sql.Identifier) -> sql.Composed:
    """A resumed host's waiting deliveries, due at once."""
    return sql.SQL(
        "UPDATE {} SET next_attempt_at = now(), updated_at = now() "
        "WHERE host = %(host)s AND status = 'pending'"
    ).format(deliveries)


def resolve(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {} SET status = 'pending', template = %(template)s, url = %(url)s, "
        "url_masked = %(url_masked)s, host = %(host)s, method = %(method)s, body = %(body)s, "
        "next_attempt_at = now(), updated_at = now() WHERE delivery_id = %(delivery_id)s AND status = 'owed'"
    ).format(table)


def defer(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {} SET next_attempt_at = now() + make_interval(secs => %(delay)s), updated_at = now() "
        "WHERE delivery_id = %(delivery_id)s AND status IN ('owed', 'pending')"
    ).format(table)


def skip(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {} SET status = 'skipped', last_error = %(reason)s, updated_at = now() "
        "WHERE delivery_id = %(delivery_id)s AND status = 'owed'"
    ).format(table)


def insert_attempt(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (delivery_id, attempt, url, status_code, latency_ms, error, attempted_at) "
        "VALUES (%(delivery_id)s, %(attempt)s, %(url)s, %(status_code)s, %(latency_ms)s, %(error)s, now()) "
        "ON CONFLICT DO NOTHING"
    ).format(table)


def insert_attempts(table: sql.Identifier) -> sql.Composed:
    """Many attempts in one statement: each parameter is an array, one element per attempt."""
    return sql.SQL(
        "INSERT INTO {} (delivery_id, attempt, url, status_code, latency_ms, error, attempted_at) "
        "SELECT d, a, u, s, l, e, now() FROM unnest(%(delivery_id)s::text[], %(attempt)s::int[], "
        "%(url)s::text[], %(status_code)s::int[], %(latency_ms)s::numeric[], %(error)s::text[]) "
        "AS x(d, a, u, s, l, e) ON CONFLICT DO NOTHING"
    ).format(table)


def after_attempts(table: sql.Identifier) -> sql.Composed:
    """Many deliveries' schedule after their calls in one statement (arrays, as above)."""
    return sql.SQL(
        "UPDATE {} AS d SET status = x.status, attempts = x.attempt, next_attempt_at = x.next_at, "
        "last_status_code = x.code, last_error = x.error, updated_at = now() "
        "FROM unnest(%(delivery_id)s::text[], %(status)s::text[], %(attempt)s::int[], "
        "%(next_attempt_at)s::timestamptz[], %(status_code)s::int[], %(error)s::text[]) "
        "AS x(delivery_id, status, attempt, next_at, code, error) "
        "WHERE d.delivery_id = x.delivery_id AND d.status = 'pending'"
    ).format(table)


def after_attempt(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {} SET status = %(status)s, attempts = %(attempt)s, next_attempt_at = %(next_attempt_at)s, "
        "last_status_code = %(status_code)s, last_error = %(error)s, updated_at = now() "
        "WHERE delivery_id = %(delivery_id)s AND status = 'pending'"
    ).format(table)


def select_relationships(table: sql.Identifier) -> sql.Composed:
    """The relationships among offers x partners (the caller keeps the pairs it asked for)."""
    return sql.SQL(
        "SELECT offer_id, partner_id, postback_url, postback_method, postback_status_changes FROM {} "
        "WHERE offer_id = ANY(%s) AND partner_id = ANY(%s)"
    ).format(table)


def select_partner_postbacks(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT partner_id, url, method, status_changes FROM {} WHERE partner_id = ANY(%s)"
    ).format(table)


def select_offers(table: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT offer_id, silent_events FROM {} WHERE offer_id = ANY(%s)").format(table)


def select_click_subs(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT transaction_id, sub1, sub2, sub3, sub4, sub5 FROM {} WHERE transaction_id = ANY(%s)"
    ).format(table)


def select_page(table: sql.Identifier, *, partner: bool, status: bool, after: bool) -> sql.Composed:
    conditions = [sql.SQL("TRUE")]
    if partner:
        conditions.append(sql.SQL("partner_id = %(partner_id)s"))
    if status:
        conditions.append(sql.SQL("status = %(status)s"))
    if after:
        conditions.append(sql.SQL("seq > %(after)s"))
    return sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY seq LIMIT %(limit)s").format(
        DELIVERY_COLUMNS, table, sql.SQL(" AND ").join(conditions))


def select_attempts(table: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT delivery_id, attempt, url, status_code, latency_ms, error, attempted_at FROM {} "
        "WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt"
    ).format(table)
