"""Finance events: a partner's tax and payment profile (``afflux.partners.v1``) and the
holds on its statements (``afflux.payouts.v1``).

The log carries no bank or tax number in clear. A profile's details (legal name,
address, tax id, VAT id, PayPal email, IBAN, BIC, wire details) travel only inside
``sealed``: a Fernet token (AES-128-CBC with HMAC-SHA256, the ``cryptography``
package) of their JSON, made with the key the partners service holds
(``AFFLUX_PROFILE_KEYS``); a reader without the key sees what the profile *is*
(its country, its tax form, the kind of payment method, whether it is complete and
what is missing), never what it *says*.

A statement whose partner's profile is incomplete when it is issued is held
(``StatementHeld``, with the reason) right after its ``StatementIssued``; it stays
owed (its lines are claimed) but cannot be paid until ``StatementReleased``.

A payment run (``PaymentRunCreated``, keyed by its id) gathers payable statements of one
payment method; confirming it (``PaymentRunConfirmed``) pays each statement once
(``StatementPaid`` with the run's id) or, for a payment the bank or provider refused,
records ``StatementPaymentFailed`` with the reason: that statement stays payable and may
go into another run.

A payable statement of a partner whose profile is complete gets a self-billed invoice
(``InvoiceIssued``): numbered without gaps per issuing entity and year, never changed;
a correction is a credit note (``InvoiceIssued`` of kind ``credit_note``, naming the
invoice it corrects, with the amounts negated). Its document (both parties, the lines,
the VAT treatment) is sealed like a profile, as it carries the partner's tax details.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.topics import PARTNERS, PAYOUTS
from afflux_contracts.values import Currency, DecimalString, UtcDatetime


class TaxForm(StrEnum):
    """The US tax form a partner gave: ``w9`` (a US person), ``w8ben`` (a foreign
    individual), ``w8ben_e`` (a foreign entity), or ``none_needed`` (the program pays
    no US-sourced income to it)."""

    W9 = "w9"
    W8BEN = "w8ben"
    W8BEN_E = "w8ben_e"
    NONE_NEEDED = "none_needed"


class PaymentMethodKind(StrEnum):
    """How a partner is paid: PayPal (an email), a SEPA credit transfer (IBAN + BIC) or
    an international wire (account and bank details)."""

    PAYPAL = "paypal"
    SEPA = "sepa"
    WIRE = "wire"


class PartnerPayoutProfileSet(Event):
    """A partner's tax and payment profile, whole, after a change: what it is in clear,
    what it says sealed (see the module docstring)."""

    topic: ClassVar = PARTNERS

    partner_id: str
    country: str | None = None
    """ISO 3166-1 alpha-2 of the legal address."""
    tax_form: TaxForm | None = None
    payment_method: PaymentMethodKind | None = None
    complete: bool = False
    """Everything a payment needs is there: statements are not held for the profile."""
    missing: tuple[str, ...] = ()
    """What keeps it incomplete (``legal_name``, ``address``, ``country``, ``tax_form``,
    ``tax_id``, ``payment_method``)."""
    sealed: str = ""
    """The details as a Fernet token (never in clear on the log)."""
    changed: tuple[str, ...] = ()
    """``tax_profile`` and/or ``payment_method``: what this change set."""
    set_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class StatementHeld(Event):
    """A payable statement that may not be paid yet (``reason``: why)."""

    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    reason: str = Field(min_length=1)
    held_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class StatementReleased(Event):
    """A held statement is payable again (its partner's profile became complete)."""

    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    released_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class RunPayment(BaseModel):
    """One statement a payment run pays: its partner, currency and amount."""

    model_config = ConfigDict(frozen=True)

    statement_id: str
    partner_id: str
    currency: Currency
    amount: DecimalString


class FailedPayment(BaseModel):
    model_config = ConfigDict(frozen=True)

    statement_id: str
    reason: str = Field(min_length=1)


class PaymentRunCreated(Event):
    """Finance's selection of payable statements to pay by one method (the files its bank or
    provider takes are made from it)."""

    topic: ClassVar = PAYOUTS

    payment_run_id: str
    method: PaymentMethodKind
    payments: tuple[RunPayment, ...]
    due_by: UtcDatetime | None = None
    """``all due by``: the statements whose period ended by then (None: chosen one by one)."""
    created_at: UtcDatetime

    def partition_key(self) -> str:
        return self.payment_run_id


class PaymentRunConfirmed(Event):
    """The run's money moved: ``paid`` statements are paid, ``failed`` ones were refused."""

    topic: ClassVar = PAYOUTS

    payment_run_id: str
    paid: tuple[str, ...] = ()
    failed: tuple[FailedPayment, ...] = ()
    confirmed_at: UtcDatetime

    def partition_key(self) -> str:
        return self.payment_run_id


class StatementPaymentFailed(Event):
    """A payment of a run that the bank or provider refused: the statement stays payable."""

    topic: ClassVar = PAYOUTS

    statement_id: str
    partner_id: str
    currency: Currency
    amount: DecimalString
    payment_run_id: str
    reason: str = Field(min_length=1)
    failed_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class VatTreatment(StrEnum):
    """``domestic``: VAT at the issuer's rate, included in the amount paid;
    ``reverse_charge``: an EU supplier in another member state with a VAT id, the customer
    accounts for the VAT; ``no_vat``: none charged (no VAT id, or outside the EU)."""

    DOMESTIC = "domestic"
    REVERSE_CHARGE = "reverse_charge"
    NO_VAT = "no_vat"


class InvoiceIssued(Event):
    """A self-billed invoice (or a credit note) of one statement; its figures in clear, its
    document (parties, lines) sealed."""

    topic: ClassVar = PAYOUTS

    invoice_number: str
    kind: InvoiceKind = InvoiceKind.INVOICE
    statement_id: str
    partner_id: str
    issuer: str
    """The issuing entity whose series numbers it (``<entity>-<year>-<sequence>``)."""
    currency: Currency
    net: DecimalString
    vat: DecimalString
    total: DecimalString
    vat_treatment: VatTreatment
    corrects: str | None = None
    """A credit note: the invoice number it corrects."""
    sealed: str = ""
    issued_at: UtcDatetime

    def partition_key(self) -> str:
        return self.partner_id

