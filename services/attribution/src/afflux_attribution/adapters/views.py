"""Attribution's view tables on PostgreSQL, and the statements that write and read them.

Every insert is idempotent on its natural key, so a redelivered message (already
guarded by the inbox) could not double anything either. Terms are kept as versions
keyed by ``effective_from``; two versions of one offer (or relationship) stamped the
same instant are two facts of one key, delivered in order, so the later one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from afflux_attribution.adapters import program_json as program
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.rules import Click
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, RelationshipTerms
from afflux_contracts import ClickOutcome, OfferStatus, PayoutType

VIEW_DDL: Sequence[str] = (
    """CREATE TABLE IF NOT EXISTS {schema}.offer_terms (
        offer_id text NOT NULL,
        effective_from timestamptz NOT NULL,
        currency text NOT NULL,
        payout_type text NOT NULL,
        payout_amount numeric,
        payout_percent numeric,
        revenue_type text,
        revenue_amount numeric,
        revenue_percent numeric,
        attribution_window_days integer NOT NULL,
        status text NOT NULL,
        PRIMARY KEY (offer_id, effective_from)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.relationship_terms (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        effective_from timestamptz NOT NULL,
        approved boolean NOT NULL,
        payout_type text,
        payout_amount numeric,
        payout_percent numeric,
        revenue_type text,
        revenue_amount numeric,
        revenue_percent numeric,
        PRIMARY KEY (offer_id, partner_id, effective_from)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.partners (
        partner_id text PRIMARY KEY,
        status text NOT NULL,
        status_at timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.clicks (
        transaction_id text PRIMARY KEY,
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        clicked_at timestamptz NOT NULL,
        outcome text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.credited_orders (
        offer_id text NOT NULL,
        order_id text NOT NULL,
        conversion_id text NOT NULL,
        PRIMARY KEY (offer_id, order_id)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.conversions (
        conversion_id text PRIMARY KEY,
        status text NOT NULL,
        reason text,
        message text,
        event text NOT NULL,
        transaction_id text,
        partner_id text,
        offer_id text,
        order_id text,
        currency text,
        payout numeric,
        revenue numeric,
        sale_amount numeric,
        clicked_at timestamptz,
        converted_at timestamptz NOT NULL,
        decided_at timestamptz NOT NULL
    )""",
    "ALTER TABLE {schema}.conversions ADD COLUMN IF NOT EXISTS note text",
    "ALTER TABLE {schema}.conversions ADD COLUMN IF NOT EXISTS changed_at timestamptz",
    # The admin listing's order (keyset pagination), and its filters.
    """CREATE INDEX IF NOT EXISTS conversions_by_time
        ON {schema}.conversions (converted_at, conversion_id)""",
    # Reports read but not decided yet (parked until their offer's terms arrive).
    """CREATE TABLE IF NOT EXISTS {schema}.held_reports (
        conversion_id text PRIMARY KEY,
        event text NOT NULL,
        transaction_id text,
        offer_id text,
        converted_at timestamptz NOT NULL,
        message text NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS conversions_by_partner
        ON {schema}.conversions (partner_id, converted_at, conversion_id)""",
    # The program (issue 8): versions name the partners event that made them; the rest of
    # an offer's or relationship's program (events, caps, tiers, fraud...) rides as JSON.
    "ALTER TABLE {schema}.offer_terms ADD COLUMN IF NOT EXISTS event_id text",
    "ALTER TABLE {schema}.offer_terms ADD COLUMN IF NOT EXISTS program jsonb",
    "ALTER TABLE {schema}.relationship_terms ADD COLUMN IF NOT EXISTS event_id text",
    "ALTER TABLE {schema}.relationship_terms ADD COLUMN IF NOT EXISTS program jsonb",
    "ALTER TABLE {schema}.clicks ADD COLUMN IF NOT EXISTS sub1 text",
    "ALTER TABLE {schema}.clicks ADD COLUMN IF NOT EXISTS ip text",
    "ALTER TABLE {schema}.conversions ADD COLUMN IF NOT EXISTS coupon_code text",
    "ALTER TABLE {schema}.conversions ADD COLUMN IF NOT EXISTS trace jsonb",
    "ALTER TABLE {schema}.conversions ADD COLUMN IF NOT EXISTS terms jsonb",
    # The coupon register: each code's partner on each offer (codes are case-insensitive).
    """CREATE TABLE IF NOT EXISTS {schema}.coupons (
        code text NOT NULL,
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        PRIMARY KEY (code, offer_id)
    )""",
    # What caps and tiers count: attributed conversions per offer (partner '' = every
    # partner) and period bucket, updated in the transaction of the decision.
    """CREATE TABLE IF NOT EXISTS {schema}.program_counts (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        period text NOT NULL,
        conversions bigint NOT NULL DEFAULT 0,
        approved bigint NOT NULL DEFAULT 0,
        payout numeric NOT NULL DEFAULT 0,
        revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (offer_id, partner_id, period)
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.ip_counts (
        offer_id text NOT NULL,
        ip text NOT NULL,
        day date NOT NULL,
        conversions bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (offer_id, ip, day)
    )""",
    # One conversion per transaction and event (unless the event allows duplicates).
    """CREATE TABLE IF NOT EXISTS {schema}.converted_events (
        transaction_id text NOT NULL,
        event text NOT NULL,
        conversion_id text NOT NULL,
        PRIMARY KEY (transaction_id, event)
    )""",
    # CPM: valid impressions counted per partner and offer while the offer pays per thousand.
    """CREATE TABLE IF NOT EXISTS {schema}.impression_counts (
        offer_id text NOT NULL,
        partner_id text NOT NULL,
        impressions bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (offer_id, partner_id)
    )""",
)

OFFER_TERMS_COLUMNS = (
    "offer_id", "effective_from", "currency", "payout_type", "payout_amount", "payout_percent",
    "revenue_type", "revenue_amount", "revenue_percent", "attribution_window_days", "status",
    "event_id", "program",
)
RELATIONSHIP_TERMS_COLUMNS = (
    "offer_id", "partner_id", "effective_from", "approved", "payout_type", "payout_amount",
    "payout_percent", "revenue_type", "revenue_amount", "revenue_percent", "event_id", "program",
)
CLICK_COLUMNS = ("transaction_id", "offer_id", "partner_id", "clicked_at", "outcome", "sub1", "ip")
CONVERSION_COLUMNS = (
    "conversion_id", "status", "reason", "message", "event", "transaction_id", "partner_id",
    "offer_id", "order_id", "currency", "payout", "revenue", "sale_amount", "clicked_at",
    "converted_at", "decided_at", "note", "changed_at", "coupon_code", "trace", "terms",
)
HELD_COLUMNS = ("conversion_id", "event", "transaction_id", "offer_id", "converted_at", "message")
REVIEW_COLUMNS = ("status", "reason", "message", "note", "payout", "changed_at")
"""What a review changes in a conversion's row."""


def insert(
    table: sql.Identifier, columns: Sequence[str], conflict: Sequence[str] = (), *, later_wins: bool = False
) -> sql.Composed:
    """``INSERT`` of named parameters; on a ``conflict`` key, keep the row, or (with
    ``later_wins``) take the new values. No ``conflict``: a duplicate key raises."""
    statement = sql.SQL("INSERT INTO {table} ({columns}) VALUES ({values})").format(
        table=table,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(map(sql.Placeholder, columns)),
    )
    if not conflict:
        return statement
    keys = sql.SQL(", ").join(map(sql.Identifier, conflict))
    if not later_wins:
        return statement + sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(keys)
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column))
        for column in columns if column not in conflict
    )
    return statement + sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(keys, updates)


def newest_status(table: sql.Identifier) -> sql.Composed:
    """Upsert a partner's status unless the row already holds a newer one."""
    return sql.SQL(
        "INSERT INTO {table} AS prior (partner_id, status, status_at) "
        "VALUES (%(partner_id)s, %(status)s, %(status_at)s) "
        "ON CONFLICT (partner_id) DO UPDATE SET status = EXCLUDED.status, status_at = EXCLUDED.status_at "
        "WHERE prior.status_at <= EXCLUDED.status_at"
    ).format(table=table)


def delete_where(table: sql.Identifier, *keys: str) -> sql.Composed:
    """``DELETE`` of the rows matching every ``key`` (named parameters)."""
    return sql.SQL("DELETE FROM {table} WHERE {conditions}").format(
        table=table,
        conditions=sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(key), sql.Placeholder(key)) for key in keys
        ),
    )


def select_where(table: sql.Identifier, *keys: str, order_by: str | None = None) -> sql.Composed:
    """``SELECT *`` of the rows matching every ``key`` (named parameters)."""
    statement = sql.SQL("SELECT * FROM {table} WHERE {conditions}").format(
        table=table,
        conditions=sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(key), sql.Placeholder(key)) for key in keys
        ),
    )
    if order_by is not None:
        statement += sql.SQL(" ORDER BY {}").format(sql.Identifier(order_by))
    return statement


def select_taken(events: sql.Identifier, orders: sql.Identifier) -> sql.Composed:
    """Whether %(transaction_id)s converted on %(event)s, and %(order_id)s was credited on
    %(offer_id)s, as the columns ``converted`` and ``credited``."""
    return sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {events} WHERE transaction_id = %(transaction_id)s "
        "AND event = %(event)s) AS converted, EXISTS (SELECT 1 FROM {orders} "
        "WHERE offer_id = %(offer_id)s AND order_id = %(order_id)s) AS credited"
    ).format(events=events, orders=orders)


def select_report_facts(conversions: sql.Identifier, clicks: sql.Identifier, events: sql.Identifier,
                        orders: sql.Identifier) -> sql.Composed:
    """In one round trip, what deciding a report reads first: whether %(conversion_id)s
    is ``decided``, its click (the click columns, all NULL if %(transaction_id)s names
    none), whether that transaction ``converted`` on %(event)s, and whether %(order_id)s
    was ``credited`` on the offer the report is credited on (the click's, else
    %(offer_id)s)."""
    return sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {conversions} WHERE conversion_id = %(conversion_id)s) AS decided, "
        "click.*, EXISTS (SELECT 1 FROM {events} WHERE transaction_id = %(transaction_id)s "
        "AND event = %(event)s) AS converted, EXISTS (SELECT 1 FROM {orders} "
        "WHERE offer_id = coalesce(click.offer_id, %(offer_id)s) AND order_id = %(order_id)s) AS credited "
        "FROM (VALUES (1)) AS one LEFT JOIN {clicks} AS click ON click.transaction_id = %(transaction_id)s"
    ).format(conversions=conversions, clicks=clicks, events=events, orders=orders)


FOR_UPDATE = sql.SQL(" FOR UPDATE")
"""Appended to a select: lock its rows until the applying transaction ends."""


def utc(value: datetime) -> datetime:
    """A timestamptz as read (in the session's time zone), in UTC, as everywhere else."""
    return value.astimezone(UTC)


def terms_columns(prefix: str, terms: PricingTerms | None) -> dict[str, Any]:
    return {
        f"{prefix}_type": terms.type.value if terms else None,
        f"{prefix}_amount": terms.amount if terms else None,
        f"{prefix}_percent": terms.percent if terms else None,
    }


def terms_from(row: DictRow, prefix: str) -> PricingTerms | None:
    if row[f"{prefix}_type"] is None:
        return None
    return PricingTerms(PayoutType(row[f"{prefix}_type"]), row[f"{prefix}_amount"], row[f"{prefix}_percent"])


def offer_terms_row(terms: OfferTerms) -> dict[str, Any]:
    return {
        "offer_id": terms.offer_id,
        "effective_from": terms.effective_from,
        "currency": terms.currency,
        **terms_columns("payout", terms.payout),
        **terms_columns("revenue", terms.revenue),
        "attribution_window_days": terms.attribution_window_days,
        "status": terms.status.value,
        "event_id": terms.event_id,
        "program": Jsonb(program.offer_program_json(terms)),
    }


def offer_terms_from(row: DictRow) -> OfferTerms:
    payout = terms_from(row, "payout")
    assert payout is not None, "offer_terms.payout_type is NOT NULL"
    return program.with_offer_program(OfferTerms(
        offer_id=row["offer_id"],
        effective_from=utc(row["effective_from"]),
        currency=row["currency"],
        payout=payout,
        revenue=terms_from(row, "revenue"),
        attribution_window_days=row["attribution_window_days"],
        status=OfferStatus(row["status"]),
        event_id=row["event_id"],
    ), row["program"])


def relationship_terms_row(terms: RelationshipTerms) -> dict[str, Any]:
    return {
        "offer_id": terms.offer_id,
        "partner_id": terms.partner_id,
        "effective_from": terms.effective_from,
        "approved": terms.approved,
        **terms_columns("payout", terms.payout),
        **terms_columns("revenue", terms.revenue),
        "event_id": terms.event_id,
        "program": Jsonb(program.relationship_program_json(terms)),
    }


def relationship_terms_from(row: DictRow) -> RelationshipTerms:
    return program.with_relationship_program(RelationshipTerms(
        offer_id=row["offer_id"],
        partner_id=row["partner_id"],
        effective_from=utc(row["effective_from"]),
        approved=row["approved"],
        payout=terms_from(row, "payout"),
        revenue=terms_from(row, "revenue"),
        event_id=row["event_id"],
    ), row["program"])


def click_row(click: Click) -> dict[str, Any]:
    return {
        "transaction_id": click.transaction_id,
        "offer_id": click.offer_id,
        "partner_id": click.partner_id,
        "clicked_at": click.clicked_at,
        "outcome": click.outcome.value,
        "sub1": click.sub1,
        "ip": click.ip,
    }


def click_from(row: DictRow) -> Click:
    return Click(
        transaction_id=row["transaction_id"],
        offer_id=row["offer_id"],
        partner_id=row["partner_id"],
        clicked_at=utc(row["clicked_at"]),
        outcome=ClickOutcome(row["outcome"]),
        sub1=row["sub1"],
        ip=row["ip"],
    )


def conversion_row(conversion: Conversion) -> dict[str, Any]:
    """The conversions view row of a decided conversion."""
    return {
        "conversion_id": conversion.conversion_id,
        "status": conversion.status.value,
        "reason": conversion.reason,
        "message": conversion.message,
        "event": conversion.event,
        "transaction_id": conversion.transaction_id,
        "partner_id": conversion.partner_id,
        "offer_id": conversion.offer_id,
        "order_id": conversion.order_id,
        "currency": conversion.currency,
        "payout": conversion.payout,
        "revenue": conversion.revenue,
        "sale_amount": conversion.sale_amount,
        "clicked_at": conversion.clicked_at,
        "converted_at": conversion.converted_at,
        "decided_at": conversion.decided_at,
        "note": conversion.note,
        "changed_at": conversion.changed_at,
        "coupon_code": conversion.coupon_code,
        "trace": conversion.trace,
        "terms": conversion.terms,
    }


def conversion_params(conversion: Conversion) -> dict[str, Any]:
    """``conversion_row`` as parameters of the insert (the JSON columns wrapped)."""
    row = conversion_row(conversion)
    return {**row, "trace": Jsonb(row["trace"]),
            "terms": Jsonb(row["terms"]) if row["terms"] is not None else None}


def update_review(table: sql.Identifier) -> sql.Composed:
    """Set a reviewed conversion's ``REVIEW_COLUMNS`` (named parameters) by conversion_id."""
    return sql.SQL("UPDATE {table} SET {sets} WHERE conversion_id = %(conversion_id)s").format(
        table=table,
        sets=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in REVIEW_COLUMNS
        ),
    )


def select_conversions(table: sql.Identifier, filters: Sequence[str], *, since: bool, until: bool,
                       after: bool) -> sql.Composed:
    """Up to %(limit)s conversions in (converted_at, conversion_id) order: those whose
    ``filters`` columns equal their parameters, converted at or after %(since)s and before
    %(until)s when asked, strictly after the page key (%(after_at)s, %(after_id)s) when ``after``."""
    conditions: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in filters
    ]
    if since:
        conditions.append(sql.SQL("converted_at >= %(since)s"))
    if until:
        conditions.append(sql.SQL("converted_at < %(until)s"))
    if after:
        conditions.append(sql.SQL("(converted_at, conversion_id) > (%(after_at)s, %(after_id)s)"))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    return sql.SQL(
        "SELECT * FROM {table}{where} ORDER BY converted_at, conversion_id LIMIT %(limit)s"
    ).format(table=table, where=where)
