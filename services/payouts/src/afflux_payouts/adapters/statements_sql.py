"""Tables and SQL of the ledger's history and statements (``ledger_sql.py`` holds the
commissions as they stand now).

Every row here is written by the fold from a record of the log, with the times that
record gives (no ``now()``): ``happened_at`` (when the fact happened: a conversion,
a review, an adjustment, an issue, a payment) and ``known_on`` (the envelope's
``occurred_at``: when its producer recorded it, so it was on the log no earlier).
A balance ``as_of`` T counts the facts that happened by T; ``as_known_on`` K the
ones recorded by K.

- ``commission_changes``: one row per attribution record that gave a conversion
  its status and amount (``pending``/``accrued``/``void``, ``amount`` what it earns:
  0 when void). A conversion's state at T is its latest row (by log offset: one
  partner's records share a partition, so offsets order them) that happened by T.
- ``adjustments``: BalanceAdjusted.
- ``statements`` / ``statement_lines``: StatementIssued (and StatementPaid on the
  statement's row). A payable or paid statement *claims* its lines.

Balances are sums: accrued = earned + adjustments - claimed, payable = claimed
on unpaid statements, paid = claimed on paid ones. Being sums, they do not
depend on the order in which the three logs were folded.
"""

from __future__ import annotations

from psycopg import sql

STATEMENTS_DDL = [
    """CREATE TABLE IF NOT EXISTS {schema}.commission_changes (
        event_id uuid PRIMARY KEY,
        conversion_id text NOT NULL,
        partner_id text NOT NULL,
        offer_id text NOT NULL,
        currency text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'accrued', 'void')),
        amount numeric NOT NULL,
        happened_at timestamptz NOT NULL,
        known_on timestamptz NOT NULL,
        log_offset bigint NOT NULL,
        recorded_from text NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS commission_changes_by_partner
        ON {schema}.commission_changes (partner_id, conversion_id, log_offset)""",
    """CREATE TABLE IF NOT EXISTS {schema}.adjustments (
        adjustment_id text PRIMARY KEY,
        partner_id text NOT NULL,
        currency text NOT NULL,
        amount numeric NOT NULL,
        reason text NOT NULL,
        note text,
        happened_at timestamptz NOT NULL,
        known_on timestamptz NOT NULL,
        event_id uuid NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS adjustments_by_partner ON {schema}.adjustments (partner_id)",
    """CREATE TABLE IF NOT EXISTS {schema}.statements (
        statement_id text PRIMARY KEY,
        partner_id text NOT NULL,
        currency text NOT NULL,
        period_start timestamptz,
        period_end timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('payable', 'carried_over', 'paid')),
        total numeric NOT NULL,
        carried_over numeric NOT NULL,
        minimum_payout numeric NOT NULL,
        frequency text,
        closed_by text NOT NULL,
        log_position text NOT NULL,
        digest text NOT NULL,
        issued_at timestamptz NOT NULL,
        known_on timestamptz NOT NULL,
        event_id uuid NOT NULL,
        paid_at timestamptz,
        paid_known_on timestamptz,
        reference text
    )""",
    "CREATE INDEX IF NOT EXISTS statements_by_partner ON {schema}.statements (partner_id, period_end)",
    """CREATE TABLE IF NOT EXISTS {schema}.statement_lines (
        statement_id text NOT NULL,
        kind text NOT NULL,
        ref text NOT NULL,
        partner_id text NOT NULL,
        currency text NOT NULL,
        offer_id text,
        happened_at timestamptz NOT NULL,
        amount numeric NOT NULL,
        PRIMARY KEY (statement_id, kind, ref)
    )""",
    "CREATE INDEX IF NOT EXISTS statement_lines_by_ref ON {schema}.statement_lines (ref, kind)",
    "CREATE INDEX IF NOT EXISTS statement_lines_by_partner ON {schema}.statement_lines (partner_id)",
    """CREATE TABLE IF NOT EXISTS {schema}.partner_terms (
        partner_id text PRIMARY KEY,
        name text NOT NULL,
        status text NOT NULL,
        billing_currency text,
        frequency text,
        minimum_payout numeric,
        method text,
        event_id uuid NOT NULL
    )""",
]

CLAIMING = "('payable', 'paid')"


def insert_change(changes: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    """One attribution record's effect on its conversion; its log offset is read from the
    inbox, where the store recorded the record's position in this same transaction."""
    return sql.SQL(
        "INSERT INTO {} (event_id, conversion_id, partner_id, offer_id, currency, status, amount, "
        "happened_at, known_on, log_offset, recorded_from) "
        "SELECT %(event_id)s, %(conversion_id)s, %(partner_id)s, %(offer_id)s, %(currency)s, %(status)s, "
        "%(amount)s, %(happened_at)s, %(known_on)s, split_part(position, '@', 2)::bigint, position "
        "FROM {} WHERE event_id = %(event_id)s ON CONFLICT (event_id) DO NOTHING"
    ).format(changes, inbox)


def insert_changes(changes: sql.Identifier, inbox: sql.Identifier) -> sql.Composed:
    """``insert_change`` for many records: a JSON array of objects with its parameters."""
    return sql.SQL(
        "INSERT INTO {} (event_id, conversion_id, partner_id, offer_id, currency, status, amount, "
        "happened_at, known_on, log_offset, recorded_from) "
        "SELECT r.*, split_part(i.position, '@', 2)::bigint, i.position "
        "FROM json_to_recordset(%s::json) AS r(event_id uuid, conversion_id text, partner_id text, "
        "offer_id text, currency text, status text, amount numeric, happened_at timestamptz, "
        "known_on timestamptz) JOIN {} AS i ON i.event_id = r.event_id "
        "ON CONFLICT (event_id) DO NOTHING"
    ).format(changes, inbox)


def insert_adjustment(adjustments: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (adjustment_id, partner_id, currency, amount, reason, note, happened_at, known_on, "
        "event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (adjustment_id) DO NOTHING"
    ).format(adjustments)


def insert_statement(statements: sql.Identifier, lines: sql.Identifier) -> sql.Composed:
    """A statement and all its lines (parallel arrays) in one round trip."""
    return sql.SQL(
        "WITH statement AS (INSERT INTO {} (statement_id, partner_id, currency, period_start, period_end, "
        "status, total, carried_over, minimum_payout, frequency, closed_by, log_position, digest, issued_at, "
        "known_on, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (statement_id) DO NOTHING) "
        "INSERT INTO {} (statement_id, partner_id, currency, kind, ref, offer_id, happened_at, amount) "
        "SELECT %s, %s, %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], "
        "%s::numeric[]) ON CONFLICT DO NOTHING"
    ).format(statements, lines)


def mark_paid(statements: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "UPDATE {} SET status = 'paid', paid_at = %s, paid_known_on = %s, reference = %s "
        "WHERE statement_id = %s AND status = 'payable'"
    ).format(statements)


def upsert_terms(terms: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (partner_id, name, status, billing_currency, frequency, minimum_payout, method, "
        "event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (partner_id) DO UPDATE SET "
        "name = EXCLUDED.name, status = EXCLUDED.status, billing_currency = EXCLUDED.billing_currency, "
        "frequency = EXCLUDED.frequency, minimum_payout = EXCLUDED.minimum_payout, "
        "method = EXCLUDED.method, event_id = EXCLUDED.event_id"
    ).format(terms)


def update_terms_status(terms: sql.Identifier) -> sql.Composed:
    return sql.SQL("UPDATE {} SET status = %s WHERE partner_id = %s").format(terms)


def _state(schema: str, partner_filter: str) -> sql.Composed:
    """Each conversion's latest change that happened by %(as_of)s and was known by
    %(known)s (of the partners ``partner_filter`` selects)."""
    return sql.SQL(
        "SELECT DISTINCT ON (conversion_id) conversion_id, partner_id, offer_id, currency, status, amount, "
        "happened_at FROM {} WHERE happened_at <= %(as_of)s AND known_on <= %(known)s AND " + partner_filter
        + " ORDER BY conversion_id, log_offset DESC"
    ).format(sql.Identifier(schema, "commission_changes"))


def select_balance(schema: str) -> sql.Composed:
    """One partner's sums per currency as of %(as_of)s / known by %(known)s: pending,
    earned (approved commissions and adjustments), claimed by statements, paid."""
    t = {name: sql.Identifier(schema, name) for name in ("adjustments", "statements", "statement_lines")}
    return sql.SQL(
        "WITH state AS ({state}), "
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
    ).format(state=_state(schema, "partner_id = %(partner)s"), adjustments=t["adjustments"],
             statements=t["statements"], lines=t["statement_lines"])


def select_open_lines(schema: str, *, one_partner: bool) -> sql.Composed:
    """Every unclaimed line as of %(as_of)s (all partners, or %(partner)s): per conversion
    what it earned then less what statements claimed, per adjustment its amount unless
    claimed; with each partner/currency's last period end (``period_start``)."""
    where = "partner_id = %(partner)s" if one_partner else "TRUE"
    line_where = "l.partner_id = %(partner)s" if one_partner else "TRUE"
    t = {name: sql.Identifier(schema, name) for name in ("adjustments", "statements", "statement_lines")}
    return sql.SQL(
        "WITH state AS ({state}), "
        "claimed AS (SELECT l.kind, l.ref, l.partner_id, l.currency, sum(l.amount) AS amount, "
        "  max(l.offer_id) AS offer_id, max(l.happened_at) AS happened_at FROM {lines} l "
        "  JOIN {statements} s ON s.statement_id = l.statement_id WHERE s.status IN " + CLAIMING
        + " AND " + line_where + " GROUP BY l.kind, l.ref, l.partner_id, l.currency), "
        "earned AS (SELECT 'commission' AS kind, conversion_id AS ref, partner_id, currency, offer_id, "
        "  happened_at, CASE WHEN status = 'accrued' THEN amount ELSE 0 END AS amount FROM state "
        "  UNION ALL SELECT 'adjustment', adjustment_id, partner_id, currency, NULL, happened_at, amount "
        "  FROM {adjustments} WHERE happened_at <= %(as_of)s AND " + where + "), "
        "open AS (SELECT coalesce(e.kind, c.kind) AS kind, coalesce(e.ref, c.ref) AS ref, "
        "  coalesce(e.partner_id, c.partner_id) AS partner_id, coalesce(e.currency, c.currency) AS currency, "
        "  coalesce(e.offer_id, c.offer_id) AS offer_id, "
        "  coalesce(e.happened_at, c.happened_at) AS happened_at, "
        "  coalesce(e.amount, 0) - coalesce(c.amount, 0) AS amount "
        "  FROM earned e FULL JOIN claimed c ON c.kind = e.kind AND c.ref = e.ref), "
        "last AS (SELECT partner_id, currency, max(period_end) AS period_start FROM {statements} WHERE "
        + where + " GROUP BY partner_id, currency) "
        "SELECT o.*, last.period_start FROM open o LEFT JOIN last USING (partner_id, currency) "
        "WHERE o.amount <> 0 ORDER BY o.partner_id, o.currency, o.kind, o.ref"
    ).format(state=_state(schema, where), lines=t["statement_lines"], statements=t["statements"],
             adjustments=t["adjustments"])


def select_closed_up_to(schema: str) -> sql.Composed:
    """Each partner/currency's last period end (statements of any status)."""
    return sql.SQL(
        "SELECT partner_id, currency, max(period_end) AS period_end FROM {} GROUP BY partner_id, currency"
    ).format(sql.Identifier(schema, "statements"))


def select_positions(tracking: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT application_name, max(notification_id) AS last FROM {} "
        "WHERE position('#' in application_name) > 0 "
        "GROUP BY application_name ORDER BY application_name"
    ).format(tracking)


def select_statements(schema: str, *, partner: bool, status: bool) -> sql.Composed:
    conditions = [sql.SQL("TRUE")]
    if partner:
        conditions.append(sql.SQL("partner_id = %(partner)s"))
    if status:
        conditions.append(sql.SQL("status = %(status)s"))
    return sql.SQL(
        "SELECT * FROM {} WHERE {} ORDER BY period_end, partner_id, currency LIMIT %(limit)s"
    ).format(sql.Identifier(schema, "statements"), sql.SQL(" AND ").join(conditions))


def select_statement(schema: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM {} WHERE statement_id = %s").format(sql.Identifier(schema, "statements"))


def select_lines(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT kind, ref, offer_id, happened_at, amount FROM {} WHERE statement_id = %s ORDER BY kind, ref"
    ).format(sql.Identifier(schema, "statement_lines"))


def select_terms(schema: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM {} ORDER BY partner_id").format(sql.Identifier(schema, "partner_terms"))


def select_claims_of(schema: str) -> sql.Composed:
    """Per conversion of %(partner)s: what payable and paid statements claimed of it."""
    return sql.SQL(
        "SELECT l.ref, sum(l.amount) AS claimed, coalesce(sum(l.amount) FILTER (WHERE s.status = 'paid'), 0) "
        "AS paid FROM {} l JOIN {} s ON s.statement_id = l.statement_id WHERE l.partner_id = %(partner)s "
        "AND l.kind = 'commission' AND s.status IN " + CLAIMING + " GROUP BY l.ref"
    ).format(sql.Identifier(schema, "statement_lines"), sql.Identifier(schema, "statements"))


def count_unfolded(events: sql.Identifier, statements: sql.Identifier) -> sql.Composed:
    """Statements this store issued (or paid) that its fold has not caught up with yet."""
    return sql.SQL(
        "SELECT (SELECT count(*) FROM {events} WHERE topic = 'afflux_payouts:Statement.Issued') "
        "- (SELECT count(*) FROM {statements}) "
        "+ (SELECT count(*) FROM {events} WHERE topic = 'afflux_payouts:Statement.Paid') "
        "- (SELECT count(*) FROM {statements} WHERE status = 'paid') AS unfolded"
    ).format(events=events, statements=statements)
