"""The files a payment run hands to a bank or a provider, from its payments and each
payee's opened details.

- SEPA: a pain.001.001.03 credit transfer made by ``sepaxml``, which validates it against
  the schema it ships before it answers (a file the bank would refuse is never handed
  out); one batch from the network's account (``AFFLUX_PAYOUTS_SEPA_*``), one transaction
  per statement, its end-to-end id the statement's id.
- PayPal: the CSV PayPal Payouts takes (recipient, amount, currency, reference, note,
  wallet), one row per statement.
- Wire: a CSV with the bank details a wire needs, one row per statement.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sepaxml import SepaTransfer

from afflux_payouts.application.payment_runs import FileMaker, PaymentFile


@dataclass(frozen=True)
class Debtor:
    """The network's own account, which a SEPA transfer debits."""

    name: str
    iban: str
    bic: str


Payee = Mapping[str, Any]
"""A payee's opened details: ``{"tax": {...}, "payment_method": {...}}``."""


def sepa_file(run_id: str, payments: Sequence[Mapping[str, Any]], payees: Mapping[str, Payee],
              debtor: Debtor, on: datetime) -> PaymentFile:
    transfer = SepaTransfer({"name": debtor.name, "IBAN": debtor.iban, "BIC": debtor.bic, "batch": True,
                             "currency": "EUR"}, clean=True)
    transfer.msg_id = run_id[:35]
    for payment in payments:
        method = payees[payment["partner_id"]]["payment_method"]
        transfer.add_payment({
            "name": method["account_holder"], "IBAN": method["iban"], "BIC": method["bic"],
            "amount": int(Decimal(payment["amount"]) * 100), "execution_date": on.date(),
            "description": f"Afflux statement {payment['statement_id']}",
            "endtoend_id": payment["statement_id"][:35]})
    return PaymentFile(f"{run_id}.xml", "application/xml", transfer.export(validate=True))


PAYPAL_COLUMNS = ("Email/Phone", "Amount", "Currency code", "Reference ID", "Note to recipient",
                  "Recipient wallet")
WIRE_COLUMNS = ("statement_id", "partner_id", "account_holder", "account_number", "swift_bic", "bank_name",
                "bank_country", "routing_number", "bank_address", "amount", "currency", "reference")


Payments = Sequence[Mapping[str, Any]]


def paypal_file(run_id: str, payments: Payments, payees: Mapping[str, Payee]) -> PaymentFile:
    rows = [(payees[p["partner_id"]]["payment_method"]["email"], p["amount"], p["currency"],
             p["statement_id"], f"Afflux statement {p['statement_id']}", "PayPal") for p in payments]
    return PaymentFile(f"{run_id}-paypal.csv", "text/csv", _csv(PAYPAL_COLUMNS, rows))


def wire_file(run_id: str, payments: Sequence[Mapping[str, Any]], payees: Mapping[str, Payee]) -> PaymentFile:
    rows = []
    for p in payments:
        method = payees[p["partner_id"]]["payment_method"]
        rows.append((p["statement_id"], p["partner_id"], method["account_holder"], method["account_number"],
                     method["swift_bic"], method["bank_name"], method["bank_country"],
                     method.get("routing_number") or "", method.get("bank_address") or "", p["amount"],
                     p["currency"], f"Afflux statement {p['statement_id']}"))
    return PaymentFile(f"{run_id}-wire.csv", "text/csv", _csv(WIRE_COLUMNS, rows))


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def file_maker(debtor: Debtor | None) -> FileMaker:
    """The files of each method; SEPA needs the network's account (``NoDebtor`` without)."""

    def make(method: str, run_id: str, payments: Payments, payees: Mapping[str, Payee],
             on: datetime) -> PaymentFile:
        if method == "sepa":
            if debtor is None:
                raise NoDebtor("no AFFLUX_PAYOUTS_SEPA_NAME / _IBAN / _BIC: the network's account a SEPA "
                               "transfer debits is not configured")
            return sepa_file(run_id, payments, payees, debtor, on)
        if method == "paypal":
            return paypal_file(run_id, payments, payees)
        return wire_file(run_id, payments, payees)

    return make


class NoDebtor(RuntimeError):
    """SEPA files need the network's own account in the settings."""

