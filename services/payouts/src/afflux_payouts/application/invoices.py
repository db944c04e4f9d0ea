"""Issuing self-billed invoices and credit notes, and reading them back.

An invoice is issued for each payable (or paid) statement of a partner whose tax and
payment profile is complete and that has no standing invoice (none yet, or its last one
credited): ``issue_ready``, every few seconds. Issues run one at a time (the close's
lock) after the fold caught up with the invoices recorded before; each takes the next
number of its entity's series for the year and is saved with it, so numbers have no gap
and none is given twice. The document carries the partner's legal name, address and
tax ids (opened from its sealed profile), so it is sealed again before it is recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError

from afflux_contracts import utc_now
from afflux_payouts.application.payment_runs import Opener
from afflux_payouts.application.statements import NotFoldedYet, Statements
from afflux_payouts.domain.invoices import (
    Invoice,
    InvoiceSeries,
    Issuer,
    clear_figures,
    credit_note,
    document,
)
from afflux_plumbing.sealing import UnreadableSeal

log = logging.getLogger(__name__)


class Sealer(Opener, Protocol):
    def seal(self, details: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class Ready:
    """A statement to invoice, with its partner's sealed profile."""

    statement_id: str
    sealed_profile: str


class InvoiceDesk(Protocol):
    def ready(self) -> list[Ready]: ...

    def numbers(self, statement_id: str) -> list[str]:
        """The statement's invoices and credit notes, oldest first."""
        ...

    def unfolded(self) -> int: ...


class UnknownInvoice(LookupError):
    pass


class Invoices:
    def __init__(self, statements: Statements, desk: InvoiceDesk, sealer: Sealer,
                 issuer: Issuer | None) -> None:
        self.statements, self.store = statements, statements.store
        self.desk, self.sealer, self.issuer = desk, sealer, issuer

    def issue_ready(self) -> list[str]:
        """Invoice every statement that is due one; the numbers issued."""
        if self.issuer is None:
            return []
        issued = []
        with self.statements.exclusive():
            self._wait_folded()
            for ready in self.desk.ready():
                try:
                    issued.append(self._issue(ready, self.issuer))
                except UnreadableSeal as error:  # a profile no key opens: the others go on
                    log.warning("statement %s not invoiced: %s", ready.statement_id, error)
        return issued

    def credit(self, number: str, reason: str) -> dict[str, Any]:
        """A credit note negating invoice ``number`` (once); the next issue invoices its
        statement again, from the profile as it is then."""
        with self.statements.exclusive():
            invoice = self._invoice(number)
            issuer = self._issuer()
            original = self.document(number)
            now = utc_now()
            series = self._series(issuer, now.year)
            credit_number = series.next_number()
            invoice.credit(credit_number)
            doc = credit_note(credit_number, original, reason, now)
            note = Invoice.issue(clear_figures(doc, issuer.entity, invoice.invoice["partner_id"],
                                               self.sealer.seal(doc), now))
            self.store.save(series, invoice, note)
        self._wait_folded()
        return doc

    def document(self, number: str) -> dict[str, Any]:
        """The invoice or credit note as JSON (opened)."""
        return self.sealer.unseal(self._invoice(number).invoice["sealed"])

    def of_statement(self, statement_id: str) -> list[str]:
        return self.desk.numbers(statement_id)

    def _issue(self, ready: Ready, issuer: Issuer) -> str:
        statement = self.statements.statement(ready.statement_id).billed
        supplier = self.sealer.unseal(ready.sealed_profile).get("tax") or {}
        now = utc_now()
        series = self._series(issuer, now.year)
        number = series.next_number()
        doc = document(number, issuer, statement, supplier, now)
        sealed = self.sealer.seal(doc)
        invoice = Invoice.issue(clear_figures(doc, issuer.entity, statement["partner_id"], sealed, now))
        self.store.save(series, invoice)
        return number

    def _series(self, issuer: Issuer, year: int) -> InvoiceSeries:
        try:
            series: InvoiceSeries = self.store.repository.get(InvoiceSeries.create_id(issuer.entity, year))
        except AggregateNotFoundError:
            series = InvoiceSeries.open(issuer.entity, year)
        return series

    def _invoice(self, number: str) -> Invoice:
        try:
            invoice: Invoice = self.store.repository.get(Invoice.create_id(number))
        except AggregateNotFoundError as error:
            raise UnknownInvoice(f"no invoice {number}") from error
        return invoice

    def _issuer(self) -> Issuer:
        if self.issuer is None:
            raise NoIssuer("no AFFLUX_INVOICE_ISSUER_NAME / _COUNTRY / _VAT_ID: invoices are not issued")
        return self.issuer

    def _wait_folded(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.desk.unfolded() > 0:
            if time.monotonic() > deadline:
                raise NotFoldedYet("payouts has not folded the invoices it issued before yet: "
                                   "retry shortly")
            time.sleep(0.05)


class NoIssuer(RuntimeError):
    """The issuing entity is not configured."""
