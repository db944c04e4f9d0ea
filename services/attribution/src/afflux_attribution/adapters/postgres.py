"""The ports of ``application/ports.py`` on PostgreSQL: every read takes many keys in one
statement, every write is one batch statement (``afflux_plumbing.tables``).

Reads go through the store's ``query``, so inside a run they use the run's connection
and see what the run wrote. The counts that limits are judged by (tallies, daily
counters, impression counts) are read *locked*: their rows are created if missing, then
selected ``FOR UPDATE`` in key order, always after the event store's insert lock (every
handler that locks them takes that lock first), so two instances' runs take turns on
them and never wait on each other in a cycle, and a cap of N pays exactly N.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from psycopg import sql

from afflux_attribution.adapters import views
from afflux_attribution.adapters.views import (
    CLICKS,
    CONVERSIONS,
    CONVERTED_EVENTS,
    COUPONS,
    CREDITED_ORDERS,
    HELD,
    IMPRESSION_COUNTS,
    IP_COUNTS,
    OFFER_TERMS,
    PARTNERS,
    PROGRAM_COUNTS,
    RELATIONSHIP_TERMS,
    TRAFFIC_COUNTERS,
    TRAFFIC_OUTCOMES,
    UNIQUE_VISITS,
)
from afflux_attribution.application.attribution import Attribution, ConversionFilter, ConversionPage, PageKey
from afflux_attribution.application.ports import Held, IndexedClick, IpKey, OutcomeKey, Taken
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.program import Tally, TallyKey
from afflux_attribution.domain.rules import Click
from afflux_attribution.domain.terms import OfferTerms, RelationshipTerms
from afflux_attribution.domain.traffic import CountKey, PartnerKey, UniqueKey
from afflux_contracts import PartnerStatus
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table, json_rows, keys_param

ADD = "{table}.%s + excluded.%s"


def _add(*columns: str) -> dict[str, str]:
    return {column: ADD % (column, column) for column in columns}


def _keyed(table: Table, values: Mapping[Any, Any], column: str = "n") -> list[dict[str, Any]]:
    """Rows of ``table`` from {key tuple: value of ``column``}, in key order."""
    return [{**dict(zip(table.key, key, strict=True)), column: value}
            for key, value in sorted(values.items())]


def _rows(table: Table, values: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(table.column_names, row, strict=True)) for row in values]


def _last_by_key(table: Table, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per key, the last given (one statement cannot change a row twice)."""
    return list({tuple(row[k] for k in table.key): row for row in rows}.values())


class PostgresViews:
    """Attribution's views, for its handlers, its reviews and its HTTP reads."""

    def __init__(self, store: Attribution) -> None:
        self.store, self.schema = store, store.schema

    # -- helpers -------------------------------------------------------------------------

    def _select(self, table: Table, keys: Iterable[Any], by: Sequence[str] | None = None,
                columns: Sequence[str] | None = None, order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
        listed = list(keys)
        if not listed:
            return []
        by = tuple(by or table.key)
        rows = [dict(zip(by, key, strict=True)) if isinstance(key, tuple) else key for key in listed]
        statement = table.select(self.schema, by, columns, order_by)
        return [dict(row) for row in self.store.query(statement, keys_param(rows, by))]

    def _write(self, statement: sql.Composed, table: Table, rows: Iterable[Mapping[str, Any]]) -> list[Write]:
        write = table.write(statement, rows)
        return [write] if write is not None else []

    def _added(self, table: Table, values: Mapping[Any, int], column: str = "n") -> list[Write]:
        """Add each value to its key's counter ``column``."""
        return self._write(table.upsert(self.schema, _add(column)), table, _keyed(table, values, column))

    def _locked(self, table: Table, keys: Collection[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The rows of ``keys``, created (zero) if missing, locked until the run commits,
        in key order."""
        if not keys:
            return []
        rows = [dict(zip(table.key, key, strict=True)) for key in sorted(keys)]
        self.store.execute(table.insert(self.schema, table.key), (json_rows(rows),))
        locked = self.store.query(_locking(table, self.schema), keys_param(rows, table.key))
        return [dict(row) for row in locked]

    # -- terms (the partners consumer) ---------------------------------------------------------------

    def offer_terms(self, offer_ids: Collection[str]) -> dict[str, list[OfferTerms]]:
        found: dict[str, list[OfferTerms]] = {}
        rows = self._select(OFFER_TERMS, offer_ids, ("offer_id",), order_by=("offer_id", "effective_from"))
        for row in rows:
            found.setdefault(row["offer_id"], []).append(views.offer_terms_from(row))
        return found

    def relationship_terms(self, pairs: Collection[PartnerKey]) -> dict[PartnerKey, list[RelationshipTerms]]:
        found: dict[PartnerKey, list[RelationshipTerms]] = {}
        for row in self._select(RELATIONSHIP_TERMS, pairs, ("offer_id", "partner_id"),
                                order_by=("offer_id", "partner_id", "effective_from")):
            pair = (row["offer_id"], row["partner_id"])
            found.setdefault(pair, []).append(views.relationship_terms_from(row))
        return found

    def partner_statuses(self, partner_ids: Collection[str]) -> dict[str, PartnerStatus]:
        rows = self._select(PARTNERS, partner_ids)
        return {row["partner_id"]: PartnerStatus(row["status"]) for row in rows}

    def coupon_partners(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {(row["code"], row["offer_id"]): row["partner_id"] for row in self._select(COUPONS, keys)}

    def offer_versions(self, versions: Sequence[OfferTerms]) -> list[Write]:
        rows = _last_by_key(OFFER_TERMS, map(views.offer_terms_row, versions))
        return self._write(OFFER_TERMS.upsert(self.schema, OFFER_TERMS.column_names[2:]), OFFER_TERMS, rows)

    def relationship_versions(self, versions: Sequence[RelationshipTerms]) -> list[Write]:
        rows = _last_by_key(RELATIONSHIP_TERMS, map(views.relationship_terms_row, versions))
        statement = RELATIONSHIP_TERMS.upsert(self.schema, RELATIONSHIP_TERMS.column_names[3:])
        return self._write(statement, RELATIONSHIP_TERMS, rows)

    def partner_statuses_written(self, rows: Sequence[tuple[str, PartnerStatus, datetime]]) -> list[Write]:
        """Each partner's status, unless its row holds a newer one already."""
        newest: dict[str, tuple[str, PartnerStatus, datetime]] = {}
        for row in rows:
            if row[0] not in newest or newest[row[0]][2] <= row[2]:
                newest[row[0]] = row
        statement = PARTNERS.upsert(self.schema, {
            "status": "CASE WHEN excluded.status_at >= {table}.status_at THEN excluded.status "
                      "ELSE {table}.status END",
            "status_at": "GREATEST({table}.status_at, excluded.status_at)"})
        return self._write(statement, PARTNERS, [{"partner_id": p, "status": s, "status_at": at}
                                                 for p, s, at in newest.values()])

    def coupons_written(self, held: Sequence[tuple[str, str, Sequence[str]]]) -> list[Write]:
        """Each (offer, partner) holds exactly the codes given, the last given per pair;
        a code given to another partner moves to it."""
        last = {(offer, partner): codes for offer, partner, codes in held}
        dropped = self._write(COUPONS.delete(self.schema, ("offer_id", "partner_id")), COUPONS,
                              [{"offer_id": o, "partner_id": p} for o, p in last])
        codes = _last_by_key(COUPONS, ({"code": code.upper(), "offer_id": o, "partner_id": p}
                                       for o, p, codes in held for code in codes if last[(o, p)] == codes))
        return dropped + self._write(COUPONS.upsert(self.schema, ("partner_id",)), COUPONS, codes)

    # -- tallies ---------------------------------------------------------------------------

    def lock_event_store(self) -> None:
        """Take the event store's insert lock (held until the run commits) before anything
        that locks counts: so counts are only ever locked under it, and what a handler read
        of them, of the orders and of the events stays true until it commits."""
        for statement in self.store.tracked_recorder.lock_table_statements:
            self.store.execute(statement)

    def locked_tallies(self, keys: Collection[TallyKey]) -> dict[TallyKey, Tally]:
        return {(row["offer_id"], row["partner_id"], row["period"]): _tally(row)
                for row in self._locked(PROGRAM_COUNTS, keys)}

    def tallies(self, keys: Collection[TallyKey]) -> dict[TallyKey, Tally]:
        return {(row["offer_id"], row["partner_id"], row["period"]): _tally(row)
                for row in self._select(PROGRAM_COUNTS, keys)}

    def tallies_added(self, added: Mapping[TallyKey, Tally]) -> list[Write]:
        rows = [{"offer_id": o, "partner_id": p, "period": period, "conversions": t.conversions,
                 "approved": t.approved, "payout": t.payout, "revenue": t.revenue, "clicks": t.clicks}
                for (o, p, period), t in sorted(added.items())]
        statement = PROGRAM_COUNTS.upsert(self.schema, _add("conversions", "approved", "payout", "revenue",
                                                            "clicks"))
        return self._write(statement, PROGRAM_COUNTS, rows)

    # -- traffic --------------------------------------------------------------------------

    def clicks(self, transaction_ids: Collection[str]) -> dict[str, Click]:
        return {row["transaction_id"]: views.click_from(row) for row in self._select(CLICKS, transaction_ids)}

    def unique_taken(self, keys: Collection[UniqueKey]) -> set[UniqueKey]:
        rows = self._select(UNIQUE_VISITS, keys)
        return {(r["offer_id"], r["kind"], r["visitor"], int(r["span"])) for r in rows}

    def locked_counters(self, keys: Collection[CountKey]) -> dict[CountKey, int]:
        return {(r["offer_id"], r["counter"], r["subject"], r["day"]): int(r["n"])
                for r in self._locked(TRAFFIC_COUNTERS, keys)}

    def locked_impressions(self, pairs: Collection[PartnerKey]) -> dict[PartnerKey, int]:
        return {(r["offer_id"], r["partner_id"]): int(r["impressions"])
                for r in self._locked(IMPRESSION_COUNTS, pairs)}

    def traffic_written(self, clicks: Sequence[IndexedClick], taken: Mapping[UniqueKey, str],
                        counted: Mapping[CountKey, int], impressions: Mapping[PartnerKey, int],
                        outcomes: Mapping[OutcomeKey, int]) -> list[Write]:
        s = self.schema
        indexed = [views.click_row(c.click, c.visitor, c.pricing) for c in clicks]
        return [
            *self._write(CLICKS.insert(s), CLICKS, indexed),
            *self._write(UNIQUE_VISITS.insert(s), UNIQUE_VISITS, _keyed(UNIQUE_VISITS, taken, "ref")),
            *self._added(TRAFFIC_COUNTERS, counted),
            *self._added(IMPRESSION_COUNTS, impressions, "impressions"),
            *self._added(TRAFFIC_OUTCOMES, outcomes),
        ]

    def traffic(self, offer_id: str) -> list[dict[str, Any]]:
        """How the offer's paid-model traffic was judged: per partner, kind and outcome."""
        statement = sql.SQL("SELECT partner_id, kind, outcome, sum(n) AS n FROM {} WHERE offer_id = %s "
                            "GROUP BY partner_id, kind, outcome ORDER BY partner_id, kind, outcome").format(
            TRAFFIC_OUTCOMES.ident(self.schema))
        return [dict(row) for row in self.store.query(statement, (offer_id,))]

    # -- decisions ------------------------------------------------------------------------

    def decided(self, conversion_ids: Collection[str]) -> set[str]:
        rows = self._select(CONVERSIONS, conversion_ids, columns=("conversion_id",))
        return {row["conversion_id"] for row in rows}

    def converted(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(row["transaction_id"], row["event"]) for row in self._select(CONVERTED_EVENTS, pairs)}

    def credited(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(row["offer_id"], row["order_id"]) for row in self._select(CREDITED_ORDERS, pairs)}

    def ip_counts(self, keys: Collection[IpKey]) -> dict[IpKey, int]:
        rows = self._select(IP_COUNTS, keys)
        return {(r["offer_id"], r["ip"], r["day"]): int(r["conversions"]) for r in rows}

    def held(self, conversion_ids: Collection[str]) -> dict[str, Held]:
        return {row["conversion_id"]: views.held_from(row) for row in self._select(HELD, conversion_ids)}

    def hold(self, held: Sequence[Held]) -> None:
        """Committed at once, on a pooled connection of its own, outside the run (which
        commits nothing: it is parked); the decision deletes the rows."""
        rows = _last_by_key(HELD, map(views.held_row, held))
        statement = HELD.upsert(self.schema, ("reason", "message", "waits_for", "offer_id"))
        with self.store.tracked_recorder.datastore.pool.connection() as connection, connection.transaction():
            connection.execute(statement, (json_rows(rows),))

    def decisions_written(self, conversions: Sequence[Conversion], converted: Collection[Taken],
                          credited: Collection[Taken], ips: Mapping[IpKey, int]) -> list[Write]:
        s = self.schema
        return [
            *self._write(CONVERSIONS.insert(s), CONVERSIONS, map(views.conversion_row, conversions)),
            *self._write(HELD.delete(s), HELD, [{"conversion_id": c.conversion_id} for c in conversions]),
            *self._write(CREDITED_ORDERS.insert(s), CREDITED_ORDERS, _rows(CREDITED_ORDERS, credited)),
            *self._write(CONVERTED_EVENTS.insert(s), CONVERTED_EVENTS, _rows(CONVERTED_EVENTS, converted)),
            *self._added(IP_COUNTS, ips, "conversions"),
        ]

    # -- reviews ---------------------------------------------------------------------------

    def reviewed(self, conversion: Conversion) -> list[Write]:
        return self._write(CONVERSIONS.upsert(self.schema, views.REVIEWED), CONVERSIONS,
                           [views.conversion_row(conversion)])

    def appeal_written(self, conversion: Conversion, added: Mapping[TallyKey, Tally]) -> list[Write]:
        """An appealed conversion's row, the order and transaction event it now takes (unless
        another conversion holds them: it was a duplicate), and its share of the tallies."""
        s, conversion_id = self.schema, conversion.conversion_id
        credited = ([(conversion.offer_id, conversion.order_id, conversion_id)]
                    if conversion.order_id is not None else [])
        converted = ([(conversion.transaction_id, conversion.event, conversion_id)]
                     if conversion.clicked_at is not None else [])
        return [*self.reviewed(conversion),
                *self._write(CREDITED_ORDERS.insert(s), CREDITED_ORDERS, _rows(CREDITED_ORDERS, credited)),
                *self._write(CONVERTED_EVENTS.insert(s), CONVERTED_EVENTS,
                             _rows(CONVERTED_EVENTS, converted)),
                *self.tallies_added(added)]

    # -- the HTTP reads -----------------------------------------------------------------------

    def conversion(self, conversion_id: str) -> dict[str, Any] | None:
        rows = self._select(CONVERSIONS, [conversion_id])
        return rows[0] if rows else None

    def conversion_of_order(self, offer_id: str, order_id: str) -> str | None:
        rows = self._select(CREDITED_ORDERS, [(offer_id, order_id)])
        return str(rows[0]["conversion_id"]) if rows else None

    def conversions(self, where: ConversionFilter, limit: int, after: PageKey | None) -> ConversionPage:
        """One page of the decided conversions matching ``where``, in (converted_at,
        conversion_id) order (keyset pagination)."""
        asked = (("partner_id", where.partner_id), ("offer_id", where.offer_id), ("status", where.status))
        conditions: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(column))
                                            for column, value in asked if value is not None]
        params: list[Any] = [value for _, value in asked if value is not None]
        for condition, value in (("converted_at >= %s", where.since), ("converted_at < %s", where.until)):
            if value is not None:
                conditions.append(sql.SQL(condition))
                params.append(value)
        if after is not None:
            conditions.append(sql.SQL("(converted_at, conversion_id) > (%s, %s)"))
            params += [after.converted_at, after.conversion_id]
        filtered = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        statement = sql.SQL("SELECT * FROM {}{} ORDER BY converted_at, conversion_id LIMIT %s").format(
            CONVERSIONS.ident(self.schema), filtered)
        rows = [dict(row) for row in self.store.query(statement, (*params, limit + 1))]
        if len(rows) <= limit:
            return ConversionPage(rows, None)
        last = rows[limit - 1]
        return ConversionPage(rows[:limit], PageKey(views.utc(last["converted_at"]), last["conversion_id"]))


@cache
def _locking(table: Table, schema: str) -> sql.Composed:
    """Select many keys' rows of ``table``, locked, in key order (composed once)."""
    return sql.Composed([sql.SQL((table.select(schema, order_by=table.key) + sql.SQL(" FOR UPDATE OF t"))
                                 .as_string(None))])


def _tally(row: Mapping[str, Any]) -> Tally:
    return Tally(int(row["conversions"]), int(row["approved"]), Decimal(row["payout"]),
                 Decimal(row["revenue"]), int(row["clicks"]))


class AttributionStore(Attribution):
    """Attribution's store on PostgreSQL: its view tables, and its views as its ports."""

    view_ddl = views.VIEW_DDL

    def open_views(self) -> PostgresViews:
        return PostgresViews(self)
