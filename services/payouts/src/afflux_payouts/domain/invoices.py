"""Self-billed invoices: the network issues, on the partner's behalf, the invoice for what
a statement pays it, numbered without gaps per issuing entity and year, never changed (a
correction is a credit note, which negates it).

VAT treatment, decided from the two parties' countries and the partner's VAT id:
- the same country, the partner VAT-registered: ``domestic``, VAT at the issuer's rate,
  *included* in the amount the statement pays (the ledger owes what it owes; the invoice
  says how it splits): net = total / (1 + rate), rounded to the currency's minor unit;
- an EU partner in another member state with a VAT id: ``reverse_charge``, no VAT on the
  invoice, the customer (the network) accounts for it (Article 196, Directive 2006/112/EC);
- otherwise (no VAT id, or outside the EU): ``no_vat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_contracts import round_money
from afflux_payouts.domain.records import NAMESPACE

EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
                "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
NOTES = {
    "domestic": "VAT included at {rate}%.",
    "reverse_charge": "Reverse charge: VAT to be accounted for by the customer "
                      "(Article 196, Directive 2006/112/EC).",
    "no_vat": "No VAT charged.",
}
INVOICE_ISSUED = "afflux_payouts:Invoice.Issued"
INVOICE_CREDITED = "afflux_payouts:Invoice.Credited"
SERIES_OPENED = "afflux_payouts:InvoiceSeries.Opened"
SERIES_NUMBERED = "afflux_payouts:InvoiceSeries.Numbered"


class InvoiceRefused(ValueError):
    """A credit note that cannot be issued (the invoice was credited already, or is one)."""


@dataclass(frozen=True)
class Issuer:
    """The issuing entity (the network): its series' prefix, its details, its VAT rate."""

    entity: str
    name: str
    address: str
    country: str
    vat_id: str
    vat_rate: Decimal


def vat_treatment(issuer: Issuer, country: str | None, vat_id: str | None) -> str:
    if vat_id and country == issuer.country:
        return "domestic"
    if vat_id and country in EU and issuer.country in EU:
        return "reverse_charge"
    return "no_vat"


def figures(total: Decimal, currency: str, treatment: str, rate: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(net, vat, total) of a statement's ``total``: VAT included only when domestic."""
    total = round_money(total, currency)
    if treatment != "domestic" or rate == 0:
        return total, round_money(Decimal(0), currency), total
    net = round_money(total / (1 + rate / 100), currency)
    return net, total - net, total


CONVERTED = ("original_amount", "original_currency", "rate_pair", "rate", "rate_day")
"""What a line of a converted statement shows beside its amount in the paid currency."""


def number_of(entity: str, year: int, sequence: int) -> str:
    return f"{entity}-{year}-{sequence:06d}"


def document(number: str, issuer: Issuer, statement: Mapping[str, Any], supplier: Mapping[str, Any],
             issued_at: datetime) -> dict[str, Any]:
    """The invoice as JSON: both parties, the period, the lines, the figures, the VAT note."""
    currency = statement["currency"]
    treatment = vat_treatment(issuer, supplier.get("country"), supplier.get("vat_id"))
    net, vat, total = figures(Decimal(statement["total"]), currency, treatment, issuer.vat_rate)
    return {
        "invoice_number": number, "kind": "invoice", "issued_at": issued_at.isoformat(),
        "self_billed": True, "statement_id": statement["statement_id"],
        "customer": {"name": issuer.name, "address": issuer.address, "country": issuer.country,
                     "vat_id": issuer.vat_id},
        "supplier": {"partner_id": statement["partner_id"], **{name: supplier.get(name) for name in
                     ("legal_name", "address", "country", "vat_id", "tax_id")}},
        "period_start": statement.get("period_start"), "period_end": statement["period_end"],
        "currency": currency,
        "lines": [{"kind": line["kind"], "ref": line["ref"], "offer_id": line.get("offer_id"),
                   "amount": format(round_money(Decimal(line["amount"]), currency), "f"),
                   **{name: line[name] for name in CONVERTED if name in line}}
                  for line in statement["lines"]],
        "net": format(net, "f"), "vat": format(vat, "f"), "total": format(total, "f"),
        "vat_treatment": treatment,
        "vat_note": NOTES[treatment].format(rate=format(issuer.vat_rate.normalize(), "f")),
        "corrects": None,
    }


def credit_note(number: str, invoice: Mapping[str, Any], reason: str, issued_at: datetime) -> dict[str, Any]:
    """The credit note of ``invoice``: the same parties and lines, every amount negated."""
    def negated(amount: str) -> str:
        return format(-Decimal(amount), "f")

    def negated_line(line: Mapping[str, Any]) -> dict[str, Any]:
        amounts = [name for name in ("amount", "original_amount") if name in line]
        return {**line, **{name: negated(line[name]) for name in amounts}}

    return {**invoice, "invoice_number": number, "kind": "credit_note",
            "issued_at": issued_at.isoformat(),
            "lines": [negated_line(line) for line in invoice["lines"]],
            **{name: negated(invoice[name]) for name in ("net", "vat", "total")},
            "corrects": invoice["invoice_number"], "reason": reason}


class InvoiceSeries(Aggregate):
    """One entity's numbers in one year: each is handed out once, in order (saved with the
    invoice it numbers, so a number is never lost or given twice)."""

    TOPIC = "afflux_payouts:InvoiceSeries"

    if TYPE_CHECKING:
        entity: str
        year: int
        last: int

    class Created(Aggregate.Created):
        """Never stored on its own (a series is created ``Opened``)."""

        TOPIC = "afflux_payouts:InvoiceSeries.Created"

    class Opened(Created):
        TOPIC = SERIES_OPENED

        entity: str
        year: int

        def apply(self, aggregate: Any) -> None:
            aggregate.entity, aggregate.year, aggregate.last = self.entity, self.year, 0

    class Numbered(Aggregate.Event):
        TOPIC = SERIES_NUMBERED

        number: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last += 1

    @staticmethod
    def create_id(entity: str, year: int) -> UUID:
        return uuid5(NAMESPACE, f"invoice-series:{entity}:{year}")

    @classmethod
    def open(cls, entity: str, year: int) -> InvoiceSeries:
        return cls._create(cls.Opened, id=cls.create_id(entity, year), entity=entity, year=year)

    def next_number(self) -> str:
        number = number_of(self.entity, self.year, self.last + 1)
        self.trigger_event(self.Numbered, number=number)
        return number


class Invoice(Aggregate):
    """One invoice or credit note; ``document`` holds it sealed. Never changed: an invoice
    only learns it was credited (once)."""

    TOPIC = "afflux_payouts:Invoice"

    if TYPE_CHECKING:
        invoice: dict[str, Any]
        credited_by: str | None

    class Created(Aggregate.Created):
        """Never stored on its own (an invoice is created ``Issued``)."""

        TOPIC = "afflux_payouts:Invoice.Created"

    class Issued(Created):
        TOPIC = INVOICE_ISSUED

        invoice: dict[str, Any]
        """The figures in clear (the ``InvoiceIssued`` payload's fields) and ``sealed``."""

        def apply(self, aggregate: Any) -> None:
            aggregate.invoice, aggregate.credited_by = self.invoice, None

    class Credited(Aggregate.Event):
        TOPIC = INVOICE_CREDITED

        credit_note: str

        def apply(self, aggregate: Any) -> None:
            aggregate.credited_by = self.credit_note

    @staticmethod
    def create_id(number: str) -> UUID:
        return uuid5(NAMESPACE, f"invoice:{number}")

    @classmethod
    def issue(cls, invoice: Mapping[str, Any]) -> Invoice:
        return cls._create(cls.Issued, id=cls.create_id(invoice["invoice_number"]), invoice=dict(invoice))

    def credit(self, credit_note: str) -> None:
        if self.invoice["kind"] != "invoice":
            raise InvoiceRefused(f"{self.invoice['invoice_number']} is a credit note: it is not credited")
        if self.credited_by is not None:
            raise InvoiceRefused(f"invoice {self.invoice['invoice_number']} was credited already "
                                 f"({self.credited_by})")
        self.trigger_event(self.Credited, credit_note=credit_note)


def clear_figures(doc: Mapping[str, Any], issuer: str, partner_id: str, sealed: str,
                  issued_at: datetime) -> dict[str, Any]:
    """What an invoice publishes in clear (``InvoiceIssued``'s fields), its document sealed."""
    return {"invoice_number": doc["invoice_number"], "kind": doc["kind"], "statement_id": doc["statement_id"],
            "partner_id": partner_id, "issuer": issuer, "currency": doc["currency"], "net": doc["net"],
            "vat": doc["vat"], "total": doc["total"], "vat_treatment": doc["vat_treatment"],
            "corrects": doc["corrects"], "sealed": sealed, "issued_at": issued_at.isoformat()}

