"""What the gateway answers from its views. Every partner read takes the partner_id
of the caller (from its key or session), never one from the request: that is what
keeps a partner's key from reading another partner's data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import errors, sql
from psycopg.rows import DictRow

from afflux_gateway.domain.access import may_see
from afflux_gateway.domain.report import Figures, GroupBy, InvalidReport, Window
from afflux_plumbing.store import TrackedApplication


@dataclass(frozen=True)
class KeyHolder:
    partner_id: str
    key_id: str
    key_sha256: str


@dataclass(frozen=True)
class ReportRow:
    group: str
    currency: str
    figures: Figures


@dataclass(frozen=True)
class ConversionKey:
    converted_at: datetime
    conversion_id: str


_GROUP_COLUMN = {
    GroupBy.OFFER: sql.SQL("c.offer_id"),
    GroupBy.PARTNER: sql.SQL("c.partner_id"),
    **{
        g: sql.SQL("c.{}").format(sql.Identifier(g.value))
        for g in (GroupBy.SUB1, GroupBy.SUB2, GroupBy.SUB3, GroupBy.SUB4, GroupBy.SUB5)
    },
}


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
"""Zones always at UTC: their days are UTC days, so their reports read ``daily``."""


class GatewayReads(TrackedApplication):
    """Reads of the gateway's views (the projection subclass writes them)."""

    def _t(self, name: str) -> sql.Identifier:
        return self.table(name)

    # -- who is calling -----------------------------------------------------------------

    def key_holder(self, sha256_hex: str) -> KeyHolder | None:
        """The partner holding the unrevoked key with this hash."""
        rows = self.query(
            sql.SQL(
                "SELECT partner_id, key_id, key_sha256 FROM {} WHERE key_sha256 = %s AND revoked_at IS NULL"
            ).format(self._t("api_keys")),
            (sha256_hex,),
        )
        return KeyHolder(rows[0]["partner_id"], rows[0]["key_id"], rows[0]["key_sha256"]) if rows else None

    def key_active(self, key_id: str, partner_id: str) -> bool:
        rows = self.query(
            sql.SQL("SELECT 1 FROM {} WHERE key_id = %s AND partner_id = %s AND revoked_at IS NULL").format(
                self._t("api_keys")
            ),
            (key_id, partner_id),
        )
        return bool(rows)

    def partner(self, partner_id: str) -> DictRow | None:
        rows = self.query(
            sql.SQL("SELECT * FROM {} WHERE partner_id = %s").format(self._t("partners")), (partner_id,)
        )
        return rows[0] if rows else None

    def conversion(self, conversion_id: str) -> DictRow | None:
        rows = self.query(
            sql.SQL("SELECT * FROM {} WHERE conversion_id = %s").format(self._t("conversions")),
            (conversion_id,),
        )
        return rows[0] if rows else None

    # -- offers -------------------------------------------------------------------------

    def offers_for(self, partner_id: str, offer_id: str | None = None) -> list[dict[str, Any]]:
        """Active offers the partner may see, with its own terms (a relationship's custom
        payout and per-event payouts replace the offer's)."""
        where = sql.SQL(" AND o.offer_id = %s") if offer_id is not None else sql.SQL("")
        rows = self.query(
            sql.SQL(
                "SELECT o.*, r.approved, r.application, r.payout AS custom_payout, r.events AS custom_events "
                "FROM {} o LEFT JOIN {} r ON r.offer_id = o.offer_id AND r.partner_id = %s "
                "WHERE o.status = 'active'{} ORDER BY o.name, o.offer_id"
            ).format(self._t("offers"), self._t("relationships"), where),
            (partner_id, offer_id) if offer_id is not None else (partner_id,),
        )
        return [_offer_for_partner(row) for row in rows if may_see(row["visibility"], row["approved"])]

    # -- reports ------------------------------------------------------------------------

    def report(self, window: Window, group_by: GroupBy, partner_id: str | None = None) -> list[ReportRow]:
        """Summed counters of the window, per group and currency (the offer's currency).
        Day, offer and partner reports read ``daily`` in UTC and ``totals`` in other zones; sub
        reports read ``counters``. Rows
        are summed per (group, offer) first, so the offers join and the final grouping see
        a few hundred rows, not one per hour."""
        if group_by.value.startswith("sub") or window.zone.key not in UTC_NAMES:
            source = self._t("counters" if group_by.value.startswith("sub") else "totals")
            span = sql.SQL("c.hour >= %(start)s AND c.hour < %(end)s")
            day: sql.Composable = sql.SQL("date_trunc('day', c.hour AT TIME ZONE %(tz)s)")
        else:
            source, span, day = (
                self._t("daily"),
                sql.SQL("c.day BETWEEN %(first)s AND %(last)s"),
                sql.SQL("c.day"),
            )
        if group_by is GroupBy.DAY:
            group, shown = day, sql.SQL("to_char(s.grp, 'YYYY-MM-DD')")
        else:
            group, shown = _GROUP_COLUMN[group_by], sql.SQL("s.grp")
        only = sql.SQL(" AND c.partner_id = %(partner_id)s") if partner_id is not None else sql.SQL("")
        statement = sql.SQL(
            "SELECT {shown} AS grp, coalesce(o.currency, '') AS currency, sum(s.clicks) AS clicks, "
            "sum(s.unique_clicks) AS unique_clicks, sum(s.conversions) AS conversions, "
            "sum(s.payout) AS payout, sum(s.revenue) AS revenue FROM ("
            "SELECT {group} AS grp, c.offer_id, sum(c.clicks) AS clicks, "
            "sum(c.unique_clicks) AS unique_clicks, "
            "sum(c.conversions) AS conversions, sum(c.payout) AS payout, sum(c.revenue) AS revenue "
            "FROM {source} c WHERE {span}{only} GROUP BY 1, 2"
            ") AS s LEFT JOIN {offers} o ON o.offer_id = s.offer_id GROUP BY s.grp, 2 ORDER BY s.grp, 2"
        ).format(shown=shown, group=group, source=source, span=span, offers=self._t("offers"), only=only)
        params = {
            "tz": window.zone.key,
            "start": window.start,
            "end": window.end,
            "first": window.first,
            "last": window.last,
            "partner_id": partner_id,
        }
        try:
            rows = self.query(statement, params)
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

    # -- conversions, money, postbacks --------------------------------------------------

    def conversions(
        self, partner_id: str, limit: int, after: ConversionKey | None, status: str | None
    ) -> list[DictRow]:
        conditions = [sql.SQL("partner_id = %(partner_id)s")]
        if after is not None:
            conditions.append(sql.SQL("(converted_at, conversion_id) > (%(after_at)s, %(after_id)s)"))
        if status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
        return self.query(
            sql.SQL(
                "SELECT conversion_id, offer_id, transaction_id, event, status, reason, payout, currency, "
                "converted_at, sub1, sub2, sub3, sub4, sub5 FROM {} WHERE {} "
                "ORDER BY converted_at, conversion_id LIMIT %(limit)s"
            ).format(self._t("conversions"), sql.SQL(" AND ").join(conditions)),
            {
                "partner_id": partner_id,
                "limit": limit,
                "status": status,
                "after_at": after.converted_at if after else None,
                "after_id": after.conversion_id if after else None,
            },
        )

    def balance(self, partner_id: str) -> dict[str, dict[str, Decimal]]:
        """Per currency: ``pending`` (held for review), ``accrued`` (earned, not on a payable
        or paid statement), ``payable`` and ``paid`` (statements)."""
        earned = self.query(
            sql.SQL(
                "SELECT currency, status, sum(payout) AS total FROM {} WHERE partner_id = %s "
                "AND status IN ('approved', 'attributed', 'pending') GROUP BY 1, 2 "
                "UNION ALL SELECT currency, 'adjustment', sum(amount) FROM {} "
                "WHERE partner_id = %s GROUP BY 1 "
                "UNION ALL SELECT currency, 'statement_' || status, sum(total) FROM {} "
                "WHERE partner_id = %s AND status IN ('payable', 'paid') GROUP BY 1, status"
            ).format(self._t("conversions"), self._t("adjustments"), self._t("statements")),
            (partner_id, partner_id, partner_id),
        )
        sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for row in earned:
            sums[row["currency"]][row["status"]] += row["total"] or Decimal(0)
        result: dict[str, dict[str, Decimal]] = {}
        for currency, parts in sorted(sums.items()):
            payable, paid = parts["statement_payable"], parts["statement_paid"]
            earned_total = parts["approved"] + parts["attributed"] + parts["adjustment"]
            result[currency] = {
                "accrued": earned_total - payable - paid,
                "pending": parts["pending"],
                "payable": payable,
                "paid": paid,
            }
        return result

    def statements(self, partner_id: str) -> list[DictRow]:
        return self.query(
            sql.SQL(
                "SELECT statement_id, currency, total, status, period_end, issued_at, paid_at, reference, "
                "lines FROM {} WHERE partner_id = %s ORDER BY issued_at, statement_id"
            ).format(self._t("statements")),
            (partner_id,),
        )

    def postbacks(self, partner_id: str, limit: int) -> list[DictRow]:
        return self.query(
            sql.SQL(
                "SELECT delivery_id, conversion_id, offer_id, url, status, attempts, status_code, error, "
                "ended_at FROM {} WHERE partner_id = %s ORDER BY ended_at DESC, delivery_id LIMIT %s"
            ).format(self._t("postbacks")),
            (partner_id, limit),
        )


def _offer_for_partner(row: DictRow) -> dict[str, Any]:
    custom_events = {event["name"]: event for event in (row["custom_events"] or [])}
    events = []
    for event in row["events"]:
        own = custom_events.get(event["name"], {}).get("payout")
        events.append({"name": event["name"], "payout": own or event["payout"]})
    approved = row["approved"]
    return {
        "offer_id": row["offer_id"],
        "name": row["name"],
        "currency": row["currency"],
        "visibility": row["visibility"],
        "relationship": (
            "approved"
            if approved
            else "pending"
            if row["application"]
            else "refused"
            if approved is False
            else "none"
        ),
        "payout": row["custom_payout"] or row["payout"],
        "events": events,
    }
