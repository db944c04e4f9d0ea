"""Payouts' own log folded back, in log order: statements issued, payments, adjustments.

Payouts decides statements (``statements.py``) but only folding them back from
``afflux.payouts.v1`` moves money. A ``StatementIssued`` is judged first
(``statements.refusal``) against what the ledger holds for its lines as of its
period end and log position, less what statements before it claimed (the ones
before it in this run as well as those already recorded): a provable statement
claims its lines, anything else is kept as ``refused`` with its reason and claims
nothing. A statement can only be judged once the attribution log has been folded up
to its ``log_position`` (``NotRecordedYet`` until then: it is parked and retried).

A statement_id already recorded is the same statement published again (nothing
changes) unless it differs: then it is refused as a conflict, except that a provable
statement replaces a refused one of the same id (a forgery that came first cannot
take a genuine statement's place).

A payment run (``PaymentRunCreated``, ``PaymentRunConfirmed``) is kept as it is; a
payment of a run (``StatementPaid`` with its id) is a payment like another, and a failed
one (``StatementPaymentFailed``) leaves its statement payable with the reason. Runs are
keyed by their id, statements by partner, so the two may be folded in either order:
the writes do not depend on it.

A hold (``StatementHeld``) moves a payable statement to ``on_hold`` with its reason (a
held one held again takes the new reason) and a release (``StatementReleased``) back to
``payable``; a held statement still claims its
lines (they are owed) but a payment of it is refused. A hold of a statement that is not
payable, or a release of one that is not held, changes nothing (a duplicate, or one
that lost a race with a payment).

A conversion (``StatementConverted``) makes a payable or held statement paid in its
partner's billing currency: its payment must then pay the converted total in it. Exchange
rates (``FxRateSet``) are kept as recorded (``domain/fx.py`` reads the one in force).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from afflux_contracts import (
    ATTRIBUTION,
    BalanceAdjusted,
    Event,
    FxRateSet,
    InvoiceIssued,
    PaymentRunConfirmed,
    PaymentRunCreated,
    StatementConverted,
    StatementHeld,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatementPaymentFailed,
    StatementReleased,
    StatementStatus,
    round_money,
)
from afflux_payouts.domain.ledger import Refused
from afflux_payouts.domain.ledger_fold import NotRecordedYet, Source
from afflux_payouts.domain.statements import CLAIMING, LineKey, line_key, refusal

REFUSED = "refused"
"""The status of a statement the fold refused (not an issued status: only the fold's verdict)."""
ON_HOLD = "on_hold"
"""The status of a payable statement that may not be paid yet (a hold's, not an issued one)."""

LINES_FROM = (ATTRIBUTION.name,)
"""The topics a statement's lines are decided from: the fold must have reached its
``log_position`` on these before it can judge the statement."""


class ConflictingStatement(Refused):
    """A statement_id recorded already, published again with other lines."""


class NotPayable(Refused):
    """A payment of a statement that carried its total over, or was refused, or that
    names another partner, currency or amount."""


@dataclass(frozen=True)
class Standing:
    """A statement as the projection holds it (``status``: a ``StatementStatus`` value or
    ``refused``)."""

    statement_id: str
    partner_id: str
    currency: str
    status: str
    total: Decimal
    digest: str
    paid_currency: str | None = None
    """Set once converted: what paying it pays is ``paid_total`` in this currency."""
    paid_total: Decimal | None = None

    @property
    def payment(self) -> tuple[str, Decimal]:
        """The currency and amount a payment of it pays (rounded)."""
        if self.paid_currency is not None and self.paid_total is not None:
            return self.paid_currency, round_money(self.paid_total, self.paid_currency)
        return self.currency, round_money(self.total, self.currency)


Claims = dict[tuple[str, str], dict[LineKey, tuple[Decimal, StatementLine]]]
"""Per (partner_id, currency): what statements claimed of each line key, and the last line
that claimed it."""


@dataclass
class Books:
    """What the fold of a run knows before its first step (each read once for the run)."""

    standings: dict[str, Standing] = field(default_factory=dict)
    held: dict[str, dict[LineKey, StatementLine]] = field(default_factory=dict)
    """Per StatementIssued (by ``Source.recorded_from``): what the ledger holds unclaimed
    for each line it names, from the records before it (``statements.refusal``)."""
    applied: dict[str, int] = field(default_factory=dict)
    """The last offset folded of each ``topic#partition``."""
    claimed: Claims = field(default_factory=dict)
    """What statements earlier in this run claimed."""


@dataclass(frozen=True)
class Stated:
    """A statement to record: as issued, with the fold's verdict."""

    issued: StatementIssued
    status: str
    refusal: str | None
    source: Source
    replaces: bool = False
    """It takes the place of a refused statement of the same id (whose lines go)."""


@dataclass
class Folded:
    """What a run of payouts' own records changes, in log order."""

    stated: dict[str, Stated] = field(default_factory=dict)
    payments: list[tuple[StatementPaid, Source]] = field(default_factory=list)
    adjustments: list[tuple[BalanceAdjusted, Source]] = field(default_factory=list)
    holds: dict[str, str | None] = field(default_factory=dict)
    """statement_id -> the reason it is held (None: released), as the run leaves it."""
    runs: list[tuple[PaymentRunCreated, Source]] = field(default_factory=list)
    confirmations: list[tuple[PaymentRunConfirmed, Source]] = field(default_factory=list)
    failures: list[tuple[StatementPaymentFailed, Source]] = field(default_factory=list)
    invoices: list[tuple[InvoiceIssued, Source]] = field(default_factory=list)
    conversions: list[tuple[StatementConverted, Source]] = field(default_factory=list)
    rates: list[tuple[FxRateSet, Source]] = field(default_factory=list)


class Step(Protocol):
    def apply(self, books: Books, folded: Folded) -> None: ...


@dataclass(frozen=True)
class Issued:
    issued: StatementIssued
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        issued = self.issued
        _wait_for_lines(issued, books.applied)
        existing = books.standings.get(issued.statement_id)
        if existing is not None and existing.status != REFUSED:
            if existing.digest == issued.digest:
                return  # the same statement published again
            raise ConflictingStatement(
                f"statement {issued.statement_id} was recorded already with digest {existing.digest}; "
                f"another with digest {issued.digest} (event {self.source.event_id}) does not replace it")
        reason = refusal(issued, _unclaimed(issued, books.held.get(self.source.recorded_from, {}),
                                            books.claimed))
        if existing is not None and reason is not None:
            return  # refused before, refused again: the first refusal stays
        status = REFUSED if reason is not None else issued.status.value
        folded.stated[issued.statement_id] = Stated(issued, status, reason, self.source,
                                                    replaces=existing is not None)
        books.standings[issued.statement_id] = Standing(issued.statement_id, issued.partner_id,
                                                        issued.currency, status, issued.total, issued.digest)
        if reason is None and issued.status in CLAIMING:
            _claim(issued, books.claimed)


@dataclass(frozen=True)
class Paid:
    paid: StatementPaid
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        paid = self.paid
        standing = books.standings.get(paid.statement_id)
        if standing is None:
            raise NotRecordedYet(f"payment of statement {paid.statement_id}, which is not recorded yet")
        if standing.status == StatementStatus.PAID.value:
            return  # paid already: a second payment changes nothing
        if standing.status != StatementStatus.PAYABLE.value:
            raise NotPayable(f"payment {self.source.event_id} of statement {paid.statement_id}, which is "
                             f"{standing.status} and not payable")
        stated = (standing.partner_id, *standing.payment)
        if (paid.partner_id, paid.currency, round_money(paid.amount, paid.currency)) != stated:
            raise NotPayable(f"payment {self.source.event_id} of statement {paid.statement_id} names "
                             f"{paid.partner_id}, {paid.amount} {paid.currency}; the statement is "
                             f"{stated[0]}, {stated[2]} {stated[1]}")
        folded.payments.append((paid, self.source))
        _move(books, standing, StatementStatus.PAID.value)


@dataclass(frozen=True)
class Held:
    held: StatementHeld
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        standing = _standing(books, self.held.statement_id, "hold")
        if standing.status in (StatementStatus.PAYABLE.value, ON_HOLD):
            _move(books, standing, ON_HOLD)
            folded.holds[standing.statement_id] = self.held.reason


@dataclass(frozen=True)
class Released:
    released: StatementReleased
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        standing = _standing(books, self.released.statement_id, "release")
        if standing.status == ON_HOLD:
            _move(books, standing, StatementStatus.PAYABLE.value)
            folded.holds[standing.statement_id] = None


def _standing(books: Books, statement_id: str, what: str) -> Standing:
    standing = books.standings.get(statement_id)
    if standing is None:
        raise NotRecordedYet(f"{what} of statement {statement_id}, which is not recorded yet")
    return standing


def _move(books: Books, standing: Standing, status: str) -> None:
    books.standings[standing.statement_id] = replace(standing, status=status)


@dataclass(frozen=True)
class Converted:
    """A payable (or held) statement converted to the currency its partner is paid in: a
    payment of it must pay that. A conversion never changes: a second one is ignored."""

    converted: StatementConverted
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        converted = self.converted
        standing = _standing(books, converted.statement_id, "conversion")
        convertible = (StatementStatus.PAYABLE.value, ON_HOLD)
        if standing.paid_currency is not None or standing.status not in convertible:
            return
        if (converted.partner_id, converted.currency) != (standing.partner_id, standing.currency):
            raise NotPayable(f"conversion {self.source.event_id} names {converted.partner_id} "
                             f"{converted.currency}; statement {converted.statement_id} is "
                             f"{standing.partner_id} {standing.currency}")
        books.standings[standing.statement_id] = replace(standing, paid_currency=converted.paid_currency,
                                                         paid_total=converted.total)
        folded.conversions.append((converted, self.source))


@dataclass(frozen=True)
class RateSet:
    """An exchange rate, kept as recorded (the last one of a pair and day is in force)."""

    rate: FxRateSet
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        folded.rates.append((self.rate, self.source))


@dataclass(frozen=True)
class RunCreated:
    created: PaymentRunCreated
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        folded.runs.append((self.created, self.source))


@dataclass(frozen=True)
class RunConfirmed:
    confirmed: PaymentRunConfirmed
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        folded.confirmations.append((self.confirmed, self.source))


@dataclass(frozen=True)
class Invoiced:
    """An invoice or a credit note, kept as issued (it never changes)."""

    issued: InvoiceIssued
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        folded.invoices.append((self.issued, self.source))


@dataclass(frozen=True)
class PaymentFailed:
    """A run's payment refused: the statement stays as it is (payable), with the reason."""

    failed: StatementPaymentFailed
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        _standing(books, self.failed.statement_id, "failed payment")
        folded.failures.append((self.failed, self.source))


@dataclass(frozen=True)
class Adjusted:
    adjusted: BalanceAdjusted
    source: Source

    def apply(self, books: Books, folded: Folded) -> None:
        folded.adjustments.append((self.adjusted, self.source))


def _wait_for_lines(issued: StatementIssued, applied: Mapping[str, int]) -> None:
    """``NotRecordedYet`` while the fold has not reached the statement's log position on
    the topics its lines come from."""
    for name, offset in sorted(issued.log_position.items()):
        if name.rpartition("#")[0] in LINES_FROM and applied.get(name, -1) < offset:
            raise NotRecordedYet(
                f"statement {issued.statement_id} was decided from {name} up to offset {offset}, which "
                f"this fold has not reached yet (at {applied.get(name, -1)})")


def _unclaimed(issued: StatementIssued, held: Mapping[LineKey, StatementLine],
               claimed: Claims) -> Mapping[LineKey, StatementLine]:
    """``held`` less what statements of the same partner and currency earlier in the run
    claimed (a line nothing is left of is absent)."""
    earlier = claimed.get((issued.partner_id, issued.currency))
    if not earlier:
        return held
    unclaimed = dict(held)
    for key, (amount, line) in earlier.items():
        before = unclaimed.get(key, line.model_copy(update={"amount": Decimal(0)}))
        unclaimed[key] = before.model_copy(update={"amount": before.amount - amount})
    return {key: line for key, line in unclaimed.items() if line.amount != 0}


def _claim(issued: StatementIssued, claimed: Claims) -> None:
    mine = claimed.setdefault((issued.partner_id, issued.currency), {})
    for line in issued.lines:
        before = mine.get(line_key(line), (Decimal(0), line))[0]
        mine[line_key(line)] = (before + round_money(line.amount, issued.currency), line)


STEPS: dict[type[Event], Callable[[Any, Source], Step]] = {
    StatementIssued: Issued,
    StatementPaid: Paid,
    BalanceAdjusted: Adjusted,
    StatementHeld: Held,
    StatementReleased: Released,
    StatementPaymentFailed: PaymentFailed,
    PaymentRunCreated: RunCreated,
    PaymentRunConfirmed: RunConfirmed,
    InvoiceIssued: Invoiced,
    StatementConverted: Converted,
    FxRateSet: RateSet,
}
"""Payouts' own events the fold takes, and the step each becomes."""


def step_of(payload: Event, source: Source) -> Step:
    return STEPS[type(payload)](payload, source)


def fold(books: Books, steps: list[Step]) -> Folded:
    """The steps applied in order over ``books`` (which they update)."""
    folded = Folded()
    for step in steps:
        step.apply(books, folded)
    return folded
