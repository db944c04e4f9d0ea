"""The report's rollups answer exactly what the per-partner days say: the network's days
and offers (``network_daily``, ``network_hourly``) and its leading partners of the last
30 days (``partner_recent``, before and after the daily expiry, and while it lags),
whichever table a report reads; a deployment that kept figures before the rollups
existed starts them from its per-partner tables."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from psycopg import sql

from afflux_gateway.adapters import tables as t
from afflux_gateway.adapters.report_sql import reads_recent
from afflux_gateway.adapters.views import GatewayStore, PostgresViews
from afflux_gateway.application.reads import ReportRow
from afflux_gateway.domain.conversions import Move
from afflux_gateway.domain.report import GroupBy, Window
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.store import Write

TODAY = datetime.now(UTC).date()
UTC_ZONE = ZoneInfo("UTC")
PARTNERS = [f"p-{n}" for n in range(12)]
OFFERS = ("o-eur", "o-usd")


@pytest.fixture(scope="module")
def database_url(infra: Any) -> str:
    return str(infra.new_database())


@pytest.fixture
def store(database_url: str) -> Iterator[GatewayStore]:
    opened = open_store(GatewayStore, database_url, f"gateway_rollups_{secrets.token_hex(4)}")
    try:
        yield opened
    finally:
        opened.close()


def execute(store: GatewayStore, *writes: Write | None) -> None:
    with store.tracked_recorder.datastore.transaction(commit=True) as curs:
        for write in writes:
            if write is not None:
                curs.execute(write.statement, write.params)


def seed(store: GatewayStore, views: PostgresViews) -> None:
    """Offers in two currencies; for 40 days up to today, a conversion of partner n on
    day d when (n + d) % 3 == 0, paying n + d, and one reversal that cancels a day's
    figures of partner 0 (a group left at zero)."""
    execute(store, *(known(store, offer, offer[-3:].upper()) for offer in OFFERS))
    moves = []
    for back in range(40):
        day = TODAY - timedelta(days=back)
        for n, partner in enumerate(PARTNERS):
            if (n + back) % 3 == 0:
                at = datetime.combine(day, time(n % 24), UTC)
                amount = Decimal(n + back)
                moves.append(Move(partner, OFFERS[n % 2], at, ("",) * 5, 1, amount, amount * 2))
    cancelled = datetime.combine(TODAY - timedelta(days=3), time(5), UTC)
    moves += [Move("p-zero", OFFERS[0], cancelled, ("",) * 5, 1, Decimal("4"), Decimal("6")),
              Move("p-zero", OFFERS[0], cancelled, ("",) * 5, -1, Decimal("-4"), Decimal("-6"))]
    execute(store, views.add_figures(moves))


def known(store: GatewayStore, offer_id: str, currency: str) -> Write:
    """The offer as the gateway's view holds it once its OfferCreated is applied."""
    statement = sql.SQL(
        "INSERT INTO {} (offer_id, name, status, visibility, currency, payout, events) "
        "VALUES (%s, %s, 'active', 'public', %s, '{{}}', '[]')"
    ).format(t.OFFERS.ident(store.schema))
    return Write(statement, (offer_id, offer_id, currency))


def from_daily(store: GatewayStore, first: date, last: date) -> list[tuple[Any, ...]]:
    """What a partner report must say, summed straight from the per-partner days."""
    rows = store.query(
        sql.SQL("SELECT d.partner_id, o.currency, sum(d.conversions) AS c, sum(d.payout) AS p, "
                "sum(d.revenue) AS r FROM {} d LEFT JOIN {} o USING (offer_id) WHERE d.day BETWEEN %s AND %s "
                "GROUP BY 1, 2 HAVING sum(d.conversions) <> 0 OR sum(d.payout) <> 0 OR sum(d.revenue) <> 0 "
                "ORDER BY 1, 2").format(t.DAILY.ident(store.schema), t.OFFERS.ident(store.schema)),
        (first, last),
    )
    return [(r["partner_id"], r["currency"] or "", int(r["c"]), r["p"], r["r"]) for r in rows]


def shown(rows: list[ReportRow]) -> list[tuple[Any, ...]]:
    return [(r.group, r.currency, r.figures.conversions, r.figures.payout, r.figures.revenue) for r in rows]


def window(first: date, last: date = TODAY, zone: str = "UTC") -> Window:
    return Window(first, last, ZoneInfo(zone))


def test_the_networks_days_and_offers_are_the_sums_of_every_partners(store: GatewayStore) -> None:
    views = PostgresViews(store)
    seed(store, views)
    span = window(TODAY - timedelta(days=35))
    for group_by in (GroupBy.DAY, GroupBy.OFFER):
        for zone in ("UTC", "Europe/Paris"):
            network = views.report(window(span.first, span.last, zone), group_by, None)
            by_partner: dict[tuple[str, str], Decimal] = {}
            for partner in [*PARTNERS, "p-zero"]:
                for row in views.report(window(span.first, span.last, zone), group_by, partner):
                    key = (row.group, row.currency)
                    by_partner[key] = by_partner.get(key, Decimal(0)) + row.figures.payout
            assert {(r.group, r.currency): r.figures.payout for r in network} == by_partner, (group_by, zone)
            assert network


def test_the_leading_partners_of_the_last_30_days_are_exact_before_and_after_the_daily_expiry(
    store: GatewayStore,
) -> None:
    views = PostgresViews(store)
    seed(store, views)
    dashboard = window(TODAY - timedelta(days=29))
    assert reads_recent(dashboard, GroupBy.PARTNER, False, TODAY)
    expected = from_daily(store, dashboard.first, dashboard.last)
    assert shown(views.report(dashboard, GroupBy.PARTNER, None)) == expected
    assert "p-zero" not in {row[0] for row in expected}
    shorter = window(TODAY - timedelta(days=9), TODAY - timedelta(days=2))
    expected_shorter = from_daily(store, shorter.first, shorter.last)
    assert shown(views.report(shorter, GroupBy.PARTNER, None)) == expected_shorter

    # Tomorrow, before its expiry has run: the rollup still holds the day that left.
    tomorrow = window(TODAY - timedelta(days=28))
    assert shown(views.report(tomorrow, GroupBy.PARTNER, None)) == from_daily(store, tomorrow.first, TODAY)
    views.expire_recent(TODAY + timedelta(days=1))
    views.expire_recent(TODAY + timedelta(days=1))  # once more, or by a second instance: nothing twice
    assert shown(views.report(tomorrow, GroupBy.PARTNER, None)) == from_daily(store, tomorrow.first, TODAY)
    held = store.query(sql.SQL("SELECT count(*) AS n FROM {} WHERE conversions = 0 AND payout = 0").format(
        t.PARTNER_RECENT.ident(store.schema)))
    assert held[0]["n"] == 0


def test_top_keeps_the_groups_with_the_most_revenue_largest_first(store: GatewayStore) -> None:
    views = PostgresViews(store)
    seed(store, views)
    dashboard = window(TODAY - timedelta(days=29))
    every = views.report(dashboard, GroupBy.PARTNER, None)
    ranked = sorted(every, key=lambda r: (-r.figures.revenue, -r.figures.payout, r.group))
    assert shown(views.report(dashboard, GroupBy.PARTNER, None, top=3)) == shown(ranked[:3])
    older = window(TODAY - timedelta(days=39), TODAY - timedelta(days=20))
    assert not reads_recent(older, GroupBy.PARTNER, False, TODAY)
    ranked_older = sorted(views.report(older, GroupBy.PARTNER, None), key=lambda r: -r.figures.revenue)
    assert [r.group for r in views.report(older, GroupBy.PARTNER, None, top=2)] == [
        r.group for r in ranked_older[:2]
    ]


def test_a_deployment_with_figures_before_the_rollups_starts_them_from_its_days(
    store: GatewayStore, database_url: str
) -> None:
    views = PostgresViews(store)
    seed(store, views)
    dashboard = window(TODAY - timedelta(days=29))
    groupings = (GroupBy.DAY, GroupBy.OFFER, GroupBy.PARTNER)
    before = {g: shown(views.report(dashboard, g, None)) for g in groupings}
    execute(store, *(Write(sql.SQL("DROP TABLE {}").format(table.ident(store.schema)), ())
                     for table in (t.NETWORK_DAILY, t.NETWORK_HOURLY, t.PARTNER_RECENT, t.RECENT_HORIZON)))
    reopened = open_store(GatewayStore, database_url, store.schema)
    try:
        again = PostgresViews(reopened)
        assert {g: shown(again.report(dashboard, g, None)) for g in before} == before
        paris = window(dashboard.first, dashboard.last, "Europe/Paris")
        in_paris = shown(views.report(paris, GroupBy.OFFER, None))
        assert shown(again.report(paris, GroupBy.OFFER, None)) == in_paris
    finally:
        reopened.close()


def test_figures_of_an_offer_the_gateway_learns_of_later_rank_in_its_currency(store: GatewayStore) -> None:
    """Clicks can be applied before their offer (another topic, another consumer): they are
    kept apart per day, shown without a currency until the offer is known, then in its."""
    views = PostgresViews(store)
    seed(store, views)
    late = [Move("p-late", "o-late", datetime.combine(TODAY - timedelta(days=back), time(9), UTC),
                 ("",) * 5, 1, Decimal("500"), Decimal("900")) for back in range(0, 36, 5)]
    execute(store, views.add_figures(late))
    dashboard = window(TODAY - timedelta(days=29))
    unknown = shown(views.report(dashboard, GroupBy.PARTNER, None))
    assert unknown == from_daily(store, dashboard.first, TODAY)
    assert ("p-late", "", 6, Decimal("3000"), Decimal("5400")) in unknown
    execute(store, known(store, "o-late", "GBP"))
    execute(store, views.add_figures(late[:1]))  # known now: into the rollup itself
    ranked = shown(views.report(dashboard, GroupBy.PARTNER, None, top=1))
    assert ranked == [("p-late", "GBP", 7, Decimal("3500"), Decimal("6300"))]
    assert shown(views.report(dashboard, GroupBy.PARTNER, None)) == from_daily(store, dashboard.first, TODAY)
    views.expire_recent(TODAY + timedelta(days=5))
    after = window(TODAY - timedelta(days=24))
    expired = shown(views.report(after, GroupBy.PARTNER, None))
    assert expired == from_daily(store, after.first, TODAY)
    assert ("p-late", "GBP", 6, Decimal("3000"), Decimal("5400")) in expired
