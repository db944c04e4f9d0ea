"""A payment run: finance's selection of payable statements to pay by one method, and its
confirmation, which pays each once or records why its payment failed.

The run is an aggregate in payouts' event store, published as ``PaymentRunCreated`` and
``PaymentRunConfirmed``; each statement it pays gets its own ``StatementPaid`` (with the
run's id) or ``StatementPaymentFailed`` from the statement's aggregate, saved in the same
transaction as the confirmation. A run is confirmed once: confirming it again changes
nothing and answers what the first confirmation did, so a run confirmed twice pays once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_payouts.domain.records import NAMESPACE

PAYMENT_RUN_CREATED = "afflux_payouts:PaymentRun.Created"
PAYMENT_RUN_CONFIRMED = "afflux_payouts:PaymentRun.Confirmed"
METHODS = ("sepa", "paypal", "wire")


class RunRefused(ValueError):
    """A selection or a confirmation finance has to change (``field``: what)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(frozen=True)
class Candidate:
    """A statement as a run's selection sees it."""

    statement_id: str
    partner_id: str
    currency: str
    total: Decimal
    status: str
    payment_method: str | None
    in_open_run: bool


def chosen(method: str, candidates: Sequence[Candidate], named: Sequence[str] | None) -> list[Candidate]:
    """The statements a run of ``method`` pays: each one named must be payable, of a partner
    paid by ``method`` and in no open run (else ``RunRefused`` naming it); without names,
    every such statement among ``candidates`` (a SEPA run: the EUR ones)."""
    if named is None:
        found = [c for c in candidates if _why_not(method, c) is None]
    else:
        by_id = {c.statement_id: c for c in candidates}
        for statement_id in named:
            candidate = by_id.get(statement_id)
            reason = _why_not(method, candidate) if candidate else "there is no such statement"
            if reason is not None:
                raise RunRefused("statement_not_payable", f"statement {statement_id}: {reason}",
                                 "statement_ids")
        found = [by_id[statement_id] for statement_id in dict.fromkeys(named)]
    if not found:
        raise RunRefused("nothing_to_pay", f"no payable statement is paid by {method}")
    return found


def _why_not(method: str, candidate: Candidate) -> str | None:
    if candidate.status != "payable":
        return f"it is {candidate.status}, not payable"
    if candidate.payment_method != method:
        return f"its partner is paid by {candidate.payment_method or 'no payment method yet'}, not {method}"
    if candidate.in_open_run:
        return "it is in a payment run not confirmed yet"
    if method == "sepa" and candidate.currency != "EUR":
        return f"a SEPA credit transfer pays EUR, not {candidate.currency}"
    if candidate.total <= 0:
        return "its total is not positive"
    return None


class PaymentRun(Aggregate):
    """One run; ``payments``: ``{statement_id, partner_id, currency, amount}`` each."""

    TOPIC = "afflux_payouts:PaymentRun"

    if TYPE_CHECKING:
        payment_run_id: str
        method: str
        payments: list[dict[str, Any]]
        due_by: datetime | None
        created_at: datetime
        paid: list[str] | None
        failed: list[dict[str, str]]

    class Created(Aggregate.Created):
        TOPIC = PAYMENT_RUN_CREATED

        payment_run_id: str
        method: str
        payments: list[dict[str, Any]]
        due_by: datetime | None
        created_at: datetime

        def apply(self, aggregate: Any) -> None:
            for name in ("payment_run_id", "method", "payments", "due_by", "created_at"):
                setattr(aggregate, name, getattr(self, name))
            aggregate.paid, aggregate.failed = None, []

    class Confirmed(Aggregate.Event):
        TOPIC = PAYMENT_RUN_CONFIRMED

        payment_run_id: str
        paid: list[str]
        failed: list[dict[str, str]]
        confirmed_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.paid, aggregate.failed = list(self.paid), list(self.failed)

    @staticmethod
    def create_id(payment_run_id: str) -> UUID:
        return uuid5(NAMESPACE, f"payment-run:{payment_run_id}")

    @classmethod
    def select(cls, payment_run_id: str, method: str, payments: Sequence[Candidate], due_by: datetime | None,
               created_at: datetime) -> PaymentRun:
        listed = [{"statement_id": c.statement_id, "partner_id": c.partner_id, "currency": c.currency,
                   "amount": format(c.total, "f")} for c in payments]
        return cls._create(cls.Created, id=cls.create_id(payment_run_id), payment_run_id=payment_run_id,
                           method=method, payments=listed, due_by=due_by, created_at=created_at)

    @property
    def confirmed(self) -> bool:
        return self.paid is not None

    def failures(self, failed: Mapping[str, str]) -> dict[str, str]:
        """``failed`` checked: each a statement of this run, with a reason."""
        mine = {payment["statement_id"] for payment in self.payments}
        for statement_id, reason in failed.items():
            if statement_id not in mine:
                message = f"statement {statement_id} is not in run {self.payment_run_id}"
                raise RunRefused("not_in_run", message, "failed")
            if not reason.strip():
                raise RunRefused("invalid_request", f"the failure of {statement_id} needs a reason", "failed")
        return dict(failed)

    def confirm(self, paid: Sequence[str], failed: Mapping[str, str], at: datetime) -> None:
        failures = [{"statement_id": s, "reason": r} for s, r in failed.items()]
        self.trigger_event(self.Confirmed, payment_run_id=self.payment_run_id, paid=list(paid),
                           failed=failures, confirmed_at=at)
