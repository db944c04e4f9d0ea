"""The partner's own self-billed invoices: ``GET /v1/me/statements/{statement_id}/invoice``
(JSON) and ``.../invoice.pdf``, with its ``X-Api-Key``.

The gateway keeps no invoice: it asks payouts (its credential has ``invoices.read``)
for a statement this partner's own statements list names, never one of another
partner, and answers what payouts answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from afflux_gateway.application.reads import Invoices, KeyHolder, LedgerUnavailable, Views
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_plumbing.http import ApiError, NotFound

INVOICED = ("payable", "paid")
"""The statuses of a statement payouts invoices."""


async def own_invoice(views: Views, payouts: Invoices, partner_id: str, statement_id: str,
                      pdf: bool) -> Response:
    """The invoice of one of ``partner_id``'s own statements as payouts answers it (the API
    and the portal's download both ask through this, so neither shows another partner's):
    ``NotFound`` for a statement not the partner's, ``ApiError`` 503 when payouts cannot answer."""
    mine = await run_in_threadpool(views.statements, partner_id)
    if not any(row["statement_id"] == statement_id for row in mine):
        raise NotFound("statement_not_found", f"you have no statement {statement_id!r}")
    try:
        status, body, media_type = await payouts.invoice(statement_id, pdf)
    except LedgerUnavailable as error:
        raise ApiError(503, "unavailable", "the invoice cannot be read right now; retry later",
                       headers={"Retry-After": "5"}) from error
    return Response(body, status_code=status, media_type=media_type or "application/json")


async def invoice_numbers(payouts: Invoices, statements: list[dict[str, Any]]) -> dict[str, str]:
    """Each invoiced statement's invoice number (payouts invoices only payable and paid
    statements; one it cannot answer for now is left without one, the page still shows)."""

    async def number(statement_id: str) -> tuple[str, str | None]:
        try:
            status, body, _ = await payouts.invoice(statement_id, False)
            found = json.loads(body).get("invoice_number") if status == 200 else None
        except (LedgerUnavailable, ValueError, AttributeError):
            found = None
        return statement_id, found if isinstance(found, str) else None

    asked = [s["statement_id"] for s in statements if s["status"] in INVOICED]
    return {sid: n for sid, n in await asyncio.gather(*(number(sid) for sid in asked)) if n}


def invoice_router(views: Views, guard: Guard, payouts: Invoices) -> APIRouter:
    router = APIRouter(prefix="/v1/me/statements", tags=["partner"])
    me = partner_auth(guard)

    async def answer(statement_id: str, holder: KeyHolder, pdf: bool) -> Response:
        return await own_invoice(views, payouts, holder.partner_id, statement_id, pdf)

    @router.get("/{statement_id}/invoice", response_model=None)
    async def invoice(statement_id: str, holder: KeyHolder = me) -> Response:
        """Your self-billed invoice for this statement (JSON): both parties, the lines, net,
        VAT, total and the VAT treatment (404 until it is issued)."""
        return await answer(statement_id, holder, pdf=False)

    @router.get("/{statement_id}/invoice.pdf", response_model=None)
    async def invoice_pdf(statement_id: str, holder: KeyHolder = me) -> Response:
        """The same invoice as a PDF."""
        return await answer(statement_id, holder, pdf=True)

    return router
