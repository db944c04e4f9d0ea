"""An invoice's PDF, drawn with ``fpdf2`` from its JSON document: the title (self-billed
invoice or credit note) and number, both parties, the period, the lines, net, VAT, total
and the VAT treatment's note. The PDF's core font speaks Latin-1: a character outside it
is drawn as ``?`` (the JSON keeps it).

``fpdf`` is imported when the first PDF is drawn, not when payouts starts: with its
font tools it was over a third of the service's imports (0.85 s of 2.2 s, 2026-12-07), paid
again on every restart after a crash, before the ledger consumes again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF


def invoice_pdf(doc: Mapping[str, Any]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(f"{doc['invoice_number']}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    title = "Credit note" if doc["kind"] == "credit_note" else "Self-billed invoice"
    _line(pdf, f"{title} {doc['invoice_number']}", 10)
    pdf.set_font("Helvetica", size=10)
    _line(pdf, f"Issued {doc['issued_at'][:10]}; statement {doc['statement_id']}")
    _line(pdf, f"Period {(doc.get('period_start') or '')[:10]} - {doc['period_end'][:10]}")
    if doc.get("corrects"):
        _line(pdf, f"Corrects invoice {doc['corrects']}: {doc.get('reason') or ''}")
    _party(pdf, "Customer (issuer, self-billing)", doc["customer"])
    _party(pdf, "Supplier (partner)", doc["supplier"])
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, "Lines")
    pdf.set_font("Helvetica", size=9)
    for item in doc["lines"]:
        offer = item.get("offer_id") or ""
        converted = (f" ({item['original_amount']} {item['original_currency']} at {item['rate_pair']} "
                     f"{item['rate']} of {item['rate_day']})" if "original_amount" in item else "")
        _line(pdf, f"{item['kind']} {item['ref']} {offer}  {item['amount']} {doc['currency']}{converted}")
    pdf.set_font("Helvetica", "B", 10)
    for name in ("net", "vat", "total"):
        _line(pdf, f"{name.upper() if name == 'vat' else name.capitalize()}: {doc[name]} {doc['currency']}")
    pdf.set_font("Helvetica", size=10)
    _line(pdf, f"VAT treatment: {doc['vat_treatment']}. {doc['vat_note']}")
    return bytes(pdf.output())


def _party(pdf: FPDF, heading: str, party: Mapping[str, Any]) -> None:
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, heading)
    pdf.set_font("Helvetica", size=10)
    address = party.get("address")
    if isinstance(address, Mapping):
        address = ", ".join(str(v) for v in address.values() if v)
    for text in (party.get("legal_name") or party.get("name"), address, party.get("country"),
                 f"VAT id {party['vat_id']}" if party.get("vat_id") else None,
                 f"Tax id {party['tax_id']}" if party.get("tax_id") else None):
        if text:
            _line(pdf, str(text))


def _line(pdf: FPDF, text: str, height: float = 6) -> None:
    latin = text.encode("latin-1", "replace").decode("latin-1")
    pdf.multi_cell(0, height, latin, new_x="LMARGIN", new_y="NEXT")
