"""Self-billed invoices, pure (``domain/invoices.py``): the VAT treatment of each pair of
countries, VAT included in what a domestic statement pays, numbers per entity and year
without gaps, and a credit note that negates its invoice, once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from afflux_payouts.domain.invoices import (
    Invoice,
    InvoiceRefused,
    InvoiceSeries,
    Issuer,
    credit_note,
    document,
    figures,
    vat_treatment,
)

ISSUER = Issuer("AFX", "Afflux SAS", "Paris", "FR", "FR40303265045", Decimal("20"))
AT = datetime(2026, 12, 3, tzinfo=UTC)
STATEMENT = {"statement_id": "st-1", "partner_id": "p-1", "currency": "EUR", "total": "12.00",
             "period_start": None, "period_end": "2026-11-30T23:59:59Z",
             "lines": [{"kind": "commission", "ref": "c-1", "offer_id": "o-1", "amount": "12.00"}]}


@pytest.mark.parametrize(("country", "vat_id", "treatment"), [
    ("FR", "FR40303265045", "domestic"),
    ("DE", "DE136695976", "reverse_charge"),
    ("DE", None, "no_vat"),
    ("US", "12-3456789", "no_vat"),
])
def test_the_vat_treatment_follows_the_parties_countries(country: str, vat_id: str | None,
                                                         treatment: str) -> None:
    assert vat_treatment(ISSUER, country, vat_id) == treatment


def test_domestic_vat_is_included_in_what_the_statement_pays_to_the_cent() -> None:
    assert figures(Decimal("12.00"), "EUR", "domestic", Decimal("20")) == \
        (Decimal("10.00"), Decimal("2.00"), Decimal("12.00"))
    assert figures(Decimal("10.01"), "EUR", "domestic", Decimal("19")) == \
        (Decimal("8.41"), Decimal("1.60"), Decimal("10.01"))
    assert figures(Decimal("10.01"), "EUR", "reverse_charge", Decimal("19"))[1] == Decimal("0.00")


def test_a_series_numbers_each_invoice_once_in_order() -> None:
    series = InvoiceSeries.open("AFX", 2026)
    numbers = [series.next_number() for _ in range(3)]
    assert numbers == ["AFX-2026-000001", "AFX-2026-000002", "AFX-2026-000003"]


def test_a_credit_note_negates_its_invoice_and_an_invoice_is_credited_once() -> None:
    invoice = document("AFX-2026-000001", ISSUER, STATEMENT, {"country": "FR", "vat_id": "FR40303265045"}, AT)
    note = credit_note("AFX-2026-000002", invoice, "wrong name", AT)
    assert (note["kind"], note["corrects"], note["net"], note["vat"], note["total"]) == \
        ("credit_note", "AFX-2026-000001", "-10.00", "-2.00", "-12.00")
    issued = Invoice.issue({"invoice_number": "AFX-2026-000001", "kind": "invoice"})
    issued.credit("AFX-2026-000002")
    with pytest.raises(InvoiceRefused, match="credited already"):
        issued.credit("AFX-2026-000003")
