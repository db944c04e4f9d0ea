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
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from afflux_contracts import StatementConverted, StatementIssued, StatementStatus

NAMESPACE = UUID("6f1d3c55-2b0e-4c8e-9a51-0d7e7c3b9a42")
"""Statement and adjustment ids map to aggregate ids in this namespace: never change it."""

STATEMENT_ISSUED = "afflux_payouts:Statement.Issued"
STATEMENT_PAID = "afflux_payouts:Statement.Paid"
STATEMENT_HELD = "afflux_payouts:Statement.Held"
STATEMENT_RELEASED = "afflux_payouts:Statement.Released"
STATEMENT_PAYMENT_FAILED = "afflux_payouts:Statement.PaymentFailed"
STATEMENT_CONVERTED = "afflux_payouts:Statement.Converted"
ADJUSTMENT_MADE = "afflux_payouts:Adjustment.Made"
RATE_SET = "afflux_payouts:ExchangeRate.Set"


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

    class Converted(Aggregate.Event):
        """Converted to the currency its partner is paid in (``domain/fx.py``)."""

        TOPIC = STATEMENT_CONVERTED

        conversion: dict[str, Any]
        """The StatementConverted payload, in its JSON form (exactly what is published)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.conversion = self.conversion

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
        """Keep a payable statement from being paid (its lines stay owed); a held one is held
        again when the reason changed (a missing rate arrived, the profile is still due)."""
        if self.status is StatementStatus.PAYABLE and self.hold_reason != reason:
            self.trigger_event(self.Held, **self._names(), reason=reason)

    @property
    def converted(self) -> StatementConverted | None:
        """Its conversion to the currency its partner is paid in (None: paid as issued)."""
        conversion = getattr(self, "conversion", None)
        return StatementConverted.model_validate(conversion) if conversion is not None else None

    def convert(self, converted: StatementConverted) -> None:
        """Record the conversion it is paid at (once: a conversion never changes)."""
        if self.converted is None and self.status is StatementStatus.PAYABLE:
            self.trigger_event(self.Converted, conversion=converted.model_dump(mode="json"))

    @property
    def billed(self) -> dict[str, Any]:
        """The statement as it is paid (what its invoice shows): converted, in the paid
        currency, each line with its original amount, rate and rate's day."""
        converted = self.converted
        if converted is None:
            return self.statement
        by_key = {(line.kind.value, line.ref): line for line in converted.lines}
        lines = []
        for line in self.statement["lines"]:
            paid = by_key[(line["kind"], line["ref"])]
            lines.append({**line, "amount": format(paid.amount, "f"), "original_amount": line["amount"],
                          "original_currency": converted.currency, "rate_pair": paid.pair,
                          "rate": format(paid.rate, "f"), "rate_day": paid.rate_day.isoformat()})
        return {**self.statement, "currency": converted.paid_currency, "total": format(converted.total, "f"),
                "lines": lines}

    def payment(self) -> dict[str, str]:
        """What paying it pays: its converted total when converted, else its total."""
        converted = self.converted
        if converted is None:
            return {"currency": self.statement["currency"], "amount": self.statement["total"]}
        return {"currency": converted.paid_currency, "amount": format(converted.total, "f")}

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
        self.trigger_event(self.PaymentFailed, **{**self._names(), **self.payment()},
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
                           reference=reference, payment_run_id=payment_run_id, **self.payment())


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


class ExchangeRate(Aggregate):
    """An exchange rate recorded by finance or imported (published as FxRateSet). Each record
    is its own aggregate: a rate set again for a day is a later fact, not an edit."""

    TOPIC = "afflux_payouts:ExchangeRate"

    class Created(Aggregate.Created):
        """Never stored on its own (a rate is created ``Set``)."""

        TOPIC = "afflux_payouts:ExchangeRate.Created"

    class Set(Created):
        TOPIC = RATE_SET

        base: str
        quote: str
        day: str
        """ISO date."""
        rate: str
        source: str

        def apply(self, aggregate: Any) -> None:
            aggregate.rate = self.rate

    @classmethod
    def record(cls, base: str, quote: str, day: str, rate: str, source: str) -> ExchangeRate:
        return cls._create(cls.Set, id=uuid4(), base=base, quote=quote, day=day, rate=rate, source=source)
