"""The invoice routes: a statement's self-billed invoice (JSON, or PDF), any invoice or
credit note by number, and a credit note to correct an invoice (which never changes).

Reading needs ``invoices.read`` (every role, and the gateway's credential, which shows a
partner its own), a credit note ``statements.pay`` (finance, owner)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from afflux_payouts.adapters.invoice_pdf import invoice_pdf
from afflux_payouts.application.invoices import Invoices, NoIssuer, UnknownInvoice
from afflux_payouts.application.statements import NotFoldedYet
from afflux_payouts.domain.invoices import InvoiceRefused
from afflux_payouts.entrypoints.statements_http import text
from afflux_plumbing.auth import needs
from afflux_plumbing.http import ApiError, error_body


class CreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")


async def _refused(_: Request, error: Exception) -> Response:
    return JSONResponse(error_body("invoice_refused", str(error), "invoice_number"), status_code=409)


async def _no_issuer(_: Request, error: Exception) -> Response:
    return JSONResponse(error_body("invoices_not_configured", str(error)), status_code=503)


def pdf_response(doc: dict[str, Any]) -> Response:
    return Response(invoice_pdf(doc), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{doc["invoice_number"]}.pdf"'})


def add_invoice_routes(app: FastAPI, invoices: Invoices, admin: list[Any]) -> None:
    app.add_exception_handler(InvoiceRefused, _refused)
    app.add_exception_handler(NoIssuer, _no_issuer)

    def opened(number: str) -> dict[str, Any]:
        try:
            return invoices.document(text(number, "invoice_number"))
        except UnknownInvoice as error:
            raise ApiError(404, "invoice_not_found", str(error), field="invoice_number") from error

    def of_statement(statement_id: str) -> dict[str, Any]:
        numbers = invoices.of_statement(text(statement_id, "statement_id"))
        standing = [n for n in numbers if opened(n)["kind"] == "invoice"]
        if not standing:
            message = (f"statement {statement_id} has no invoice (yet: it is issued once the statement "
                       "is payable and its partner's profile is complete)")
            raise ApiError(404, "invoice_not_found", message, field="statement_id")
        return opened(standing[-1])

    @app.get("/v1/statements/{statement_id}/invoice", dependencies=admin,
             openapi_extra=needs("invoices.read"))
    def statement_invoice(statement_id: str) -> dict[str, Any]:
        """The statement's self-billed invoice (its latest, after a credit note) as JSON."""
        return of_statement(statement_id)

    @app.get("/v1/statements/{statement_id}/invoice.pdf", dependencies=admin, response_model=None,
             openapi_extra=needs("invoices.read"))
    def statement_invoice_pdf(statement_id: str) -> Response:
        return pdf_response(of_statement(statement_id))

    @app.get("/v1/invoices/{invoice_number}", dependencies=admin, openapi_extra=needs("invoices.read"))
    def invoice(invoice_number: str) -> dict[str, Any]:
        """An invoice or a credit note as JSON."""
        return opened(invoice_number)

    @app.get("/v1/invoices/{invoice_number}/pdf", dependencies=admin, response_model=None,
             openapi_extra=needs("invoices.read"))
    def invoice_pdf_route(invoice_number: str) -> Response:
        return pdf_response(opened(invoice_number))

    @app.post("/v1/invoices/{invoice_number}/credit-note", dependencies=admin, status_code=201,
              openapi_extra=needs("statements.pay"))
    async def credit(invoice_number: str, body: CreditIn) -> dict[str, Any]:
        """Correct an invoice with a credit note (the next number, every amount negated); the
        statement is then invoiced again. An invoice is credited once (else 409)."""
        try:
            number = text(invoice_number, "invoice_number")
            return await asyncio.to_thread(invoices.credit, number, body.reason)
        except UnknownInvoice as error:
            raise ApiError(404, "invoice_not_found", str(error), field="invoice_number") from error
        except NotFoldedYet as error:
            raise ApiError(503, "not_caught_up", str(error), headers={"Retry-After": "1"}) from error
