"""What payouts itself decides, as event-sourced aggregates: statements and adjustments.

They live in payouts' event store, whose notification log is its outbox: the relay
publishes them on ``afflux.payouts.v1`` (``application/published.py``), and only
the fold of that log moves money between the ledger's buckets. The aggregate is
where a decision is checked (a statement is issued once, paid once); the
projection is where its effect on balances shows.

A statement's aggregate id is a pure function of its statement_id (itself one of
partner, currency and period end), so a close decided twice finds the first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_contracts import StatementIssued, StatementStatus

NAMESPACE = UUID("6f1d3c55-2b0e-4c8e-9a51-0d7e7c3b9a42")
"""Statement and adjustment ids map to aggregate ids in this namespace: never change it."""

STATEMENT_ISSUED = "afflux_payouts:Statement.Issued"
STATEMENT_PAID = "afflux_payouts:Statement.Paid"
STATEMENT_HELD = "afflux_payouts:Statement.Held"
STATEMENT_RELEASED = "afflux_payouts:Statement.Released"
STATEMENT_PAYMENT_FAILED = "afflux_payouts:Statement.PaymentFailed"
ADJUSTMENT_MADE = "afflux_payouts:Adjustment.Made"


class NotPayable(Exception):
    """Paying a statement that is paid already, or that carried its total over."""


class Statement(Aggregate):
    """One issued statement; it can be paid once, if payable and not on hold. A payable
    statement is held (``hold``) when its partner's tax and payment profile is incomplete
    at its close, and released (``release``) once it is complete."""

    TOPIC = "afflux_payouts:Statement"

    if TYPE_CHECKING:
        statement: dict[str, Any]
        status: StatementStatus
        reference: str | None
        paid_at: datetime | None
        hold_reason: str | None

    class Created(Aggregate.Created):
        """Never stored on its own (a statement is created ``Issued``)."""

        TOPIC = "afflux_payouts:Statement.Created"

    class Issued(Created):
        TOPIC = STATEMENT_ISSUED

        statement: dict[str, Any]
        """The StatementIssued payload, in its JSON form (exactly what is published)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.statement = self.statement
            aggregate.status = StatementStatus(self.statement["status"])
            aggregate.reference = None
            aggregate.paid_at = None
            aggregate.hold_reason = None

    class Named(Aggregate.Event):
        """An event of an issued statement, naming it as the published one does (a base:
        never stored under its own topic)."""

        TOPIC = "afflux_payouts:Statement.Named"

        statement_id: str
        partner_id: str
        currency: str

    class Paid(Named):
        TOPIC = STATEMENT_PAID

        amount: str
        reference: str | None
        payment_run_id: str | None = None
        """The payment run that paid it (absent from payments stored before runs)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.status = StatementStatus.PAID
            aggregate.reference = self.reference
            aggregate.paid_at = self.timestamp

    class PaymentFailed(Named):
        """A run's payment of it was refused: it stays payable."""

        TOPIC = STATEMENT_PAYMENT_FAILED

        amount: str
        payment_run_id: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.payment_failure = self.reason

    class Held(Named):
        TOPIC = STATEMENT_HELD

        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.hold_reason = self.reason

    class Released(Named):
        TOPIC = STATEMENT_RELEASED

        def apply(self, aggregate: Any) -> None:
            aggregate.hold_reason = None

    @staticmethod
    def create_id(statement_id: str) -> UUID:
        return uuid5(NAMESPACE, f"statement:{statement_id}")

    @classmethod
    def issue(cls, issued: StatementIssued) -> Statement:
        return cls._create(cls.Issued, id=cls.create_id(issued.statement_id),
                           statement=issued.model_dump(mode="json"))

    @property
    def issued(self) -> StatementIssued:
        return StatementIssued.model_validate(self.statement)

    @property
    def on_hold(self) -> bool:
        return getattr(self, "hold_reason", None) is not None

    def hold(self, reason: str) -> None:
        """Keep a payable statement from being paid (its lines stay owed)."""
        if self.status is StatementStatus.PAYABLE and not self.on_hold:
            self.trigger_event(self.Held, **self._names(), reason=reason)

    def release(self) -> bool:
        """Make a held statement payable again; False if it was not held."""
        if not self.on_hold:
            return False
        self.trigger_event(self.Released, **self._names())
        return True

    def _names(self) -> dict[str, str]:
        """What a hold or a release publishes of the statement it names."""
        return {name: self.statement[name] for name in ("statement_id", "partner_id", "currency")}

    def payment_failed(self, payment_run_id: str, reason: str) -> None:
        """A run's payment of this statement was refused (it stays payable)."""
        if self.status is not StatementStatus.PAYABLE:
            return
        self.trigger_event(self.PaymentFailed, **self._names(), amount=self.statement["total"],
                           payment_run_id=payment_run_id, reason=reason)

    def pay(self, reference: str | None, payment_run_id: str | None = None) -> None:
        if self.on_hold:
            raise NotPayable(f"statement {self.statement['statement_id']} is on hold: {self.hold_reason}")
        if self.status is StatementStatus.PAID:
            raise NotPayable(f"statement {self.statement['statement_id']} was paid already"
                             + (f" (reference {self.reference})" if self.reference else ""))
        if self.status is not StatementStatus.PAYABLE:
            raise NotPayable(f"statement {self.statement['statement_id']} carried its total "
                             f"({self.statement['total']} {self.statement['currency']}) over to the "
                             "next statement: nothing on it is payable")
        issued = self.statement
        self.trigger_event(self.Paid, statement_id=issued["statement_id"], partner_id=issued["partner_id"],
                           currency=issued["currency"], amount=issued["total"], reference=reference,
                           payment_run_id=payment_run_id)


class Adjustment(Aggregate):
    """An admin's adjustment of a partner's balance (published as BalanceAdjusted)."""

    TOPIC = "afflux_payouts:Adjustment"

    class Created(Aggregate.Created):
        """Never stored on its own (an adjustment is created ``Made``)."""

        TOPIC = "afflux_payouts:Adjustment.Created"

    class Made(Created):
        TOPIC = ADJUSTMENT_MADE

        adjustment_id: str
        partner_id: str
        currency: str
        amount: str
        reason: str
        note: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.adjustment_id = self.adjustment_id

    @staticmethod
    def create_id(adjustment_id: str) -> UUID:
        return uuid5(NAMESPACE, f"adjustment:{adjustment_id}")

    @classmethod
    def make(cls, adjustment_id: str, partner_id: str, currency: str, amount: str, reason: str,
             note: str | None) -> Adjustment:
        return cls._create(cls.Made, id=cls.create_id(adjustment_id), adjustment_id=adjustment_id,
                           partner_id=partner_id, currency=currency, amount=amount, reason=reason, note=note)
