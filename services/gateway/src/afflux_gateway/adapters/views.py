"""The gateway's views in PostgreSQL: its store (positions, inbox and tables in its own
schema) and every read and write the projections and the answers name.

Reads go through ``TrackedApplication.query``: inside a run that is the run's own
connection, so a segment sees what the segments before it wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from psycopg import errors, sql

from afflux_contracts import (
    ClickRecorded,
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerCreated,
    PartnerPayoutProfileSet,
    PartnerPostbackDelivered,
    PartnerPostbackFailed,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    StatementConverted,
    StatementHeld,
    StatementIssued,
    StatementPaid,
    StatementReleased,
)
from afflux_gateway.adapters import tables as t
from afflux_gateway.adapters.creatives import CREATIVES_DDL
from afflux_gateway.adapters.people import PEOPLE_DDL
from afflux_gateway.adapters.report_sql import expire_recent, report_statement
from afflux_gateway.adapters.smart_links import SMART_LINKS_DDL
from afflux_gateway.application.projection import SeenClick
from afflux_gateway.application.reads import ConversionKey, KeyHolder, ReportRow, Row
from afflux_gateway.domain.conversions import Conversion, Kind, Move, hour_of
from afflux_gateway.domain.report import Figures, GroupBy, InvalidReport, Window
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import Table, keys_param


class GatewayStore(TrackedApplication):
    """The gateway's schema: its consumers' positions and inbox, and its view tables."""

    name = "Gateway"
    view_ddl: ClassVar = [*t.VIEW_DDL, *PEOPLE_DDL, *SMART_LINKS_DDL, *CREATIVES_DDL]


def _statement_row(p: StatementIssued) -> dict[str, Any]:
    return {
        "statement_id": p.statement_id,
        "partner_id": p.partner_id,
        "currency": p.currency,
        "total": p.total,
        "status": p.status.value,
        "period_end": p.period_end,
        "issued_at": p.issued_at,
        "lines": [line.model_dump(mode="json") for line in p.lines],
    }


class PostgresViews:
    """``ProjectionViews`` and ``Views`` over a ``GatewayStore``."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.schema = store.schema

    def _table(self, table: Table) -> sql.Identifier:
        return table.ident(self.schema)

    # -- projection reads ----------------------------------------------------------------

    def conversions_by_id(self, conversion_ids: Collection[str]) -> dict[str, Conversion]:
        rows = self.store.query(
            t.CONVERSIONS.select(self.schema), keys_param(conversion_ids, ("conversion_id",))
        )
        return {row["conversion_id"]: _conversion(row) for row in rows}

    def clicks_seen(self, transaction_ids: Collection[str]) -> dict[str, SeenClick]:
        statement = t.CLICKS.select(self.schema, columns=("transaction_id", *t.SUBS, *t.VISITOR))
        rows = self.store.query(statement, keys_param(set(transaction_ids), ("transaction_id",)))
        return {
            row["transaction_id"]: SeenClick(
                tuple(row[sub] for sub in t.SUBS), (row["country"], row["device"])
            )
            for row in rows
        }

    # -- projection writes ---------------------------------------------------------------

    def save_partners(self, partners: Sequence[PartnerCreated | PartnerUpdated]) -> Write | None:
        rows = [
            {
                "partner_id": p.partner_id,
                "name": p.name,
                "email": p.email,
                "status": p.status.value,
                "currency": p.billing.currency if p.billing else None,
            }
            for p in partners
        ]
        return t.PARTNERS.write(t.PARTNERS.upsert(self.schema, ("name", "email", "status", "currency")), rows)

    def save_payout_profiles(self, profiles: Sequence[PartnerPayoutProfileSet]) -> Write | None:
        rows = [{"partner_id": p.partner_id, "complete": p.complete, "missing": list(p.missing),
                 "country": p.country, "tax_form": p.tax_form.value if p.tax_form else None,
                 "payment_method": p.payment_method.value if p.payment_method else None} for p in profiles]
        columns = ("complete", "missing", "country", "tax_form", "payment_method")
        return t.PAYOUT_PROFILES.write(t.PAYOUT_PROFILES.upsert(self.schema, columns), rows)

    def set_partner_status(self, changes: Sequence[PartnerStatusChanged]) -> Write | None:
        rows = [{"partner_id": p.partner_id, "status": p.status.value} for p in changes]
        return t.PARTNERS.write(t.PARTNERS.update(self.schema, ("status",)), rows)

    def add_keys(self, issued: Sequence[PartnerApiKeyIssued]) -> Write | None:
        rows = [
            {
                "key_id": p.key_id,
                "partner_id": p.partner_id,
                "key_sha256": p.key_sha256,
                "prefix": p.prefix,
                "issued_at": p.issued_at,
            }
            for p in issued
        ]
        statement = t.API_KEYS.insert(
            self.schema, ("key_id", "partner_id", "key_sha256", "prefix", "issued_at")
        )
        return t.API_KEYS.write(statement, rows)

    def revoke_keys(self, revoked: Sequence[PartnerApiKeyRevoked]) -> Write | None:
        rows = [{"key_id": p.key_id, "partner_id": p.partner_id, "revoked_at": p.revoked_at} for p in revoked]
        return t.API_KEYS.write(
            t.API_KEYS.update(self.schema, ("revoked_at",), by=("key_id", "partner_id")), rows
        )

    def save_offers(self, offers: Sequence[OfferCreated | OfferUpdated]) -> Write | None:
        rows = [
            {
                "offer_id": p.offer_id,
                "name": p.name,
                "status": p.status.value,
                "visibility": p.visibility.value,
                "currency": p.currency,
                "payout": p.payout.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in p.events],
            }
            for p in offers
        ]
        columns = ("name", "status", "visibility", "currency", "payout", "events")
        return t.OFFERS.write(t.OFFERS.upsert(self.schema, columns), rows)

    def set_offer_status(self, changes: Sequence[OfferStatusChanged]) -> Write | None:
        rows = [{"offer_id": p.offer_id, "status": p.status.value} for p in changes]
        return t.OFFERS.write(t.OFFERS.update(self.schema, ("status",)), rows)

    def save_relationships(self, relationships: Sequence[RelationshipSet]) -> Write | None:
        rows = [
            {
                "offer_id": p.offer_id,
                "partner_id": p.partner_id,
                "approved": p.approved,
                "application": p.application,
                "payout": p.payout.model_dump(mode="json") if p.payout else None,
                "events": [e.model_dump(mode="json") for e in p.events],
            }
            for p in relationships
        ]
        columns = ("approved", "application", "payout", "events")
        return t.RELATIONSHIPS.write(t.RELATIONSHIPS.upsert(self.schema, columns), rows)

    def count_clicks(self, clicks: Sequence[ClickRecorded]) -> Write | None:
        rows = [
            {
                "transaction_id": p.transaction_id,
                "partner_id": p.partner_id,
                "offer_id": p.offer_id,
                **{sub: getattr(p, sub) or "" for sub in t.SUBS},
                "country": p.country or "",
                "device": p.device or "",
                "hour": hour_of(p.clicked_at),
                "uniq": 1 if p.unique else 0,
            }
            for p in clicks
        ]
        return t.CLICKS.write(t.count_clicks(self.schema), rows)

    def save_conversions(self, rows: Sequence[Conversion]) -> Write | None:
        columns = tuple(name for name in t.CONVERSIONS.column_names if name != "conversion_id")
        return t.CONVERSIONS.write(
            t.CONVERSIONS.upsert(self.schema, columns), [_conversion_row(c) for c in rows]
        )

    def add_figures(self, moves: Sequence[Move]) -> Write | None:
        rows = [
            {
                "partner_id": m.partner_id,
                "hour": m.hour,
                "offer_id": m.offer_id,
                **dict(zip(t.SUBS, m.subs, strict=True)),
                **dict(zip(t.VISITOR, m.visitor, strict=True)),
                "clicks": 0,
                "unique_clicks": 0,
                "conversions": m.conversions,
                "payout": m.payout,
                "revenue": m.revenue,
            }
            for m in moves
        ]
        return t.COUNTERS.write(t.add_figures(self.schema), rows)

    def add_statements(self, issued: Sequence[StatementIssued]) -> Write | None:
        return t.STATEMENTS.write(
            t.STATEMENTS.insert(
                self.schema,
                (
                    "statement_id",
                    "partner_id",
                    "currency",
                    "total",
                    "status",
                    "period_end",
                    "issued_at",
                    "lines",
                ),
            ),
            map(_statement_row, issued),
        )

    def hold_statements(self, changes: Sequence[StatementHeld | StatementReleased]) -> Write | None:
        """A held statement is ``on_hold`` with its reason until released (``payable``)."""
        rows = [{"statement_id": c.statement_id, "partner_id": c.partner_id,
                 "status": "on_hold" if isinstance(c, StatementHeld) else "payable",
                 "hold_reason": c.reason if isinstance(c, StatementHeld) else None} for c in changes]
        statement = t.STATEMENTS.update(self.schema, ("status", "hold_reason"),
                                        by=("statement_id", "partner_id"))
        return t.STATEMENTS.write(statement, rows)

    def convert_statements(self, converted: Sequence[StatementConverted]) -> Write | None:
        """A statement paid in the partner's billing currency shows what it pays in it."""
        rows = [{"statement_id": c.statement_id, "partner_id": c.partner_id, "paid_currency": c.paid_currency,
                 "paid_total": c.total} for c in converted]
        statement = t.STATEMENTS.update(self.schema, ("paid_currency", "paid_total"),
                                        by=("statement_id", "partner_id"))
        return t.STATEMENTS.write(statement, rows)

    def pay_statements(self, paid: Sequence[StatementPaid]) -> Write | None:
        rows = [
            {
                "statement_id": p.statement_id,
                "partner_id": p.partner_id,
                "status": "paid",
                "paid_at": p.paid_at,
                "reference": p.reference,
            }
            for p in paid
        ]
        statement = t.STATEMENTS.update(
            self.schema, ("status", "paid_at", "reference"), by=("statement_id", "partner_id")
        )
        return t.STATEMENTS.write(statement, rows)

    def save_delivered(self, delivered: Sequence[PartnerPostbackDelivered]) -> Write | None:
        return self._save_postbacks([(p, "delivered", None, p.delivered_at) for p in delivered])

    def save_failed(self, failed: Sequence[PartnerPostbackFailed]) -> Write | None:
        return self._save_postbacks([(p, "failed", p.error, p.failed_at) for p in failed])

    def _save_postbacks(self, outcomes: Sequence[tuple[Any, str, str | None, datetime]]) -> Write | None:
        rows = [
            {
                "delivery_id": p.delivery_id,
                "partner_id": p.partner_id,
                "conversion_id": p.conversion_id,
                "offer_id": p.offer_id,
                "url": p.url,
                "status": status,
                "attempts": p.attempts,
                "status_code": p.status_code,
                "error": error,
                "ended_at": ended_at,
            }
            for p, status, error, ended_at in outcomes
        ]
        columns = ("status", "attempts", "status_code", "error", "ended_at", "url")
        return t.POSTBACKS.write(t.POSTBACKS.upsert(self.schema, columns), rows)

    # -- who is calling -------------------------------------------------------------------

    def key_holder(self, sha256_hex: str) -> KeyHolder | None:
        rows = self.store.query(
            sql.SQL(
                "SELECT partner_id, key_id, key_sha256 FROM {} WHERE key_sha256 = %s AND revoked_at IS NULL"
            ).format(self._table(t.API_KEYS)),
            (sha256_hex,),
        )
        return KeyHolder(rows[0]["partner_id"], rows[0]["key_id"], rows[0]["key_sha256"]) if rows else None

    def session_live(self, key_id: str, partner_id: str, nonce: str) -> bool:
        rows = self.store.query(
            sql.SQL(
                "SELECT 1 FROM {} WHERE key_id = %s AND partner_id = %s AND revoked_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM {} WHERE nonce = %s)"
            ).format(self._table(t.API_KEYS), self._table(t.ENDED_SESSIONS)),
            (key_id, partner_id, nonce),
        )
        return bool(rows)

    def end_session(self, nonce: str, expires_at: datetime) -> None:
        """Remember the signed-out session until it expires, and forget expired ones."""
        ended = self._table(t.ENDED_SESSIONS)
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(sql.SQL("DELETE FROM {} WHERE expires_at < now()").format(ended))
            curs.execute(
                sql.SQL("INSERT INTO {} (nonce, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
                    ended
                ),
                (nonce, expires_at),
            )

    def partner(self, partner_id: str) -> Row | None:
        rows = self.store.query(t.PARTNERS.select(self.schema), keys_param([partner_id], ("partner_id",)))
        return rows[0] if rows else None

    def payout_profile(self, partner_id: str) -> Row | None:
        rows = self.store.query(t.PAYOUT_PROFILES.select(self.schema),
                                keys_param([partner_id], ("partner_id",)))
        return rows[0] if rows else None

    # -- offers, conversions, statements, postbacks ------------------------------------------

    def offer_rows(self, partner_id: str, offer_id: str | None) -> Sequence[Row]:
        where = sql.SQL(" AND o.offer_id = %s") if offer_id is not None else sql.SQL("")
        return self.store.query(
            sql.SQL(
                "SELECT o.*, r.approved, r.application, r.payout AS custom_payout, r.events AS custom_events "
                "FROM {} o LEFT JOIN {} r ON r.offer_id = o.offer_id AND r.partner_id = %s "
                "WHERE o.status = 'active'{} ORDER BY o.name, o.offer_id"
            ).format(self._table(t.OFFERS), self._table(t.RELATIONSHIPS), where),
            (partner_id, offer_id) if offer_id is not None else (partner_id,),
        )

    def conversions(
        self, partner_id: str, limit: int, after: ConversionKey | None, status: str | None, kind: str | None
    ) -> Sequence[Row]:
        conditions = [sql.SQL("partner_id = %(partner_id)s")]
        if after is not None:
            conditions.append(sql.SQL("(converted_at, conversion_id) > (%(after_at)s, %(after_id)s)"))
        if status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
        if kind is not None:
            conditions.append(sql.SQL("kind = %(kind)s"))
        return self.store.query(
            sql.SQL(
                "SELECT conversion_id, kind, offer_id, transaction_id, event, status, reason, payout, "
                "currency, converted_at, sub1, sub2, sub3, sub4, sub5 FROM {} WHERE {} "
                "ORDER BY converted_at, conversion_id LIMIT %(limit)s"
            ).format(self._table(t.CONVERSIONS), sql.SQL(" AND ").join(conditions)),
            {
                "partner_id": partner_id,
                "limit": limit,
                "status": status,
                "kind": kind,
                "after_at": after.converted_at if after else None,
                "after_id": after.conversion_id if after else None,
            },
        )

    def statements(self, partner_id: str) -> Sequence[Row]:
        return self.store.query(
            sql.SQL(
                "SELECT statement_id, currency, total, status, period_end, issued_at, paid_at, reference, "
                "lines, hold_reason, paid_currency, paid_total FROM {} WHERE partner_id = %s "
                "ORDER BY issued_at, statement_id"
            ).format(self._table(t.STATEMENTS)),
            (partner_id,),
        )

    def postbacks(self, partner_id: str, limit: int) -> Sequence[Row]:
        return self.store.query(
            sql.SQL(
                "SELECT delivery_id, conversion_id, offer_id, url, status, attempts, status_code, error, "
                "ended_at FROM {} WHERE partner_id = %s ORDER BY ended_at DESC, delivery_id LIMIT %s"
            ).format(self._table(t.POSTBACKS)),
            (partner_id, limit),
        )

    # -- reports ----------------------------------------------------------------------------

    def expire_recent(self, today: date) -> None:
        """Take the UTC days that are no longer among the last 30 up to ``today`` out of
        the leading partners' rollup (once a day; again, or by another instance at the
        same time, it takes nothing twice)."""
        through = today - timedelta(days=t.RECENT_DAYS)
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            for statement in expire_recent(self.schema):
                curs.execute(statement, {"through": through})

    def report(
        self, window: Window, group_by: GroupBy, partner_id: str | None, top: int | None = None
    ) -> list[ReportRow]:
        """The figures per group and currency from the smallest table that holds them
        exactly (``report_sql``); ``top``: only the N groups with the most revenue."""
        today = datetime.now(UTC).date()
        try:
            rows = self.store.query(
                report_statement(self.schema, window, group_by, partner_id is not None, today, top),
                {
                    "tz": window.zone.key,
                    "start": window.start,
                    "end": window.end,
                    "first": window.first,
                    "last": window.last,
                    "partner_id": partner_id,
                },
            )
        except errors.InvalidParameterValue as error:  # a zone Python knows and PostgreSQL does not
            raise InvalidReport(
                "tz", f"tz: not a time zone the database knows: {window.zone.key!r}"
            ) from error
        return [
            ReportRow(
                row["grp"],
                row["currency"],
                Figures(
                    int(row["clicks"]),
                    int(row["unique_clicks"]),
                    int(row["conversions"]),
                    row["payout"],
                    row["revenue"],
                ),
            )
            for row in rows
        ]


def _conversion(row: Row) -> Conversion:
    return Conversion(
        row["conversion_id"],
        row["partner_id"],
        row["offer_id"],
        row["transaction_id"],
        row["event"],
        Kind(row["kind"]),
        row["status"],
        row["reason"],
        row["payout"],
        row["revenue"],
        row["currency"],
        row["converted_at"],
        tuple(row[sub] for sub in t.SUBS),
        (row["country"], row["device"]),
    )


def _conversion_row(c: Conversion) -> dict[str, Any]:
    return {
        "conversion_id": c.conversion_id,
        "partner_id": c.partner_id,
        "offer_id": c.offer_id,
        "transaction_id": c.transaction_id,
        "event": c.event,
        "kind": c.kind.value,
        "status": c.status,
        "reason": c.reason,
        "payout": c.payout,
        "revenue": c.revenue,
        "currency": c.currency,
        "converted_at": c.converted_at,
        "hour": c.hour,
        **dict(zip(t.SUBS, c.subs, strict=True)),
        **dict(zip(t.VISITOR, c.visitor, strict=True)),
    }
