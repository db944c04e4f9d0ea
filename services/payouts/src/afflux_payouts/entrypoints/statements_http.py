"""The statements admin API: close periods, preview them, list, show (JSON or CSV), pay;
adjust a balance.

A close and a payment answer once they are recorded (the relay publishes them) and,
within a few seconds, folded: a balance read right after shows them. A statement the
fold refused (its lines are not what the ledger holds: say, one put on the log by
hand) is listed ``refused`` with its ``refusal``, and pays nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from afflux_contracts import StatementIssued
from afflux_payouts.application.statements import (
    FutureClose,
    InvalidAdjustment,
    NotFoldedYet,
    Statements,
    UnknownStatement,
)
from afflux_payouts.domain.balance import format_money
from afflux_payouts.domain.records import NotPayable
from afflux_plumbing.auth import needs
from afflux_plumbing.http import ApiError

Text = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")
PREVIEW_AS_OF = Query(None, description="the period end (default: now)")
PREVIEW_AS_KNOWN_ON = Query(None, description="only the records on the log by then")


class CloseIn(BaseModel):
    period_end: datetime
    partner_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")


class PaidIn(BaseModel):
    reference: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


class AdjustmentIn(BaseModel):
    amount: Decimal
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    reason: str = Text
    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


def instant(value: datetime | None, field: str) -> datetime | None:
    """A query or body time: it must name its offset (an instant, not a wall-clock time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiError(422, "invalid_request", f"{field} needs a UTC offset (e.g. 2026-11-30T23:59:59Z)",
                       field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ApiError(422, "invalid_request", f"{field} is out of range", field=field) from error


def text(value: str, field: str) -> str:
    """An id from the path or the query: PostgreSQL text cannot hold NUL."""
    if "\x00" in value:
        raise ApiError(422, "invalid_request", f"{field} cannot contain NUL", field=field)
    return value


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def statement_json(row: Mapping[str, Any],
                   lines: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    currency = row["currency"]
    body: dict[str, Any] = {
        "statement_id": row["statement_id"], "partner_id": row["partner_id"], "currency": currency,
        "period_start": iso(row["period_start"]), "period_end": iso(row["period_end"]),
        "status": row["status"], "total": format_money(row["total"], currency),
        "carried_over": format_money(row["carried_over"], currency),
        "minimum_payout": format(row["minimum_payout"], "f"), "frequency": row["frequency"],
        "closed_by": row["closed_by"], "log_position": json.loads(row["log_position"]),
        "digest": row["digest"], "issued_at": iso(row["issued_at"]), "paid_at": iso(row["paid_at"]),
        "reference": row["reference"], "refusal": row["refusal"], "hold_reason": row["hold_reason"],
        "payment_failure": row["payment_failure"], "paid_currency": row["paid_currency"],
        "paid_total": format_money(row["paid_total"], row["paid_currency"])
        if row["paid_currency"] is not None else None,
    }
    if lines is not None:
        body["lines"] = [{"kind": line["kind"], "ref": line["ref"], "offer_id": line["offer_id"],
                          "happened_at": iso(line["happened_at"]),
                          "amount": format_money(line["amount"], currency),
                          "converted": _converted_json(line, row["paid_currency"])} for line in lines]
    return body


def _converted_json(line: Mapping[str, Any], paid_currency: str | None) -> dict[str, Any] | None:
    """A line of a converted statement in the currency it is paid in, with its rate."""
    if paid_currency is None or line["paid_amount"] is None:
        return None
    return {"amount": format_money(line["paid_amount"], paid_currency), "currency": paid_currency,
            "pair": line["rate_pair"], "rate": format(line["rate"], "f"),
            "rate_day": line["rate_day"].isoformat()}


def issued_json(issued: StatementIssued) -> dict[str, Any]:
    """A statement just decided (before its fold): what the close answers."""
    return {"statement_id": issued.statement_id, "partner_id": issued.partner_id, "currency": issued.currency,
            "period_end": iso(issued.period_end), "status": issued.status.value,
            "total": format_money(issued.total, issued.currency),
            "carried_over": format_money(issued.carried_over, issued.currency),
            "lines": len(issued.lines), "digest": issued.digest}


def preview_json(issued: StatementIssued) -> dict[str, Any]:
    """A statement a close would issue, in full (nothing is recorded)."""
    currency = issued.currency
    return {**issued_json(issued), "period_start": iso(issued.period_start),
            "minimum_payout": format(issued.minimum_payout, "f"), "log_position": issued.log_position,
            "lines": [{"kind": line.kind.value, "ref": line.ref, "offer_id": line.offer_id,
                       "happened_at": iso(line.happened_at), "amount": format_money(line.amount, currency)}
                      for line in issued.lines]}


def csv_response(header: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def add_statement_routes(app: FastAPI, statements: Statements, admin: list[Any]) -> None:
    reads = statements.store.reads

    @app.post("/v1/statements/close", dependencies=admin, openapi_extra=needs("statements.close"))
    async def close(body: CloseIn) -> dict[str, Any]:
        """Close the period ending at ``period_end`` for every partner (manual billing only
        when named) or for ``partner_id``: a statement per currency of the unclaimed lines that
        happened at or before it; below the minimum payout (or negative) it carries over."""
        period_end = instant(body.period_end, "period_end")
        assert period_end is not None
        try:
            issued = await asyncio.to_thread(statements.close, period_end, body.partner_id)
        except FutureClose as error:
            raise ApiError(422, "period_end_in_future", str(error), field="period_end") from error
        except NotFoldedYet as error:
            raise ApiError(503, "not_caught_up", str(error), headers={"Retry-After": "1"}) from error
        await asyncio.to_thread(statements.wait_folded)
        return {"period_end": iso(period_end), "statements": [issued_json(s) for s in issued]}

    @app.get("/v1/statements", dependencies=admin, openapi_extra=needs("statements.read"))
    def list_statements(
        partner_id: str | None = Query(None, max_length=200),
        status: Literal["payable", "on_hold", "carried_over", "paid", "refused"] | None = Query(None),
        limit: int = Query(500, ge=1, le=5000),
    ) -> dict[str, Any]:
        """Statements by period end (then partner and currency), without their lines;
        ``refused``: those the fold refused (each with its ``refusal``); ``on_hold``: payable
        ones that may not be paid yet (each with its ``hold_reason``)."""
        if partner_id is not None:
            text(partner_id, "partner_id")
        return {"statements": [statement_json(row) for row in reads.statements(partner_id, status, limit)]}

    @app.get("/v1/statements/{statement_id}", dependencies=admin, response_model=None,
             openapi_extra=needs("statements.read"))
    def show_statement(statement_id: str, format: Literal["json", "csv"] = Query("json")) -> Any:
        """One statement with its lines, ``log_position`` and ``digest`` (``?format=csv``: its lines)."""
        statement_id = text(statement_id, "statement_id")
        row = reads.statement(statement_id)
        if row is None:
            raise ApiError(404, "statement_not_found", f"no statement {statement_id}", field="statement_id")
        body = statement_json(row, reads.statement_lines(statement_id))
        if format == "csv":
            return csv_response(
                ["statement_id", "partner_id", "currency", "kind", "ref", "offer_id", "happened_at",
                 "amount"],
                [[body["statement_id"], body["partner_id"], body["currency"], line["kind"], line["ref"],
                  line["offer_id"] or "", line["happened_at"], line["amount"]] for line in body["lines"]],
                f"{statement_id}.csv")
        return body

    @app.get("/v1/partners/{partner_id}/statements/preview", dependencies=admin,
             openapi_extra=needs("statements.read"))
    def preview(partner_id: str, as_of: datetime | None = PREVIEW_AS_OF,
                as_known_on: datetime | None = PREVIEW_AS_KNOWN_ON) -> dict[str, Any]:
        """The statements a close of this partner at ``as_of`` would issue, per currency, from
        the facts that happened by then and (``as_known_on``) were recorded by then: lines,
        total, and whether it would be payable or carried over. Nothing is recorded."""
        moment, known = instant(as_of, "as_of"), instant(as_known_on, "as_known_on")
        issued = statements.preview(text(partner_id, "partner_id"), moment, known)
        return {"partner_id": partner_id, "as_of": iso(moment), "as_known_on": iso(known),
                "statements": [preview_json(statement) for statement in issued]}

    @app.post("/v1/statements/{statement_id}/paid", dependencies=admin, openapi_extra=needs("statements.pay"))
    async def pay(statement_id: str, body: PaidIn | None = None) -> dict[str, Any]:
        """Mark a payable statement paid; paying twice (or a carried-over or held one) is 409."""
        try:
            paid = await asyncio.to_thread(statements.pay, text(statement_id, "statement_id"),
                                           body.reference if body else None)
        except UnknownStatement as error:
            raise ApiError(404, "statement_not_found", str(error), field="statement_id") from error
        except NotPayable as error:
            raise ApiError(409, "statement_not_payable", str(error), field="statement_id") from error
        await asyncio.to_thread(statements.wait_folded)
        payment = paid.payment()
        return {"statement_id": paid.issued.statement_id, "status": "paid",
                "amount": format_money(Decimal(payment["amount"]), payment["currency"]),
                "currency": payment["currency"], "reference": body.reference if body else None}

    @app.post("/v1/partners/{partner_id}/adjustments", dependencies=admin, status_code=201,
              openapi_extra=needs("adjustments.write"))
    def adjust(partner_id: str, body: AdjustmentIn) -> dict[str, Any]:
        """Add a signed amount to the partner's accrued balance (paid on its next statement)."""
        try:
            return statements.adjust(text(partner_id, "partner_id"), format(body.amount, "f"),
                                     body.currency.upper(), body.reason, body.note)
        except InvalidAdjustment as error:
            raise ApiError(422, "invalid_request", str(error), field=error.field) from error
