"""Payment runs, finance's (``statements.pay``: finance and owner): the newest runs and a
form to make one for a method (the statements named, or every payable one due by a day),
one run with its payments, its file for the bank or provider, and confirming it (each
statement paid once, those marked failed returned to payable with their reason).

Every read and change is payouts' own, made with the signed-in person's credential; the
page is not offered to a role without ``statements.pay`` (payouts would refuse it too).
A refusal (a statement not payable, of another method, both a selection and a day) is
shown on the page that asked, with payouts' message, never a 5xx.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import Refused, segment
from afflux_console.entrypoints.browser_session import Form
from afflux_console.entrypoints.pages import NOTICES, SECURITY_HEADERS, Console, PageError, Viewer

METHODS = ("sepa", "paypal", "wire")
SCOPE = "statements.pay"
MAX_IDS = 5000


def _finance(viewer: Viewer) -> None:
    if not viewer.may(SCOPE):
        raise PageError(403, "Payment runs are finance's: your role may not see or make them.")


def run_body(form: Form) -> dict[str, object]:
    """The run payouts is asked for: a method and the statements named (one per line or
    separated by commas or spaces), or the end of the day they must be due by."""
    method = form.get("method")
    if method not in METHODS:
        raise PageError(422, f"Method: one of {', '.join(METHODS)}.")
    body: dict[str, object] = {"method": method}
    ids = [i for i in re.split(r"[\s,]+", form.get("statement_ids")) if i]
    if len(ids) > MAX_IDS:
        raise PageError(422, f"At most {MAX_IDS} statements in one run.")
    if ids:
        body["statement_ids"] = ids
    if form.get("due_by"):
        try:
            day = datetime.fromisoformat(form.get("due_by")).date()
        except ValueError:
            raise PageError(422, f"Due by: not a date: {form.get('due_by')!r} (YYYY-MM-DD).") from None
        body["due_by"] = datetime.combine(day, time.max, UTC).isoformat()
    return body


async def runs_page(console: Console, viewer: Viewer, request: Request | None = None,
                    error: str | None = None, status: int = 200, typed: Form | None = None) -> Response:
    _finance(viewer)
    found = await console.read(viewer, "payouts", "/v1/payment-runs", limit=50)
    return console.page("payment_runs.html", viewer, status, runs=found.get("payment_runs", []),
                        methods=METHODS, error=error, typed=typed or Form({}),
                        notice=console.notice(request) if request else None)


async def create(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    _finance(viewer)
    try:
        answer = await console.write(viewer, "POST", "payouts", "/v1/payment-runs", run_body(form))
    except (Refused, PageError) as refused:
        if isinstance(refused, Refused) and refused.status in (401, 403):
            raise
        return await runs_page(console, viewer, None, refused.message, refused.status, form)
    return console.done(f"/console/payment-runs/{segment(str(answer.body['payment_run_id']))}", "run_created")


async def run_page(console: Console, viewer: Viewer, run_id: str, request: Request | None = None,
                   error: str | None = None, status: int = 200) -> Response:
    _finance(viewer)
    run = await console.read(viewer, "payouts", f"/v1/payment-runs/{segment(run_id)}")
    payments = run.get("payments") or []
    names = await console.names.of(viewer.token, "partner", [p.get("partner_id") for p in payments])
    failed = {f["statement_id"]: f["reason"] for f in run.get("failed") or []}
    return console.page("payment_run.html", viewer, status, run=run, payments=payments, names=names,
                        failed=failed, error=error, notice=console.notice(request) if request else None)


async def confirm(console: Console, request: Request, run_id: str) -> Response:
    """Confirm the run: a payment whose "failed" reason is filled in returns its statement
    to payable with that reason; every other is paid (once: a second confirmation pays none)."""
    viewer, form = await console.posted(request)
    _finance(viewer)
    failed = [{"statement_id": name.removeprefix("failed:"), "reason": form.get(name)[:500]}
              for name in form.names() if name.startswith("failed:") and form.get(name)]
    try:
        await console.write(viewer, "POST", "payouts", f"/v1/payment-runs/{segment(run_id)}/confirm",
                            {"failed": failed})
    except Refused as refused:
        if refused.status in (401, 403):
            raise
        return await run_page(console, viewer, run_id, None, refused.message, refused.status)
    return console.done(f"/console/payment-runs/{segment(run_id)}", "run_confirmed")


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/payment-runs")
    async def runs(request: Request) -> Response:
        return await runs_page(console, await console.viewer(request), request)

    @router.post("/console/payment-runs")
    async def create_run(request: Request) -> Response:
        return await create(console, request)

    @router.get("/console/payment-runs/{run_id}/file")
    async def run_file(request: Request, run_id: str) -> Response:
        """The run's file as payouts makes it (SEPA XML, PayPal or wire CSV), its name kept."""
        viewer = await console.viewer(request)
        _finance(viewer)
        path = f"/v1/payment-runs/{segment(run_id)}/file"
        answer = await console.apis.raw(viewer.token, "payouts", path, {})
        disposition = answer.headers.get("content-disposition") or f'attachment; filename="{run_id[:80]}"'
        return Response(answer.content, media_type=answer.headers.get("content-type"),
                        headers={**SECURITY_HEADERS, "Content-Disposition": disposition})

    @router.get("/console/payment-runs/{run_id}")
    async def run(request: Request, run_id: str) -> Response:
        return await run_page(console, await console.viewer(request), run_id, request)

    @router.post("/console/payment-runs/{run_id}/confirm")
    async def confirm_run(request: Request, run_id: str) -> Response:
        return await confirm(console, request, run_id)

    NOTICES.update({
        "run_created": "The payment run was made: download its file, pay it, then confirm it.",
        "run_confirmed": "The run was confirmed: its statements are paid, but those marked failed.",
    })
    return router
