"""The partner's own self-billed invoices: ``GET /v1/me/statements/{statement_id}/invoice``
(JSON) and ``.../invoice.pdf``, with its ``X-Api-Key``.

The gateway keeps no invoice: it asks payouts (its credential has ``invoices.read``)
for a statement this partner's own statements list names, never one of another
partner, and answers what payouts answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.service_clients import PayoutsClient
from afflux_gateway.application.reads import KeyHolder, LedgerUnavailable, Views
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_plumbing.http import ApiError, NotFound


def invoice_router(views: Views, guard: Guard, payouts: PayoutsClient) -> APIRouter:
    router = APIRouter(prefix="/v1/me/statements", tags=["partner"])
    me = partner_auth(guard)

    async def answer(statement_id: str, holder: KeyHolder, pdf: bool) -> Response:
        mine = await run_in_threadpool(views.statements, holder.partner_id)
        if not any(row["statement_id"] == statement_id for row in mine):
            raise NotFound("statement_not_found", f"you have no statement {statement_id!r}")
        try:
            status, body, media_type = await payouts.invoice(statement_id, pdf)
        except LedgerUnavailable as error:
            raise ApiError(503, "unavailable", "the invoice cannot be read right now; retry later",
                           headers={"Retry-After": "5"}) from error
        return Response(body, status_code=status, media_type=media_type or "application/json")

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
