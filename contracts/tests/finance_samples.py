"""Samples of the finance events (tax and payment profiles, statement holds), kept beside
``contract_samples`` which lists them with every other event."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from afflux_contracts import (
    ConvertedLine,
    Event,
    FailedPayment,
    FxRateSet,
    InvoiceIssued,
    InvoiceKind,
    LineKind,
    PartnerPayoutProfileSet,
    PaymentMethodKind,
    PaymentRunConfirmed,
    PaymentRunCreated,
    RunPayment,
    StatementConverted,
    StatementHeld,
    StatementPaymentFailed,
    StatementReleased,
    TaxForm,
    VatTreatment,
)

SET_AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
STATEMENT = {"statement_id": "st_" + "3" * 24, "partner_id": "p1", "currency": "EUR"}
INVOICE = {**STATEMENT, "issuer": "AFX", "vat_treatment": VatTreatment.REVERSE_CHARGE,
           "sealed": "gAAAAAB-sealed-document", "issued_at": SET_AT}

FINANCE: list[Event] = [
    PartnerPayoutProfileSet(partner_id="p1", country="DE", tax_form=TaxForm.NONE_NEEDED,
                            payment_method=PaymentMethodKind.SEPA, complete=True,
                            sealed="gAAAAABexample-sealed-details", changed=("payment_method",),
                            set_at=SET_AT),
    StatementHeld(**STATEMENT, reason="the partner's tax and payment profile is incomplete: missing tax_form",
                  held_at=SET_AT),
    StatementReleased(**STATEMENT, released_at=SET_AT),
    PaymentRunCreated(payment_run_id="run_" + "4" * 24, method=PaymentMethodKind.SEPA,
                      payments=(RunPayment(**STATEMENT, amount=Decimal("40.00")),), created_at=SET_AT),
    PaymentRunConfirmed(payment_run_id="run_" + "4" * 24, paid=(),
                        failed=(FailedPayment(statement_id="st_" + "3" * 24, reason="account closed"),),
                        confirmed_at=SET_AT),
    StatementPaymentFailed(**STATEMENT, amount=Decimal("40.00"), payment_run_id="run_" + "4" * 24,
                           reason="account closed", failed_at=SET_AT),
    InvoiceIssued(**INVOICE, invoice_number="AFX-2026-000001", net=Decimal("40.00"), vat=Decimal("0.00"),
                  total=Decimal("40.00")),
    InvoiceIssued(**INVOICE, invoice_number="AFX-2026-000002", kind=InvoiceKind.CREDIT_NOTE,
                  net=Decimal("-40.00"), vat=Decimal("0.00"), total=Decimal("-40.00"),
                  corrects="AFX-2026-000001"),
    FxRateSet(base="EUR", quote="USD", day=date(2026, 12, 1), rate=Decimal("1.0842"), source="ecb",
              set_at=SET_AT),
    StatementConverted(**STATEMENT, paid_currency="USD", total=Decimal("43.37"), converted_at=SET_AT,
                       lines=(ConvertedLine(kind=LineKind.COMMISSION, ref="cv_1", original=Decimal("40.00"),
                                            amount=Decimal("43.37"), pair="EUR/USD", rate=Decimal("1.0842"),
                                            rate_day=date(2026, 12, 1)),)),
]
