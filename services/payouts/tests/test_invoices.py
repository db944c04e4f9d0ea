"""Self-billed invoices over the real broker and PostgreSQL (issue 23, item 3): a payable
statement of a partner whose profile is complete gets an invoice, numbered without gaps per
entity and year, whose PDF (its text extracted here) shows the number, the totals and the
VAT treatment; an invoice never changes: a credit note corrects it (once), and the
statement is invoiced again. A replay re-derives the invoices."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from payouts_fixtures import BASE_TIME, RunningPayouts, attributed, new_id, partner_created, terms_folded
from pypdf import PdfReader

from afflux_contracts import Envelope, PartnerPayoutProfileSet, PaymentMethodKind
from afflux_infra.testing import SessionInfrastructure, eventually
from afflux_payouts.application.replay import verify
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.publish import Publisher
from afflux_plumbing.sealing import FernetSealer

KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
PERIOD_END = (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")
YEAR = datetime.now(UTC).year


@pytest.fixture(scope="module")
async def payouts(infra: SessionInfrastructure, own_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), own_broker, "invoices-", AFFLUX_PROFILE_KEYS=KEY,
                              AFFLUX_PAYOUTS_HOLD_INTERVAL="0.2", AFFLUX_INVOICE_ENTITY="AFXFR",
                              AFFLUX_INVOICE_ISSUER_NAME="Afflux Network SAS",
                              AFFLUX_INVOICE_ISSUER_ADDRESS="1 rue de la Paix, 75002 Paris",
                              AFFLUX_INVOICE_ISSUER_COUNTRY="FR",
                              AFFLUX_INVOICE_ISSUER_VAT_ID="FR40303265045",
                              AFFLUX_INVOICE_VAT_RATE="20") as service:
        yield service


async def invoiced(payouts: RunningPayouts, own_log: Publisher, amount: str, country: str,
                   vat_id: str | None, paid_in: str | None = None) -> tuple[str, dict[str, Any]]:
    """A partner of ``country`` with a complete profile and a payable statement of ``amount``
    EUR (paid in ``paid_in`` at the rates recorded, if named): (its statement_id, its
    invoice as JSON once issued)."""
    partner: str = new_id("partner")
    tax = {"legal_name": f"Partner {partner} Ltd", "country": country, "vat_id": vat_id,
           "address": {"line1": "Main street 1", "city": "Town"}, "tax_form": "none_needed"}
    method = {"type": "paypal", "email": "p@x.example"}
    sealed = FernetSealer(KEY).seal({"tax": tax, "payment_method": method})
    await own_log.publish(partner_created(partner, currency=paid_in or "EUR",
                                          conversion="earned_day" if paid_in else "none"))
    await own_log.publish(Envelope.wrap(PartnerPayoutProfileSet(
        partner_id=partner, country=country, payment_method=PaymentMethodKind.PAYPAL, complete=True,
        sealed=sealed, set_at=datetime.now(UTC)), producer="test"))
    await own_log.publish(attributed(partner, amount, "EUR"))
    await eventually(lambda: payouts.balances(partner).get("EUR", {}).get("accrued") == amount, timeout=30)
    await eventually(lambda: terms_folded(payouts, partner), timeout=30)
    closed = await payouts.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
    assert closed.status_code == 200, closed.text
    statement_id = str(closed.json()["statements"][0]["statement_id"])
    return statement_id, await invoice_of(payouts, statement_id)


async def invoice_of(payouts: RunningPayouts, statement_id: str) -> dict[str, Any]:
    for _ in range(150):
        found = await payouts.fetch(f"/v1/statements/{statement_id}/invoice")
        if found.status_code == 200:
            body: dict[str, Any] = found.json()
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"statement {statement_id} was never invoiced: {found.text}")


def sequence(number: str) -> int:
    return int(number.rsplit("-", 1)[1])


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_invoices_are_numbered_without_gaps_and_their_pdf_says_the_vat_treatment(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    german, reverse = await invoiced(payouts, own_log, "40.00", "DE", "DE136695976")
    assert (reverse["invoice_number"], reverse["vat_treatment"]) == (f"AFXFR-{YEAR}-000001", "reverse_charge")
    assert (reverse["net"], reverse["vat"], reverse["total"]) == ("40.00", "0.00", "40.00")
    assert reverse["supplier"]["vat_id"] == "DE136695976" and reverse["customer"]["vat_id"] == "FR40303265045"
    pdf = await payouts.fetch(f"/v1/statements/{german}/invoice.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    shown = pdf_text(pdf.content)
    for expected in (f"Self-billed invoice AFXFR-{YEAR}-000001", "Total: 40.00 EUR", "VAT: 0.00 EUR",
                     "Reverse charge", "DE136695976", "Afflux Network SAS"):
        assert expected in shown, shown

    french, domestic = await invoiced(payouts, own_log, "12.00", "FR", "FR40303265045")
    assert (domestic["invoice_number"], domestic["vat_treatment"]) == (f"AFXFR-{YEAR}-000002", "domestic")
    # 20 % VAT included in the 12.00 the statement pays
    assert (domestic["net"], domestic["vat"], domestic["total"]) == ("10.00", "2.00", "12.00")
    shown = pdf_text((await payouts.fetch(f"/v1/statements/{french}/invoice.pdf")).content)
    assert "Net: 10.00 EUR" in shown and "VAT: 2.00 EUR" in shown and "VAT included at 20%" in shown

    _, outside = await invoiced(payouts, own_log, "5.00", "US", None)
    assert (outside["invoice_number"], outside["vat_treatment"]) == (f"AFXFR-{YEAR}-000003", "no_vat")


async def test_a_credit_note_corrects_an_invoice_once_and_the_statement_is_invoiced_again(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    statement_id, first = await invoiced(payouts, own_log, "7.50", "DE", "DE136695976")
    number = first["invoice_number"]
    credited = await payouts.post(f"/v1/invoices/{number}/credit-note", {"reason": "wrong legal name"})
    assert credited.status_code == 201, credited.text
    note = credited.json()
    assert (note["kind"], note["corrects"], note["total"]) == ("credit_note", number, "-7.50")
    assert sequence(note["invoice_number"]) == sequence(number) + 1
    note_pdf = await payouts.fetch(f"/v1/invoices/{note['invoice_number']}/pdf")
    assert "Credit note" in pdf_text(note_pdf.content) and "Total: -7.50 EUR" in pdf_text(note_pdf.content)
    again = await payouts.post(f"/v1/invoices/{number}/credit-note", {"reason": "twice"})
    assert again.status_code == 409, again.text
    assert (await payouts.fetch(f"/v1/invoices/{number}")).json() == first  # never changed

    for _ in range(150):
        reissued = await invoice_of(payouts, statement_id)
        if reissued["invoice_number"] != number:
            break
        await asyncio.sleep(0.2)
    assert sequence(reissued["invoice_number"]) == sequence(note["invoice_number"]) + 1


async def test_a_converted_statement_is_invoiced_in_the_currency_it_is_paid_in_with_its_rates(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    rate = await payouts.post("/v1/fx-rates", {"base": "EUR", "quote": "GBP", "rate": "0.8512",
                                               "date": BASE_TIME.date().isoformat()})
    assert rate.status_code == 201, rate.text
    statement_id, invoice = await invoiced(payouts, own_log, "40.00", "US", None, paid_in="GBP")
    # 40.00 EUR x 0.8512 = 34.048 -> 34.05 GBP
    assert (invoice["currency"], invoice["total"]) == ("GBP", "34.05")
    [line] = invoice["lines"]
    assert (line["amount"], line["original_amount"], line["original_currency"], line["rate"]) == \
        ("34.05", "40.00", "EUR", "0.8512")
    shown = pdf_text((await payouts.fetch(f"/v1/statements/{statement_id}/invoice.pdf")).content)
    assert "Total: 34.05 GBP" in shown and "40.00 EUR at EUR/GBP 0.8512" in shown, shown


async def test_a_replay_re_derives_the_invoices(payouts: RunningPayouts, own_log: Publisher) -> None:
    await invoiced(payouts, own_log, "3.00", "DE", "DE136695976")
    settings = PayoutsSettings(DATABASE_URL=payouts.database_url,
                               KAFKA_BOOTSTRAP_SERVERS=payouts.kafka_bootstrap, port=0)
    found = await verify(replaying(settings), "payouts", service_folds(settings, build))
    assert found.mismatched == 0, [(t.table, t.problem, t.rows[:3]) for t in found.tables if not t.equal]
    assert "invoices" in {t.table for t in found.tables}
