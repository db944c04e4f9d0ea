"""The report's statements: which table answers a report, and the daily expiry of the
leading partners' rollup.

A report reads the smallest table that holds its answer exactly:

- grouped by sub: ``counters`` (per hour); by the visitor's country or device:
  ``visitors`` (per hour);
- the whole network by day or offer: ``network_daily`` (UTC) or ``network_hourly``;
- the whole network by partner, over UTC days that all lie within the last 30:
  ``partner_recent`` (one row per partner and currency), with the figures of offers the
  gateway did not know when they came (``recent_unknown_offer``), less the days it still
  holds that are before the window (those the daily expiry has not taken out yet, and
  any the window leaves out) and after it: those few rows are grouped and joined to the
  rollup's, the rollup itself is read as it is;
- anything else: ``daily`` (UTC) or ``totals`` (per hour), per partner.

``top`` keeps the N groups with the most revenue (then payout), largest first: the
console's leading partners are eight rows, not 10,000 sent and sorted by the caller.
"""

from __future__ import annotations

from datetime import date, timedelta

from psycopg import sql

from afflux_gateway.adapters import tables as t
from afflux_gateway.domain.report import VISITOR_GROUPINGS, GroupBy, Window

UTC_NAMES = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
        "GMT",
        "Etc/GMT",
        "Etc/GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "Etc/Greenwich",
        "Greenwich",
    }
)
"""Zones always at UTC: their days are UTC days, so their reports read the daily tables."""

_GROUP_COLUMN: dict[GroupBy, sql.Composable] = {
    GroupBy.OFFER: sql.SQL("c.offer_id"),
    GroupBy.PARTNER: sql.SQL("c.partner_id"),
    GroupBy.COUNTRY: sql.SQL("c.country"),
    GroupBy.DEVICE: sql.SQL("c.device"),
    **{
        g: sql.SQL("c.{}").format(sql.Identifier(g.value))
        for g in (GroupBy.SUB1, GroupBy.SUB2, GroupBy.SUB3, GroupBy.SUB4, GroupBy.SUB5)
    },
}
_FIGURES = sql.SQL(", ").join(sql.Identifier(name) for name in t.FIGURES)
_NEGATED = sql.SQL(", ").join(sql.SQL("-{}").format(sql.Identifier(name)) for name in t.FIGURES)
_ANY_FIGURE = sql.SQL(" OR ").join(sql.SQL("sum(s.{}) <> 0").format(sql.Identifier(n)) for n in t.FIGURES)
_ANY_ROW_FIGURE = sql.SQL(" OR ").join(sql.SQL("{} <> 0").format(sql.Identifier(n)) for n in t.FIGURES)


def reads_recent(window: Window, group_by: GroupBy, one_partner: bool, today: date) -> bool:
    """Whether ``partner_recent`` answers: the network by partner over UTC days that the
    rollup is sure to hold (its horizon never passes today - 30)."""
    return (
        group_by is GroupBy.PARTNER
        and not one_partner
        and window.zone.key in UTC_NAMES
        and window.first > today - timedelta(days=t.RECENT_DAYS)
    )


def report_statement(
    schema: str, window: Window, group_by: GroupBy, one_partner: bool, today: date, top: int | None
) -> sql.Composed:
    """The report; groups whose figures are all zero (a reversal that cancelled a day's
    conversion) are left out whatever the table."""
    if reads_recent(window, group_by, one_partner, today):
        return _recent(schema, top)
    group, source, span = _source(schema, window, group_by, one_partner)
    shown = sql.SQL("to_char(s.grp, 'YYYY-MM-DD')") if group_by is GroupBy.DAY else sql.SQL("s.grp")
    only = sql.SQL(" AND c.partner_id = %(partner_id)s") if one_partner else sql.SQL("")
    order = (
        sql.SQL("ORDER BY sum(s.revenue) DESC, sum(s.payout) DESC, s.grp, 2 LIMIT {}").format(
            sql.Literal(top)
        )
        if top is not None
        else sql.SQL("ORDER BY s.grp, 2")
    )
    # Summed per (group, offer) first: the offers join and the final grouping see a few
    # hundred rows, not one per hour.
    return sql.SQL(
        "SELECT {shown} AS grp, coalesce(o.currency, '') AS currency, sum(s.clicks) AS clicks, "
        "sum(s.unique_clicks) AS unique_clicks, sum(s.conversions) AS conversions, "
        "sum(s.payout) AS payout, sum(s.revenue) AS revenue FROM ("
        "SELECT {group} AS grp, c.offer_id, sum(c.clicks) AS clicks, sum(c.unique_clicks) AS unique_clicks, "
        "sum(c.conversions) AS conversions, sum(c.payout) AS payout, sum(c.revenue) AS revenue "
        "FROM {source} c WHERE {span}{only} GROUP BY 1, 2"
        ") AS s LEFT JOIN {offers} o ON o.offer_id = s.offer_id GROUP BY s.grp, 2 HAVING {any} {order}"
    ).format(
        shown=shown,
        group=group,
        source=source,
        span=span,
        only=only,
        offers=t.OFFERS.ident(schema),
        any=_ANY_FIGURE,
        order=order,
    )


def _source(
    schema: str, window: Window, group_by: GroupBy, one_partner: bool
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """The grouping column, the table summed (as ``c``) and the window's condition."""
    by_sub = group_by.value.startswith("sub")
    by_visitor = group_by in VISITOR_GROUPINGS
    network = not one_partner and group_by in (GroupBy.DAY, GroupBy.OFFER)
    hourly, daily = (t.NETWORK_HOURLY, t.NETWORK_DAILY) if network else (t.TOTALS, t.DAILY)
    if by_sub or by_visitor or window.zone.key not in UTC_NAMES:
        source = t.COUNTERS if by_sub else t.VISITORS if by_visitor else hourly
        span = sql.SQL("c.hour >= %(start)s AND c.hour < %(end)s")
        day: sql.Composable = sql.SQL("date_trunc('day', c.hour AT TIME ZONE %(tz)s)")
    else:
        source, span, day = daily, sql.SQL("c.day BETWEEN %(first)s AND %(last)s"), sql.SQL("c.day")
    group = day if group_by is GroupBy.DAY else _GROUP_COLUMN[group_by]
    return group, source.ident(schema), span


def _recent(schema: str, top: int | None) -> sql.Composed:
    """The partners of a window within the last 30 UTC days: ``partner_recent`` plus the
    figures of offers unknown when they came, less the days the rollup holds outside the
    window (after its horizon and before ``first``, or after ``last``)."""
    figures = [sql.Identifier(name) for name in t.FIGURES]
    both = sql.SQL(", ").join(
        sql.SQL("coalesce(r.{0}, 0) + coalesce(x.{0}, 0) AS {0}").format(f) for f in figures
    )
    order = (
        sql.SQL("ORDER BY revenue DESC, payout DESC, grp, currency LIMIT {}").format(sql.Literal(top))
        if top is not None
        else sql.SQL("ORDER BY grp, currency")
    )
    return sql.SQL(
        "SELECT * FROM (SELECT coalesce(r.partner_id, x.partner_id) AS grp, "
        "coalesce(r.currency, x.currency) AS currency, {both} FROM {recent} r FULL JOIN ("
        "SELECT c.partner_id, coalesce(o.currency, '') AS currency, {sums} FROM ("
        "SELECT partner_id, offer_id, {figures} FROM {unknown} UNION ALL "
        "SELECT partner_id, offer_id, {negated} FROM {daily} "
        "WHERE (day > (SELECT expired_through FROM {horizon}) AND day < %(first)s) OR day > %(last)s"
        ") c LEFT JOIN {offers} o ON o.offer_id = c.offer_id GROUP BY 1, 2"
        ") x ON x.partner_id = r.partner_id AND x.currency = r.currency"
        ") s WHERE {any} {order}"
    ).format(
        both=both,
        recent=t.PARTNER_RECENT.ident(schema),
        sums=sql.SQL(", ").join(sql.SQL("sum(c.{0}) AS {0}").format(f) for f in figures),
        figures=_FIGURES,
        unknown=t.RECENT_UNKNOWN_OFFER.ident(schema),
        negated=_NEGATED,
        daily=t.DAILY.ident(schema),
        horizon=t.RECENT_HORIZON.ident(schema),
        offers=t.OFFERS.ident(schema),
        any=_ANY_ROW_FIGURE,
        order=order,
    )


def expire_recent(schema: str) -> list[sql.Composed]:
    """Take the days up to ``%(through)s`` out of the leading partners' rollup and move
    its horizon there, in one transaction: first a lock that waits for the runs adding to
    it and holds new ones back (a run's figures are in ``daily`` and in the rollup, or in
    neither, when the expiry reads them); then the days' figures less those kept apart as
    of offers unknown then (an offer unknown still has all its figures apart), the days
    kept apart, the horizon, and the rows left at zero."""
    recent, unknown = t.PARTNER_RECENT.ident(schema), t.RECENT_UNKNOWN_OFFER.ident(schema)
    figures = [sql.Identifier(name) for name in t.FIGURES]
    zero = sql.SQL(" AND ").join(sql.SQL("{} = 0").format(f) for f in figures)
    return [
        sql.SQL("LOCK TABLE {}, {} IN SHARE ROW EXCLUSIVE MODE").format(recent, unknown),
        sql.SQL(
            "UPDATE {recent} r SET {take} FROM (SELECT partner_id, currency, {sums} FROM ("
            "SELECT d.partner_id, o.currency, {daily_figures} FROM {daily} d "
            "JOIN {offers} o USING (offer_id) "
            "WHERE d.day > (SELECT expired_through FROM {horizon}) AND d.day <= %(through)s UNION ALL "
            "SELECT u.partner_id, o.currency, {unknown_negated} FROM {unknown} u "
            "JOIN {offers} o USING (offer_id) WHERE u.day <= %(through)s) c GROUP BY 1, 2) g "
            "WHERE r.partner_id = g.partner_id AND r.currency = g.currency"
        ).format(
            recent=recent,
            take=sql.SQL(", ").join(sql.SQL("{0} = r.{0} - g.{0}").format(f) for f in figures),
            sums=sql.SQL(", ").join(sql.SQL("sum({0}) AS {0}").format(f) for f in figures),
            daily_figures=sql.SQL(", ").join(sql.SQL("d.{0}").format(f) for f in figures),
            daily=t.DAILY.ident(schema),
            offers=t.OFFERS.ident(schema),
            horizon=t.RECENT_HORIZON.ident(schema),
            unknown_negated=sql.SQL(", ").join(sql.SQL("-u.{0}").format(f) for f in figures),
            unknown=unknown,
        ),
        sql.SQL("DELETE FROM {} WHERE day <= %(through)s").format(unknown),
        sql.SQL("UPDATE {} SET expired_through = greatest(expired_through, %(through)s)").format(
            t.RECENT_HORIZON.ident(schema)
        ),
        sql.SQL("DELETE FROM {} WHERE {}").format(recent, zero),
    ]
