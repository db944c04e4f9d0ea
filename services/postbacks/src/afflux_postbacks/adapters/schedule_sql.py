"""The schedule, the delivery log and the routing views: tables and statements.

``deliveries`` is both the schedule (rows ``owed`` or ``pending`` with their
``next_attempt_at``) and the log's summary (one row per delivery, whatever became
of it); ``attempts`` keeps every call. A delivery is ``owed`` from the moment its
decision is applied (same transaction as the consumer's position) until its URL is
filled in, then ``pending`` until it ends ``delivered``, ``failed`` or ``skipped``.

A worker claims due rows by moving their ``next_attempt_at`` a lease ahead; the
``UPDATE`` re-checks that they are still due, so two workers never claim one row,
and a worker that dies leaves its rows to be claimed again when the lease ends.

Every statement is built one way: from a ``Table`` (its batch statements, or a
hand-written one over its ``recordset``: many rows as one JSON parameter), composed
once per schema into its text (``_text``). Writes that must not undo a later state
re-check the status they expect (``owed`` to resolve, ``pending`` after a call).
"""

from __future__ import annotations

from functools import cache

from psycopg import sql

from afflux_plumbing.tables import Table

RELATIONSHIPS = Table("relationships", (
    "offer_id text", "partner_id text", "postback_url text", "postback_method text NOT NULL DEFAULT 'get'",
    "postback_status_changes boolean NOT NULL DEFAULT false", "set_at timestamptz NOT NULL",
), key=("offer_id", "partner_id"))
PARTNER_POSTBACKS = Table("partner_postbacks", (
    "partner_id text", "url text", "method text NOT NULL", "status_changes boolean NOT NULL",
    "set_at timestamptz NOT NULL",
), key=("partner_id",))
"""The partner's global postback (PartnerCreated/PartnerUpdated.postback; url NULL: none)."""
OFFERS = Table("offers", ("offer_id text", "silent_events text[] NOT NULL", "set_at timestamptz NOT NULL"),
               key=("offer_id",))
"""Per offer, the names of its events that do not fire partner postbacks."""
DELIVERIES = Table("deliveries", (
    "seq bigserial UNIQUE", "delivery_id text", "conversion_id text NOT NULL", "partner_id text NOT NULL",
    "offer_id text NOT NULL", "facts jsonb NOT NULL", "correlation_id text",
    "status text NOT NULL CHECK (status IN ('owed', 'pending', 'delivered', 'failed', 'skipped'))",
    "template text", "url text", "url_masked text", "host text", "method text NOT NULL DEFAULT 'get'",
    "body text", "attempts integer NOT NULL DEFAULT 0", "owed_at timestamptz NOT NULL DEFAULT now()",
    "next_attempt_at timestamptz NOT NULL DEFAULT now()", "last_status_code integer", "last_error text",
    "updated_at timestamptz NOT NULL DEFAULT now()",
), key=("delivery_id",))
ATTEMPTS = Table("attempts", (
    "delivery_id text", "attempt integer", "url text NOT NULL", "status_code integer",
    "latency_ms numeric NOT NULL", "error text", "attempted_at timestamptz NOT NULL DEFAULT now()",
), key=("delivery_id", "attempt"))
PAUSED_HOSTS = Table("paused_hosts", ("host text", "paused_at timestamptz NOT NULL DEFAULT now()",
                                      "reason text NOT NULL"), key=("host",))
"""Hosts whose postbacks failed until given up: none of theirs is called until resumed."""

VIEW_DDL = [
    *RELATIONSHIPS.ddl(), *PARTNER_POSTBACKS.ddl(), *OFFERS.ddl(), *DELIVERIES.ddl(), *ATTEMPTS.ddl(),
    *PAUSED_HOSTS.ddl(),
    # Tables made before their times had defaults get them (ADD COLUMN skips existing columns).
    *(f"ALTER TABLE {{schema}}.{table} ALTER COLUMN {column} SET DEFAULT now()" for table, column in (
        ("deliveries", "owed_at"), ("deliveries", "next_attempt_at"), ("deliveries", "updated_at"),
        ("attempts", "attempted_at"), ("paused_hosts", "paused_at"))),
    # Owed ones by when they are due (claim_owed: the pending backlog is not in its way).
    """CREATE INDEX IF NOT EXISTS deliveries_owed ON {schema}.deliveries (next_attempt_at)
        WHERE status = 'owed'""",
    "DROP INDEX IF EXISTS {schema}.deliveries_due",
    """CREATE INDEX IF NOT EXISTS deliveries_due_by_host ON {schema}.deliveries (host, next_attempt_at)
        WHERE status = 'pending'""",
    "CREATE INDEX IF NOT EXISTS deliveries_by_conversion ON {schema}.deliveries (conversion_id, seq)",
    "CREATE INDEX IF NOT EXISTS deliveries_by_partner ON {schema}.deliveries (partner_id, seq)",
    # The subs come with the decision now (ConversionAttributed.sub1..sub5): the click view goes.
    "DROP TABLE IF EXISTS {schema}.click_subs",
]

OWED_COLUMNS = ("delivery_id", "conversion_id", "partner_id", "offer_id", "facts", "correlation_id", "status")
RESOLVED_COLUMNS = ("status", "template", "url", "url_masked", "host", "method", "body", "last_error")
AFTER_CALL_COLUMNS = ("status", "attempts", "next_attempt_at", "last_status_code", "last_error")
ATTEMPT_COLUMNS = ("delivery_id", "attempt", "url", "status_code", "latency_ms", "error")


def _text(statement: sql.Composed) -> sql.SQL:
    """``statement`` as its text: psycopg composes a ``Composed`` anew on every execute
    (60-75 µs for each of these, measured), a plain ``SQL`` it converts once and caches."""
    return sql.SQL(statement.as_string())


@cache
def upsert_newest(table: Table, schema: str) -> sql.SQL:
    """Many rows of a view of the partners log, under which a row's newest state (by
    ``set_at``) wins whatever order the states come in: every column not in the key
    from the newer row."""
    newer = "excluded.set_at >= {table}.set_at"
    return _text(table.upsert(schema, {
        name: f"CASE WHEN {newer} THEN excluded.{name} ELSE {{table}}.{name} END"
        for name in table.column_names if name not in table.key}))


@cache
def insert(table: Table, schema: str, columns: tuple[str, ...]) -> sql.SQL:
    """Many rows; one whose key exists already is left as it is (a redelivery)."""
    return _text(table.insert(schema, columns))


@cache
def select(table: Table, schema: str, by: tuple[str, ...] | None = None,
           columns: tuple[str, ...] | None = None, order_by: tuple[str, ...] = ()) -> sql.SQL:
    """The rows matching any of many keys."""
    return _text(table.select(schema, by=by, columns=columns, order_by=order_by))


def _returning(table: Table) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in table.column_names)


@cache
def claim_owed(schema: str) -> sql.SQL:
    """Up to ``limit`` owed deliveries that are due, moved a lease ahead."""
    return _text(sql.SQL(
        "UPDATE {t} SET next_attempt_at = now() + make_interval(secs => %(lease)s) WHERE delivery_id IN ("
        "SELECT delivery_id FROM {t} WHERE status = 'owed' AND next_attempt_at <= now() "
        "ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING {c}"
    ).format(t=DELIVERIES.ident(schema), c=_returning(DELIVERIES)))


@cache
def claim_due(schema: str) -> sql.SQL:
    """Claim up to ``per_host`` due deliveries of each host (hosts in ``busy`` and paused
    ones left out), at most ``limit`` in all, in one statement. The hosts with pending
    deliveries are found by skipping through the (host, next_attempt_at) index, one
    probe per host, and each host's earliest due through the same index, so finding them
    costs the hosts, not the backlog (a ``DISTINCT`` over the due rows grows with it: a
    backlog of a million after an outage would be read whole on every claim). The
    ``UPDATE`` re-checks that a row is still due, so of two instances claiming at once
    only one gets it."""
    return _text(sql.SQL(
        "WITH RECURSIVE hosts(host) AS ("
        "(SELECT host FROM {t} WHERE status = 'pending' ORDER BY host LIMIT 1) UNION ALL "
        "SELECT (SELECT d.host FROM {t} d WHERE d.status = 'pending' AND d.host > h.host ORDER BY d.host "
        "LIMIT 1) FROM hosts h WHERE h.host IS NOT NULL), "
        "due AS (SELECT d.delivery_id FROM hosts h CROSS JOIN LATERAL (SELECT delivery_id, next_attempt_at "
        "FROM {t} WHERE status = 'pending' AND host = h.host AND next_attempt_at <= now() "
        "ORDER BY next_attempt_at LIMIT %(per_host)s) d WHERE h.host IS NOT NULL "
        "AND NOT (h.host = ANY(%(busy)s)) AND h.host NOT IN (SELECT host FROM {p}) "
        "ORDER BY d.next_attempt_at LIMIT %(limit)s) "
        "UPDATE {t} SET next_attempt_at = now() + make_interval(secs => %(lease)s) "
        "WHERE delivery_id IN (SELECT delivery_id FROM due) AND status = 'pending' "
        "AND next_attempt_at <= now() RETURNING {c}"
    ).format(t=DELIVERIES.ident(schema), p=PAUSED_HOSTS.ident(schema), c=_returning(DELIVERIES)))


@cache
def resolve(schema: str) -> sql.SQL:
    """Owed deliveries get their request (``pending``, due now) or are ``skipped`` with the
    reason in ``last_error``; one claimed meanwhile by another worker and moved on is not
    touched."""
    return _update_while(schema, RESOLVED_COLUMNS, "owed", also="next_attempt_at = now()")


@cache
def defer(schema: str) -> sql.SQL:
    """Deliveries not ended, due again in ``%s`` seconds."""
    return _text(sql.SQL(
        "UPDATE {t} AS d SET next_attempt_at = now() + make_interval(secs => %s), updated_at = now() "
        "FROM {r} WHERE d.delivery_id = r.delivery_id AND d.status IN ('owed', 'pending')"
    ).format(t=DELIVERIES.ident(schema), r=DELIVERIES.recordset(("delivery_id",))))


@cache
def after_calls(schema: str) -> sql.SQL:
    """Deliveries' schedule after their calls; a delivery no longer pending (another
    worker's call ended it after a lost lease) is not touched."""
    return _update_while(schema, AFTER_CALL_COLUMNS, "pending")


def _update_while(schema: str, columns: tuple[str, ...], status: str, also: str = "") -> sql.SQL:
    """Deliveries get ``columns`` from many rows (matched on ``delivery_id``), each only
    while its status is still ``status``."""
    sets = sql.SQL(", ").join(sql.SQL("{} = r.{}").format(sql.Identifier(name), sql.Identifier(name))
                              for name in columns)
    return _text(sql.SQL(
        "UPDATE {t} AS d SET {sets}, {also}updated_at = now() FROM {r} "
        "WHERE d.delivery_id = r.delivery_id AND d.status = {status}"
    ).format(t=DELIVERIES.ident(schema), sets=sets, also=sql.SQL(f"{also}, " if also else ""),
             r=DELIVERIES.recordset(("delivery_id", *columns)), status=sql.Literal(status)))


@cache
def count_paused(schema: str) -> sql.SQL:
    return _text(sql.SQL("SELECT count(*) AS paused FROM {}").format(PAUSED_HOSTS.ident(schema)))


@cache
def select_paused(schema: str) -> sql.SQL:
    return _text(sql.SQL(
        "SELECT p.host, p.paused_at, p.reason, (SELECT count(*) FROM {d} d WHERE d.host = p.host "
        "AND d.status = 'pending') AS waiting FROM {p} p ORDER BY p.paused_at, p.host"
    ).format(p=PAUSED_HOSTS.ident(schema), d=DELIVERIES.ident(schema)))


@cache
def resume_host(schema: str) -> sql.SQL:
    """Unpause a host; its waiting deliveries are due at once (no row: it was not paused)."""
    return _text(sql.SQL(
        "WITH resumed AS (DELETE FROM {p} WHERE host = %(host)s RETURNING host), "
        "due AS (UPDATE {d} SET next_attempt_at = now(), updated_at = now() "
        "WHERE host IN (SELECT host FROM resumed) AND status = 'pending' RETURNING 1) "
        "SELECT (SELECT count(*) FROM due) AS resumed FROM resumed"
    ).format(p=PAUSED_HOSTS.ident(schema), d=DELIVERIES.ident(schema)))


@cache
def select_page(schema: str, *, partner: bool, status: bool, after: bool) -> sql.SQL:
    conditions = [sql.SQL("TRUE")]
    if partner:
        conditions.append(sql.SQL("partner_id = %(partner_id)s"))
    if status:
        conditions.append(sql.SQL("status = %(status)s"))
    if after:
        conditions.append(sql.SQL("seq > %(after)s"))
    return _text(sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY seq LIMIT %(limit)s").format(
        _returning(DELIVERIES), DELIVERIES.ident(schema), sql.SQL(" AND ").join(conditions)))
