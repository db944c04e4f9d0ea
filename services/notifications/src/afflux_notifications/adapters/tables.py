"""The notifications schema: the views, the mail queue and delivery log, the dead-letter
counts and the caught mail; their tables and the statements written by hand.

``notifications`` is both the queue (rows ``queued`` with their ``next_attempt_at``,
``sending`` and ``handing_over`` under a worker's claim) and the delivery log (one row
per mail, whatever became of it). ``worker`` is the claiming worker's lease: the
``objid`` of a PostgreSQL advisory lock (class ``WORKER_LOCK_CLASS``) that its own
session holds while it lives, so "is the worker alive" is a look at ``pg_locks``.
"""

from __future__ import annotations

from functools import cache

from psycopg import sql

from afflux_plumbing.tables import Table

WORKER_LOCK_CLASS = 4108008
"""The advisory lock class of the mail workers' leases (the objid is the worker)."""

PARTNERS = Table("partners", (
    "partner_id text", "name text NOT NULL", "email text NOT NULL", "contacts text[] NOT NULL DEFAULT '{{}}'",
    "status text NOT NULL",
), key=("partner_id",))
OFFERS = Table("offers", ("offer_id text", "name text NOT NULL", "status text NOT NULL"), key=("offer_id",))
STANDINGS = Table("standings", (
    "offer_id text", "partner_id text", "approved boolean NOT NULL", "application boolean NOT NULL",
), key=("offer_id", "partner_id"))
"""Each relationship's approval and whether it is an open application."""
PREFERENCES = Table("preferences", (
    "partner_id text", "opted_out text[] NOT NULL", "updated_at timestamptz NOT NULL DEFAULT now()",
), key=("partner_id",))
NOTIFICATIONS = Table("notifications", (
    "seq bigserial UNIQUE", "notification_id text", "kind text NOT NULL", "audience text NOT NULL",
    "recipient text NOT NULL", "recipient_key text NOT NULL", "partner_id text", "source text NOT NULL",
    "source_event_id text", "correlation_id text", "data jsonb", "request_sha256 text",
    "status text NOT NULL CHECK (status IN "
    "('queued', 'sending', 'handing_over', 'sent', 'failed', 'uncertain', 'skipped'))",
    "attempts integer NOT NULL DEFAULT 0", "worker bigint", "claim uuid", "subject text", "message_id text",
    "last_code integer", "last_error text", "queued_at timestamptz NOT NULL DEFAULT now()",
    "next_attempt_at timestamptz NOT NULL DEFAULT now()", "updated_at timestamptz NOT NULL DEFAULT now()",
    "ended_at timestamptz",
), key=("notification_id",))
DEAD_LETTERS = Table("dead_letter_counts", (
    "topic text", "pending integer NOT NULL DEFAULT 0", "reasons jsonb NOT NULL DEFAULT '{{}}'",
    "first_at timestamptz", "last_at timestamptz", "total bigint NOT NULL DEFAULT 0",
    "digests integer NOT NULL DEFAULT 0", "last_digest_at timestamptz",
), key=("topic",))
"""Per DLQ topic: what arrived since its last digest (``pending``, ``reasons``), and all told."""
DEAD_LETTER_POSITIONS = Table("dead_letter_positions", (
    "topic text", "partition integer", "next_offset bigint NOT NULL",
), key=("topic", "partition"))
CAUGHT = Table("caught_mail", (
    "seq bigserial", "received_at timestamptz NOT NULL DEFAULT now()", "mail_from text",
    "recipients text[] NOT NULL", "subject text", "message_id text", "text_body text", "html_body text",
), key=("seq",))
"""What the embedded mail catcher was sent (``AFFLUX_SMTP_URL`` unset)."""

VIEW_DDL = [
    *PARTNERS.ddl(), *OFFERS.ddl(), *STANDINGS.ddl(), *PREFERENCES.ddl(), *NOTIFICATIONS.ddl(),
    *DEAD_LETTERS.ddl(), *DEAD_LETTER_POSITIONS.ddl(), *CAUGHT.ddl(),
    "CREATE INDEX IF NOT EXISTS standings_approved ON {schema}.standings (offer_id) WHERE approved",
    "CREATE INDEX IF NOT EXISTS notifications_due ON {schema}.notifications (next_attempt_at) "
    "WHERE status = 'queued'",
    "CREATE INDEX IF NOT EXISTS notifications_claimed ON {schema}.notifications (worker) "
    "WHERE status IN ('sending', 'handing_over')",
    "CREATE INDEX IF NOT EXISTS notifications_by_recipient ON {schema}.notifications (recipient_key, seq)",
    "CREATE INDEX IF NOT EXISTS notifications_by_partner ON {schema}.notifications (partner_id, seq)",
]

MAIL_COLUMNS = ("notification_id", "kind", "audience", "recipient", "recipient_key", "partner_id", "source",
                "source_event_id", "correlation_id", "data", "request_sha256", "status", "last_error",
                "ended_at")
CLAIMED_COLUMNS = ("notification_id", "kind", "audience", "recipient", "partner_id", "data",
                   "source_event_id", "correlation_id", "attempts", "queued_at", "claim", "subject",
                   "message_id")
LOG_COLUMNS = ("seq", "notification_id", "kind", "audience", "recipient", "partner_id", "source", "status",
               "attempts", "subject", "message_id", "last_code", "last_error", "queued_at", "next_attempt_at",
               "updated_at", "ended_at")


def _text(statement: sql.Composable) -> sql.SQL:
    """``statement`` as its text, composed once (psycopg composes a ``Composed`` anew on
    every execute)."""
    return sql.SQL(statement.as_string())


_LIVE = ("SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
         f"AND classid = {WORKER_LOCK_CLASS}::oid "
         "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
"""The workers alive now: those whose lease (advisory lock) a session holds."""


def _names(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(name) for name in columns)


@cache
def claim(schema: str) -> sql.SQL:
    """Up to ``limit`` mails, oldest due first: queued ones that are due, and ``sending``
    ones whose worker is not alive (nothing of them was handed over), each now
    ``worker``'s under a new claim. ``SKIP LOCKED``: two workers never claim one row."""
    return _text(sql.SQL(
        "UPDATE {t} SET status = 'sending', worker = %(worker)s, claim = gen_random_uuid(), "
        "updated_at = now() WHERE notification_id IN (SELECT notification_id FROM {t} "
        "WHERE (status = 'queued' AND next_attempt_at <= now()) OR (status = 'sending' AND worker NOT IN ("
        + _LIVE + ")) ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING {c}"
    ).format(t=NOTIFICATIONS.ident(schema), c=_names(CLAIMED_COLUMNS)))


@cache
def hand_over(schema: str) -> sql.SQL:
    """``sending`` → ``handing_over``, only under the claim given (a compare-and-set)."""
    return _text(sql.SQL(
        "UPDATE {t} SET status = 'handing_over', subject = %(subject)s, message_id = %(message_id)s, "
        "updated_at = now() WHERE notification_id = %(notification_id)s AND claim = %(claim)s "
        "AND status = 'sending' RETURNING notification_id"
    ).format(t=NOTIFICATIONS.ident(schema)))


@cache
def dead_handovers(schema: str) -> sql.SQL:
    return _text(sql.SQL(
        "SELECT {c} FROM {t} WHERE status = 'handing_over' AND worker NOT IN (" + _LIVE + ") "
        "ORDER BY seq LIMIT 500"
    ).format(t=NOTIFICATIONS.ident(schema), c=_names(CLAIMED_COLUMNS)))


@cache
def record(schema: str) -> sql.SQL:
    """Mails' state after a conversation (or a sweep), each only while its claim is still the
    one given and it is not ended; an ended mail forgets its data (a secret, perhaps) and
    its claim."""
    return _text(sql.SQL(
        "UPDATE {t} AS n SET status = r.status, attempts = r.attempts, "
        "next_attempt_at = coalesce(r.next_attempt_at, n.next_attempt_at), last_code = r.last_code, "
        "last_error = r.last_error, subject = coalesce(r.subject, n.subject), "
        "message_id = coalesce(r.message_id, n.message_id), updated_at = now(), "
        "ended_at = CASE WHEN r.ended THEN now() END, data = CASE WHEN r.ended THEN NULL ELSE n.data END, "
        "worker = NULL, claim = NULL FROM json_to_recordset(%s::json) AS r(notification_id text, claim uuid, "
        "status text, attempts integer, next_attempt_at timestamptz, last_code integer, last_error text, "
        "subject text, message_id text, ended boolean) WHERE n.notification_id = r.notification_id "
        "AND n.claim = r.claim AND n.status IN ('sending', 'handing_over')"
    ).format(t=NOTIFICATIONS.ident(schema)))


@cache
def requested(schema: str) -> sql.SQL:
    """Mails asked for over HTTP, as they stand (after a queue that may have found them)."""
    return _text(sql.SQL(
        "SELECT notification_id, recipient, status, request_sha256 FROM {t} "
        "WHERE notification_id = ANY(%s) ORDER BY seq"
    ).format(t=NOTIFICATIONS.ident(schema)))


@cache
def page(schema: str, *, recipient: bool, partner: bool, status: bool, after: bool) -> sql.SQL:
    conditions = [sql.SQL("TRUE")]
    if recipient:
        conditions.append(sql.SQL("recipient_key = %(recipient)s"))
    if partner:
        conditions.append(sql.SQL("partner_id = %(partner_id)s"))
    if status:
        conditions.append(sql.SQL("status = %(status)s"))
    if after:
        conditions.append(sql.SQL("seq > %(after)s"))
    return _text(sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY seq LIMIT %(limit)s").format(
        _names(LOG_COLUMNS), NOTIFICATIONS.ident(schema), sql.SQL(" AND ").join(conditions)))


@cache
def caught_page(schema: str) -> sql.SQL:
    return _text(sql.SQL(
        "SELECT seq, received_at, mail_from, recipients, subject, message_id, text_body FROM {} "
        "WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s"
    ).format(CAUGHT.ident(schema)))


@cache
def count_dead_letters(schema: str) -> sql.SQL:
    """Add a batch's dead letters to its topic's count (``reasons`` replaced by the merged ones)."""
    return _text(sql.SQL(
        "INSERT INTO {t} AS d (topic, pending, reasons, first_at, last_at, total) "
        "VALUES (%(topic)s, %(count)s, %(reasons)s, %(first_at)s, %(last_at)s, %(count)s) "
        "ON CONFLICT (topic) DO UPDATE SET pending = d.pending + excluded.pending, "
        "reasons = excluded.reasons, "
        "first_at = coalesce(d.first_at, excluded.first_at), "
        "last_at = greatest(d.last_at, excluded.last_at), total = d.total + excluded.total"
    ).format(t=DEAD_LETTERS.ident(schema)))


@cache
def advance_dead_letter_position(schema: str) -> sql.SQL:
    """Move a DLQ partition's position from ``from`` to ``to``, only if it is still at
    ``from`` (another instance that counted these records first moved it): no row back
    means the batch was counted already."""
    return _text(sql.SQL(
        "INSERT INTO {p} AS p (topic, partition, next_offset) VALUES (%(topic)s, %(partition)s, %(to)s) "
        "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset "
        "WHERE p.next_offset = %(from)s RETURNING next_offset"
    ).format(p=DEAD_LETTER_POSITIONS.ident(schema)))


@cache
def due_digests(schema: str) -> sql.SQL:
    return _text(sql.SQL(
        "SELECT topic, pending, reasons, first_at, last_at, digests, last_digest_at FROM {t} "
        "WHERE pending > 0 ORDER BY topic FOR UPDATE SKIP LOCKED"
    ).format(t=DEAD_LETTERS.ident(schema)))


@cache
def digested(schema: str) -> sql.SQL:
    return _text(sql.SQL(
        "UPDATE {t} SET pending = 0, reasons = '{{}}', first_at = NULL, last_at = NULL, "
        "digests = digests + 1, last_digest_at = now() WHERE topic = %(topic)s"
    ).format(t=DEAD_LETTERS.ident(schema)))
