"""How the views are shown: JSON-ready dicts and CSV, shared by the API and the portal.

Money is a decimal string in the currency's minor unit beside its currency; a
partner never sees revenue or profit (the admin report adds them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from afflux_gateway.application.reads import ReportRow, Row
from afflux_gateway.domain.report import Figures, GroupBy, Window, cvr, epc, money


def instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def figures_out(figures: Figures, currency: str, *, admin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clicks": figures.clicks,
        "unique_clicks": figures.unique_clicks,
        "conversions": figures.conversions,
        "cvr": str(cvr(figures)),
        "epc": str(epc(figures)),
        "payout": money(figures.payout, currency),
        "currency": currency or None,
    }
    if admin:
        out["revenue"] = money(figures.revenue, currency)
        out["profit"] = money(figures.revenue - figures.payout, currency)
    return out


def report_out(
    rows: Sequence[ReportRow], window: Window, group_by: GroupBy, *, admin: bool
) -> dict[str, Any]:
    """Rows per group and currency, and totals per currency."""
    totals: dict[str, Figures] = {}
    for row in rows:
        totals[row.currency] = totals.get(row.currency, Figures()) + row.figures
    return {
        "from": window.first.isoformat(),
        "to": window.last.isoformat(),
        "tz": window.zone.key,
        "group_by": group_by.value,
        "rows": [
            {group_by.value: row.group, **figures_out(row.figures, row.currency, admin=admin)} for row in rows
        ],
        "totals": [
            figures_out(figures, currency, admin=admin) for currency, figures in sorted(totals.items())
        ],
    }


def conversion_out(row: Row) -> dict[str, Any]:
    currency = row["currency"]
    return {
        "conversion_id": row["conversion_id"],
        "kind": row["kind"],
        "offer_id": row["offer_id"],
        "event": row["event"],
        "status": row["status"],
        "reason": row["reason"],
        "payout": money(row["payout"], currency) if row["payout"] is not None else None,
        "currency": currency,
        "converted_at": instant(row["converted_at"]),
        **{name: row[name] or None for name in ("sub1", "sub2", "sub3", "sub4", "sub5")},
    }


def statement_out(row: Row) -> dict[str, Any]:
    currency = row["currency"]
    return {
        "statement_id": row["statement_id"],
        "currency": currency,
        "total": money(row["total"], currency),
        "status": row["status"],
        "period_end": instant(row["period_end"]),
        "issued_at": instant(row["issued_at"]),
        "paid_at": instant(row["paid_at"]),
        "reference": row["reference"],
        "lines": len(row["lines"]),
        "hold_reason": row.get("hold_reason"),
        "paid_currency": row.get("paid_currency"),
        "paid_total": money(row["paid_total"], row["paid_currency"]) if row.get("paid_currency") else None,
    }


STATEMENT_COLUMNS = (
    "statement_id",
    "currency",
    "total",
    "status",
    "period_end",
    "issued_at",
    "paid_at",
    "reference",
    "lines",
    "paid_currency",
    "paid_total",
)


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if row.get(column) is None else _safe_cell(str(row[column])) for column in columns]
        )
    return buffer.getvalue()


def _safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def postback_out(row: Row) -> dict[str, Any]:
    return {
        "delivery_id": row["delivery_id"],
        "conversion_id": row["conversion_id"],
        "offer_id": row["offer_id"],
        "url": row["url"],
        "status": row["status"],
        "attempts": row["attempts"],
        "status_code": row["status_code"],
        "error": row["error"],
        "ended_at": instant(row["ended_at"]),
    }
