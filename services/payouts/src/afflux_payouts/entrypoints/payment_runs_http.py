"""The payment run routes: finance selects payable statements into a run per method, takes
its file to the bank or provider, and confirms what was paid.

All of them need ``statements.pay`` (finance, owner): a run's file carries the payees'
bank details in full.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from afflux_payouts.adapters.payment_files import NoDebtor
from afflux_payouts.application.payment_runs import Outcome, PaymentRuns, UnknownRun
from afflux_payouts.application.statements import NotFoldedYet
from afflux_payouts.domain.payment_runs import PaymentRun, RunRefused
from afflux_payouts.entrypoints.statements_http import instant, iso, text
from afflux_plumbing.auth import needs
from afflux_plumbing.http import ApiError, error_body
from afflux_plumbing.sealing import SealingUnavailable, UnreadableSeal

Id = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")


class RunIn(BaseModel):
    """The statements named, or every payable one whose period ended by ``due_by``."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["sepa", "paypal", "wire"]
    statement_ids: list[str] | None = Field(default=None, min_length=1, max_length=5000)
    due_by: datetime | None = None


class FailedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement_id: str = Id
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failed: list[FailedIn] = Field(default_factory=list, max_length=5000)


def run_json(run: PaymentRun) -> dict[str, Any]:
    return {"payment_run_id": run.payment_run_id, "method": run.method, "due_by": iso(run.due_by),
            "created_at": iso(run.created_at), "status": "confirmed" if run.confirmed else "open",
            "payments": run.payments, "paid": run.paid,
            "failed": run.failed if run.confirmed else None,
            "files": [{"url": f"/v1/payment-runs/{run.payment_run_id}/file"}]}


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {"payment_run_id": outcome.run.payment_run_id, "status": "confirmed", "paid": outcome.paid,
            "failed": [{"statement_id": s, "reason": r} for s, r in outcome.failed.items()]}


async def _refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, RunRefused)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=422)


async def _unavailable(_: Request, error: Exception) -> Response:
    code = "sepa_not_configured" if isinstance(error, NoDebtor) else "profiles_unavailable"
    return JSONResponse(error_body(code, str(error)), status_code=503)


def add_payment_run_routes(app: FastAPI, runs: PaymentRuns, admin: list[Any]) -> None:
    app.add_exception_handler(RunRefused, _refused)
    for unavailable in (NoDebtor, SealingUnavailable, UnreadableSeal):
        app.add_exception_handler(unavailable, _unavailable)

    def found(payment_run_id: str) -> PaymentRun:
        try:
            return runs.run(text(payment_run_id, "payment_run_id"))
        except UnknownRun as error:
            raise ApiError(404, "payment_run_not_found", str(error), field="payment_run_id") from error

    @app.post("/v1/payment-runs", dependencies=admin, status_code=201, openapi_extra=needs("statements.pay"))
    async def create(body: RunIn) -> dict[str, Any]:
        """A run of ``method`` (``sepa``: EUR statements only) paying the ``statement_ids``
        named, or every payable statement of partners paid by ``method`` whose period ended
        by ``due_by`` (neither: all of them). A statement named that is not payable, held,
        in another open run or of a partner paid otherwise is 422 naming it."""
        if body.statement_ids is not None and body.due_by is not None:
            raise ApiError(422, "invalid_request", "name statement_ids or due_by, not both", field="due_by")
        try:
            run = await asyncio.to_thread(runs.create, body.method, body.statement_ids,
                                          instant(body.due_by, "due_by"))
        except NotFoldedYet as error:
            raise ApiError(503, "not_caught_up", str(error), headers={"Retry-After": "1"}) from error
        return run_json(run)

    @app.get("/v1/payment-runs", dependencies=admin, openapi_extra=needs("statements.pay"))
    def recent(limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
        """The newest runs first: method, status, due_by, when created and confirmed, how many
        statements each pays and its totals per currency."""
        return {"payment_runs": [{**row, "due_by": iso(row["due_by"]), "created_at": iso(row["created_at"]),
                                  "confirmed_at": iso(row["confirmed_at"])}
                                 for row in runs.recent(limit)]}

    @app.get("/v1/payment-runs/{payment_run_id}", dependencies=admin, openapi_extra=needs("statements.pay"))
    def show(payment_run_id: str) -> dict[str, Any]:
        return run_json(found(payment_run_id))

    @app.get("/v1/payment-runs/{payment_run_id}/file", dependencies=admin, response_model=None,
             openapi_extra=needs("statements.pay"))
    def file(payment_run_id: str) -> Response:
        """The run's file: SEPA pain.001.001.03 XML (validated against its schema), the PayPal
        Payouts CSV, or the wire CSV."""
        made = runs.file(found(payment_run_id).payment_run_id)
        return Response(made.content, media_type=made.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{made.name}"'})

    @app.post("/v1/payment-runs/{payment_run_id}/confirm", dependencies=admin,
              openapi_extra=needs("statements.pay"))
    async def confirm(payment_run_id: str, body: ConfirmIn | None = None) -> dict[str, Any]:
        """The run's money moved: each statement is paid once (``StatementPaid`` with the run's
        id) but those in ``failed``, which stay payable with their reason. Confirming again
        answers the first confirmation and pays nothing twice."""
        run = found(payment_run_id)
        failed = {f.statement_id: f.reason for f in (body.failed if body else [])}
        return outcome_json(await asyncio.to_thread(runs.confirm, run.payment_run_id, failed))
