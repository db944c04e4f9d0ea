"""The console's finance pages over a real console and a real payouts service (one
PostgreSQL, a broker of the module's own; the other services away): finance makes a
payment run for a method, downloads its file and confirms it with a failed payment; bad
input is a 422 page, never a 5xx; an analyst is not offered runs (403) but downloads a
statement's self-billed invoice, asked of payouts with their own credential."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from console_fixtures import RunningConsole
from payouts_fixtures import BASE_TIME, RunningPayouts, attributed, new_id, partner_created, profile_folded
from test_console_pages import csrf_of, new_user, nowhere, signed_in_browser  # noqa: F401 (a fixture)

from afflux_console.entrypoints.browser_session import SESSION_COOKIE
from afflux_contracts import Envelope, PartnerPayoutProfileSet, PaymentMethodKind
from afflux_infra.testing import broker_of_its_own, eventually
from afflux_plumbing.publish import Publisher
from afflux_plumbing.sealing import FernetSealer

KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
PERIOD_END = (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")
PAYPAL = {"type": "paypal", "email": "ann@deals.example"}


@pytest.fixture(scope="module")
def finance_broker(infra: object) -> Iterator[str]:
    with broker_of_its_own(infra) as servers:  # type: ignore[arg-type]
        yield servers


@pytest.fixture(scope="module")
async def payouts(infra: object, finance_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), finance_broker, "finance-",  # type: ignore[attr-defined]
                              AFFLUX_PROFILE_KEYS=KEY, AFFLUX_PAYOUTS_HOLD_INTERVAL="0.2",
                              AFFLUX_INVOICE_ISSUER_NAME="Afflux Network SAS",
                              AFFLUX_INVOICE_ISSUER_COUNTRY="FR",
                              AFFLUX_INVOICE_ISSUER_ADDRESS="1 rue de la Paix, 75002 Paris",
                              AFFLUX_INVOICE_ISSUER_VAT_ID="FR40303265045") as service:
        yield service


@pytest.fixture(scope="module")
async def console(infra: object, finance_broker: str, payouts: RunningPayouts,
                  nowhere: None) -> AsyncIterator[RunningConsole]:  # noqa: F811 (the fixture)
    """The console asking the real payouts; every other service a port nothing listens on
    (``nowhere`` puts every address back after the module)."""
    os.environ["AFFLUX_PAYOUTS_URL"] = payouts.base_url
    async with RunningConsole(infra.new_database(), finance_broker) as service:  # type: ignore[attr-defined]
        yield service


@pytest.fixture(scope="module")
async def log(finance_broker: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(finance_broker, client_id="console-finance-test")
    await publisher.start()
    yield publisher
    await publisher.stop()


async def payable(payouts: RunningPayouts, log: Publisher, amount: str) -> str:
    """A partner paid by PayPal, its profile complete, with a payable USD statement: its id."""
    partner: str = new_id("partner")
    sealed = FernetSealer(KEY).seal({"tax": {"legal_name": "Ann Deals Ltd", "country": "GB",
                                             "address": {"line1": "1 High St", "city": "Leeds"},
                                             "tax_form": "none_needed"}, "payment_method": PAYPAL})
    await log.publish(partner_created(partner))
    await log.publish(Envelope.wrap(PartnerPayoutProfileSet(
        partner_id=partner, country="GB", payment_method=PaymentMethodKind.PAYPAL, complete=True,
        sealed=sealed, set_at=datetime.now(UTC)), producer="test"))
    await log.publish(attributed(partner, amount))
    await eventually(lambda: payouts.balances(partner).get("USD", {}).get("accrued") == amount, timeout=30)
    await eventually(lambda: profile_folded(payouts, partner), timeout=30)
    closed = await payouts.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
    assert closed.status_code == 200, closed.text
    return str(closed.json()["statements"][0]["statement_id"])


async def staff_of(console: RunningConsole, payouts: RunningPayouts, role: str) -> httpx.AsyncClient:
    """A browser signed in as a new staff user of ``role``, once payouts admits their session
    (its staff view reads it from the log: a page asked before would be signed out)."""
    browser = await signed_in_browser(console.base_url, (await new_user(console.base_url, role))["email"])
    headers = {"Authorization": f"Bearer {browser.cookies[SESSION_COOKIE]}"}
    await eventually(lambda: payouts.get("/v1/statements", headers=headers).status_code != 401, timeout=30)
    return browser


async def test_finance_makes_downloads_and_confirms_a_payment_run_with_a_failed_payment(
    console: RunningConsole, payouts: RunningPayouts, log: Publisher
) -> None:
    refused, fine = await payable(payouts, log, "12.50"), await payable(payouts, log, "7.00")
    finance = await staff_of(console, payouts, "finance")
    page = await finance.get("/console/payment-runs")
    assert page.status_code == 200 and 'id="run-form"' in page.text, page.text
    assert 'href="/console/payment-runs"' in page.text, "finance is offered the runs"
    csrf = csrf_of(page.text)

    bad = await finance.post("/console/payment-runs", data={"csrf": csrf, "method": "cash"})
    assert bad.status_code == 422 and "Method: one of" in bad.text
    both = await finance.post("/console/payment-runs", data={
        "csrf": csrf, "method": "paypal", "statement_ids": refused, "due_by": "2026-01-01"})
    assert both.status_code == 422 and "not both" in both.text and refused in both.text, "the form is kept"

    made = await finance.post("/console/payment-runs", data={
        "csrf": csrf, "method": "paypal", "statement_ids": f"{refused}\n{fine}"})
    assert made.status_code == 303, made.text
    run_path = made.headers["location"].split("?")[0]
    run = await finance.get(made.headers["location"])
    assert run.status_code == 200 and 'id="notice"' in run.text and refused in run.text and fine in run.text
    again = await finance.post("/console/payment-runs", data={"csrf": csrf, "method": "paypal",
                                                              "statement_ids": refused})
    assert again.status_code == 422 and 'id="error"' in again.text, "already in an open run: named"

    file = await finance.get(f"{run_path}/file")
    assert file.status_code == 200 and "attachment" in file.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(file.text)))
    assert sorted(row[3] for row in rows[1:]) == sorted([refused, fine])

    confirmed = await finance.post(f"{run_path}/confirm", data={
        "csrf": csrf, f"failed:{refused}": "receiver unverified", f"failed:{fine}": ""})
    assert confirmed.status_code == 303, confirmed.text
    shown = await finance.get(confirmed.headers["location"])
    assert "failed: receiver unverified" in shown.text and 'id="confirm-run"' not in shown.text
    listed = await finance.get("/console/payment-runs")
    assert re.search(r'class="run".*?confirmed', listed.text, re.S) and run_path in listed.text


async def test_an_analyst_downloads_an_invoice_but_is_not_offered_payment_runs(
    console: RunningConsole, payouts: RunningPayouts, log: Publisher
) -> None:
    statement_id = await payable(payouts, log, "9.00")
    analyst = await staff_of(console, payouts, "analyst")
    path = f"/console/statements/{statement_id}/invoice.pdf"
    for _ in range(150):  # payouts invoices a payable statement every 0.2 s
        pdf = await analyst.get(path)
        if pdf.status_code == 200:
            break
        await asyncio.sleep(0.2)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text
    missing = await analyst.get("/console/statements/st-none/invoice.pdf")
    assert missing.status_code == 404 and "%PDF" not in missing.text

    runs = await analyst.get("/console/payment-runs")
    assert runs.status_code == 403 and 'href="/console/payment-runs"' not in runs.text
    posted = await analyst.post("/console/payment-runs", data={"csrf": csrf_of(runs.text),
                                                               "method": "paypal"})
    assert posted.status_code == 403
