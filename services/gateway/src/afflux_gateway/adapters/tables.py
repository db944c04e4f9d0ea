"""The gateway's tables, declared once (``afflux_plumbing.tables.Table``), and the two
statements a ``Table`` cannot say: counting a run of clicks, and adding to the report's
figures.

``counters`` is the reporting projection: one row per (partner, offer, UTC hour,
sub1..sub5) summing clicks, unique clicks, conversions, payout and revenue as the
events arrive, so a report reads a few rows per day whatever the traffic; ``totals``
holds the same sums per (partner, offer, hour) for reports that do not group by sub, and
``daily`` per (partner, offer, UTC day) for those that are also in UTC. An hour (not a
day) is the grain so that a report can be cut at midnight in any time zone with a
whole-hour offset. Absent subs are stored as ``''`` (a primary key column cannot be NULL).

``network_hourly`` and ``network_daily`` sum the same figures across partners, per
(offer, hour) and (offer, UTC day): the staff's dashboard reads the whole network's
days and offers from a few hundred rows, where ``daily`` holds one per partner (10,000
partners: 300,000 rows for 30 days, a second and a half per dashboard).

``partner_recent`` sums each (partner, currency)'s figures of the UTC days after
``recent_horizon.expired_through``, a day that moves forward once a day (``expire_recent``
takes the days that left out again): the whole network's leading partners of the last
30 days are one row each, ranked without a grouping (grouping 10,000 partners' rows
costs PostgreSQL 40 ms, reading them 3). The currency is the offer's, as the gateway
knows it when the figures are added; figures of an offer it does not know yet go to
``recent_unknown_offer`` per (partner, offer, day) instead, and a report prices them
with the offer as it knows it then (an offer's currency never changes).

``clicks`` keeps each valid click's subs by transaction_id: a click re-published under
another event_id is counted once (the figures move only for a click row that is new).
"""

from __future__ import annotations

from functools import cache

from psycopg import sql

from afflux_plumbing.tables import Table

SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")
_SUB_SPECS = tuple(f"{sub} text NOT NULL" for sub in SUBS)
_FIGURE_SPECS = (
    "clicks bigint NOT NULL DEFAULT 0",
    "unique_clicks bigint NOT NULL DEFAULT 0",
    "conversions bigint NOT NULL DEFAULT 0",
    "payout numeric NOT NULL DEFAULT 0",
    "revenue numeric NOT NULL DEFAULT 0",
)
FIGURES = ("clicks", "unique_clicks", "conversions", "payout", "revenue")
VISITOR = ("country", "device")
"""A click's visitor as reports group it (``''``: unknown, or a click recorded before
tracking read visitors)."""
_VISITOR_SPECS = ("country text NOT NULL DEFAULT ''", "device text NOT NULL DEFAULT ''")

PARTNERS = Table(
    "partners",
    ("partner_id text", "name text NOT NULL", "email text NOT NULL", "status text NOT NULL", "currency text"),
    key=("partner_id",),
)
PAYOUT_PROFILES = Table(
    "payout_profiles",
    ("partner_id text", "complete boolean NOT NULL", "missing jsonb NOT NULL DEFAULT '[]'", "country text",
     "tax_form text", "payment_method text"),
    key=("partner_id",),
)
"""What a partner's tax and payment profile is (complete, what is missing, the kinds): the
log's summary, never a number (those stay sealed with partners)."""
API_KEYS = Table(
    "api_keys",
    (
        "key_id text",
        "partner_id text NOT NULL",
        "key_sha256 text NOT NULL UNIQUE",
        "prefix text NOT NULL",
        "issued_at timestamptz NOT NULL",
        "revoked_at timestamptz",
    ),
    key=("key_id",),
)
OFFERS = Table(
    "offers",
    (
        "offer_id text",
        "name text NOT NULL",
        "status text NOT NULL",
        "visibility text NOT NULL",
        "currency text NOT NULL",
        "payout jsonb NOT NULL",
        "events jsonb NOT NULL",
    ),
    key=("offer_id",),
)
RELATIONSHIPS = Table(
    "relationships",
    (
        "offer_id text NOT NULL",
        "partner_id text NOT NULL",
        "approved boolean NOT NULL",
        "application boolean NOT NULL",
        "payout jsonb",
        "events jsonb NOT NULL",
    ),
    key=("partner_id", "offer_id"),
)
CLICKS = Table(
    "clicks",
    ("transaction_id text", "partner_id text NOT NULL", "offer_id text NOT NULL", *_SUB_SPECS,
     *_VISITOR_SPECS),
    key=("transaction_id",),
)
COUNTERS = Table(
    "counters",
    (
        "partner_id text NOT NULL",
        "offer_id text NOT NULL",
        "hour timestamptz NOT NULL",
        *_SUB_SPECS,
        *_FIGURE_SPECS,
    ),
    key=("partner_id", "hour", "offer_id", *SUBS),
)
TOTALS = Table(
    "totals",
    ("partner_id text NOT NULL", "offer_id text NOT NULL", "hour timestamptz NOT NULL", *_FIGURE_SPECS),
    key=("partner_id", "hour", "offer_id"),
)
DAILY = Table(
    "daily",
    ("partner_id text NOT NULL", "offer_id text NOT NULL", "day date NOT NULL", *_FIGURE_SPECS),
    key=("partner_id", "day", "offer_id"),
)
VISITORS = Table(
    "visitors",
    ("partner_id text NOT NULL", "offer_id text NOT NULL", "hour timestamptz NOT NULL", *_VISITOR_SPECS,
     *_FIGURE_SPECS),
    key=("partner_id", "hour", "offer_id", *VISITOR),
)
"""The figures per (partner, offer, hour) and the visitor's country and device: reports
grouped by country or device (in any zone: the hour is the grain)."""
NETWORK_HOURLY = Table(
    "network_hourly", ("offer_id text NOT NULL", "hour timestamptz NOT NULL", *_FIGURE_SPECS),
    key=("hour", "offer_id"),
)
NETWORK_DAILY = Table(
    "network_daily", ("offer_id text NOT NULL", "day date NOT NULL", *_FIGURE_SPECS), key=("day", "offer_id")
)
PARTNER_RECENT = Table(
    "partner_recent", ("partner_id text NOT NULL", "currency text NOT NULL", *_FIGURE_SPECS),
    key=("partner_id", "currency"),
)
RECENT_UNKNOWN_OFFER = Table(
    "recent_unknown_offer",
    ("partner_id text NOT NULL", "offer_id text NOT NULL", "day date NOT NULL", *_FIGURE_SPECS),
    key=("partner_id", "offer_id", "day"),
)
RECENT_HORIZON = Table("recent_horizon", ("id integer", "expired_through date NOT NULL"), key=("id",))
RECENT_DAYS = 30
"""How many UTC days up to today ``partner_recent`` always holds (and at most one more
until the day's expiry)."""
CONVERSIONS = Table(
    "conversions",
    (
        "conversion_id text",
        "partner_id text",
        "offer_id text",
        "transaction_id text",
        "event text",
        "kind text NOT NULL DEFAULT 'conversion'",
        "status text NOT NULL",
        "reason text",
        "payout numeric",
        "revenue numeric",
        "currency text",
        "converted_at timestamptz NOT NULL",
        "hour timestamptz NOT NULL",
        *_SUB_SPECS,
        *_VISITOR_SPECS,
    ),
    key=("conversion_id",),
)
"""Conversions, and the priced traffic (CPC clicks, CPM thousands) under payouts' ids for
them (``click:<transaction_id>``, ``cpm:<offer>:<partner>:<block>``), ``kind`` telling which."""
POSTBACKS = Table(
    "postbacks",
    (
        "delivery_id text",
        "partner_id text NOT NULL",
        "conversion_id text NOT NULL",
        "offer_id text NOT NULL",
        "url text NOT NULL",
        "status text NOT NULL",
        "attempts integer NOT NULL",
        "status_code integer",
        "error text",
        "ended_at timestamptz NOT NULL",
    ),
    key=("delivery_id",),
)
STATEMENTS = Table(
    "statements",
    (
        "statement_id text",
        "partner_id text NOT NULL",
        "currency text NOT NULL",
        "total numeric NOT NULL",
        "status text NOT NULL",
        "period_end timestamptz",
        "issued_at timestamptz NOT NULL",
        "paid_at timestamptz",
        "reference text",
        "lines jsonb NOT NULL DEFAULT '[]'",
        "hold_reason text",
        "paid_currency text",
        "paid_total numeric",
    ),
    key=("statement_id",),
)
ENDED_SESSIONS = Table("ended_sessions", ("nonce text", "expires_at timestamptz NOT NULL"), key=("nonce",))
"""Portal sessions signed out before they expired (kept until then): sign-out ends a
session on every instance, not only in the browser that held its cookie."""

TABLES = (
    PARTNERS,
    PAYOUT_PROFILES,
    API_KEYS,
    OFFERS,
    RELATIONSHIPS,
    CLICKS,
    COUNTERS,
    TOTALS,
    DAILY,
    VISITORS,
    NETWORK_HOURLY,
    NETWORK_DAILY,
    PARTNER_RECENT,
    RECENT_UNKNOWN_OFFER,
    RECENT_HORIZON,
    CONVERSIONS,
    POSTBACKS,
    STATEMENTS,
    ENDED_SESSIONS,
)

VIEW_DDL = [
    *(ddl for table in TABLES for ddl in table.ddl()),
    "CREATE INDEX IF NOT EXISTS counters_by_hour ON {schema}.counters (hour)",
    "CREATE INDEX IF NOT EXISTS totals_by_hour ON {schema}.totals (hour)",
    "CREATE INDEX IF NOT EXISTS daily_by_day ON {schema}.daily (day)",
    "CREATE INDEX IF NOT EXISTS conversions_by_partner "
    "ON {schema}.conversions (partner_id, converted_at, conversion_id)",
    "CREATE INDEX IF NOT EXISTS postbacks_by_partner ON {schema}.postbacks (partner_id, ended_at)",
    "CREATE INDEX IF NOT EXISTS statements_by_partner ON {schema}.statements (partner_id, issued_at)",
    "CREATE INDEX IF NOT EXISTS ended_sessions_by_expiry ON {schema}.ended_sessions (expires_at)",
    # A deployment that kept figures before the network rollups existed: they start from
    # what the per-partner tables hold (once: under the DDL lock, while they are empty).
    f"INSERT INTO {{schema}}.network_hourly (hour, offer_id, {', '.join(FIGURES)}) "
    f"SELECT hour, offer_id, {', '.join(f'sum({f})' for f in FIGURES)} FROM {{schema}}.totals "
    "WHERE NOT EXISTS (SELECT 1 FROM {schema}.network_hourly) GROUP BY 1, 2",
    f"INSERT INTO {{schema}}.network_daily (day, offer_id, {', '.join(FIGURES)}) "
    f"SELECT day, offer_id, {', '.join(f'sum({f})' for f in FIGURES)} FROM {{schema}}.daily "
    "WHERE NOT EXISTS (SELECT 1 FROM {schema}.network_daily) GROUP BY 1, 2",
    "INSERT INTO {schema}.recent_horizon (id, expired_through) "
    f"VALUES (1, (now() AT TIME ZONE 'UTC')::date - {RECENT_DAYS}) ON CONFLICT DO NOTHING",
    f"INSERT INTO {{schema}}.partner_recent (partner_id, currency, {', '.join(FIGURES)}) "
    f"SELECT d.partner_id, o.currency, {', '.join(f'sum(d.{f})' for f in FIGURES)} FROM {{schema}}.daily d "
    "JOIN {schema}.offers o USING (offer_id) "
    "WHERE d.day > (SELECT expired_through FROM {schema}.recent_horizon) "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.partner_recent) GROUP BY 1, 2",
    f"INSERT INTO {{schema}}.recent_unknown_offer (partner_id, offer_id, day, {', '.join(FIGURES)}) "
    f"SELECT d.partner_id, d.offer_id, d.day, {', '.join(f'd.{f}' for f in FIGURES)} FROM {{schema}}.daily d "
    "WHERE d.day > (SELECT expired_through FROM {schema}.recent_horizon) "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.offers o WHERE o.offer_id = d.offer_id) "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.recent_unknown_offer)",
]


def _names(columns: tuple[str, ...], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{name}" for name in columns)


_DIMENSIONS = ("partner_id", "hour", "offer_id", *SUBS)


def _sums(prefix: str) -> str:
    return ", ".join(f"sum({prefix}{name}) AS {name}" for name in FIGURES)


_SUMS = _sums("")
_RECENT = "(hour AT TIME ZONE 'UTC')::date > (SELECT expired_through FROM {recent_horizon})"

_ADD = ", ".join(f"{name} = {{alias}}.{name} + excluded.{name}" for name in FIGURES)


def _into_figures(source: str) -> str:
    """The tail of a statement whose CTE ``source`` has a row of figures per (partner,
    hour, offer, subs): added to ``counters``, ``totals`` (per hour), ``daily`` (per UTC
    day), ``partner_recent`` (days after its horizon) and the network's per (offer, hour)
    and (offer, day), each summed per its key first. Every instance adds to the same
    network rows: each in key order, so two runs wait for each other, never deadlock."""
    return (
        f"by_sub AS (INSERT INTO {{counters}} AS c ({_names(_DIMENSIONS)}, {_names(FIGURES)}) "
        f"SELECT {_names(_DIMENSIONS)}, {_SUMS} FROM {source} GROUP BY {_names(_DIMENSIONS)} "
        f"ON CONFLICT ({_names(COUNTERS.key)}) DO UPDATE SET {_ADD.format(alias='c')}), "
        f"by_hour AS (INSERT INTO {{totals}} AS t (partner_id, hour, offer_id, {_names(FIGURES)}) "
        f"SELECT partner_id, hour, offer_id, {_SUMS} FROM {source} GROUP BY 1, 2, 3 "
        f"ON CONFLICT ({_names(TOTALS.key)}) DO UPDATE SET {_ADD.format(alias='t')}), "
        f"by_day AS (INSERT INTO {{daily}} AS d (partner_id, day, offer_id, {_names(FIGURES)}) "
        f"SELECT partner_id, (hour AT TIME ZONE 'UTC')::date, offer_id, {_SUMS} FROM {source} "
        "GROUP BY 1, 2, 3 "
        f"ON CONFLICT ({_names(DAILY.key)}) DO UPDATE SET {_ADD.format(alias='d')}), "
        f"by_visitor AS (INSERT INTO {{visitors}} AS v ({_names(VISITORS.key)}, {_names(FIGURES)}) "
        f"SELECT {_names(VISITORS.key)}, {_SUMS} FROM {source} GROUP BY {_names(VISITORS.key)} "
        f"ON CONFLICT ({_names(VISITORS.key)}) DO UPDATE SET {_ADD.format(alias='v')}), "
        f"recent AS (INSERT INTO {{partner_recent}} AS r (partner_id, currency, {_names(FIGURES)}) "
        f"SELECT s.partner_id, o.currency, {_sums('s.')} FROM {source} s JOIN {{offers}} o USING (offer_id) "
        f"WHERE {_RECENT} GROUP BY 1, 2 ORDER BY 1, 2 "
        f"ON CONFLICT ({_names(PARTNER_RECENT.key)}) DO UPDATE SET {_ADD.format(alias='r')}), "
        "unknown AS (INSERT INTO {recent_unknown_offer} AS u "
        f"(partner_id, offer_id, day, {_names(FIGURES)}) "
        f"SELECT partner_id, offer_id, (hour AT TIME ZONE 'UTC')::date, {_SUMS} FROM {source} s "
        f"WHERE {_RECENT} AND NOT EXISTS (SELECT 1 FROM {{offers}} o WHERE o.offer_id = s.offer_id) "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
        f"ON CONFLICT ({_names(RECENT_UNKNOWN_OFFER.key)}) DO UPDATE SET {_ADD.format(alias='u')}), "
        f"network_by_hour AS (INSERT INTO {{network_hourly}} AS n (hour, offer_id, {_names(FIGURES)}) "
        f"SELECT hour, offer_id, {_SUMS} FROM {source} GROUP BY 1, 2 ORDER BY 1, 2 "
        f"ON CONFLICT ({_names(NETWORK_HOURLY.key)}) DO UPDATE SET {_ADD.format(alias='n')}) "
        f"INSERT INTO {{network_daily}} AS n (day, offer_id, {_names(FIGURES)}) "
        f"SELECT (hour AT TIME ZONE 'UTC')::date, offer_id, {_SUMS} FROM {source} "
        "GROUP BY 1, 2 ORDER BY 1, 2 "
        f"ON CONFLICT ({_names(NETWORK_DAILY.key)}) DO UPDATE SET {_ADD.format(alias='n')}"
    )


def _targets(schema: str) -> dict[str, sql.Composable]:
    return {
        "counters": COUNTERS.ident(schema),
        "totals": TOTALS.ident(schema),
        "daily": DAILY.ident(schema),
        "visitors": VISITORS.ident(schema),
        "network_hourly": NETWORK_HOURLY.ident(schema),
        "network_daily": NETWORK_DAILY.ident(schema),
        "partner_recent": PARTNER_RECENT.ident(schema),
        "recent_unknown_offer": RECENT_UNKNOWN_OFFER.ident(schema),
        "offers": OFFERS.ident(schema),
        "recent_horizon": RECENT_HORIZON.ident(schema),
        "clicks": CLICKS.ident(schema),
    }


@cache
def count_clicks(schema: str) -> sql.Composed:
    """A run of valid clicks (one JSON parameter: transaction_id, partner_id, offer_id,
    sub1..sub5, country, device, hour, uniq 0|1) kept in ``clicks`` and counted, in one
    statement: a click
    whose transaction_id is known (re-published), or twice in the run, counts once.
    Rendered to its text once, as the plumbing's ``Table`` statements are: psycopg would
    compose its identifiers anew on every run of clicks."""
    return _text(sql.SQL(
        "WITH input AS (SELECT DISTINCT ON (transaction_id) * FROM json_to_recordset(%s::json) AS i("
        "transaction_id text, partner_id text, offer_id text, sub1 text, sub2 text, sub3 text, sub4 text, "
        "sub5 text, country text, device text, hour timestamptz, uniq int) ORDER BY transaction_id), "
        "fresh AS (INSERT INTO {clicks} (transaction_id, partner_id, offer_id, " + _names((*SUBS, *VISITOR))
        + ") SELECT transaction_id, partner_id, offer_id, " + _names((*SUBS, *VISITOR)) + " FROM input "
        "ON CONFLICT DO NOTHING RETURNING transaction_id), "
        "counted AS (SELECT " + _names((*_DIMENSIONS, *VISITOR), "input.") + ", 1 AS clicks, "
        "uniq AS unique_clicks, "
        "0 AS conversions, 0::numeric AS payout, 0::numeric AS revenue "
        "FROM input JOIN fresh USING (transaction_id)), " + _into_figures("counted")
    ).format(**_targets(schema)))


def _text(statement: sql.Composed) -> sql.Composed:
    return sql.Composed([sql.SQL(statement.as_string(None))])


@cache
def add_figures(schema: str) -> sql.Composed:
    """Add many rows of figures (one JSON parameter: partner_id, hour, offer_id, sub1..sub5,
    country, device and the five figures) to every table of figures, in one statement."""
    typed = ", ".join(
        f"{VISITORS.column(name).name} {VISITORS.column(name).type}"
        if name in VISITOR else f"{COUNTERS.column(name).name} {COUNTERS.column(name).type}"
        for name in (*_DIMENSIONS, *VISITOR, *FIGURES)
    )
    return sql.SQL(
        "WITH moved AS (SELECT * FROM json_to_recordset(%s::json) AS m("
        + typed
        + ")), "
        + _into_figures("moved")
    ).format(**_targets(schema))
