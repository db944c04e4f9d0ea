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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from afflux_contracts import (
    ATTRIBUTION,
    BalanceAdjusted,
    Event,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatementStatus,
    round_money,
)
from afflux_payouts.domain.ledger import Refused
from afflux_payouts.domain.ledger_fold import NotRecordedYet, Source
from afflux_payouts.domain.statements import CLAIMING, LineKey, line_key, refusal

REFUSED = "refused"
"""The status of a statement the fold refused (not an issued status: only the fold's verdict)."""

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
        stated = (standing.partner_id, standing.currency, round_money(standing.total, standing.currency))
        if (paid.partner_id, paid.currency, round_money(paid.amount, paid.currency)) != stated:
            raise NotPayable(f"payment {self.source.event_id} of statement {paid.statement_id} names "
                             f"{paid.partner_id}, {paid.amount} {paid.currency}; the statement is "
                             f"{stated[0]}, {stated[2]} {stated[1]}")
        folded.payments.append((paid, self.source))
        books.standings[paid.statement_id] = Standing(standing.statement_id, standing.partner_id,
                                                      standing.currency, StatementStatus.PAID.value,
                                                      standing.total, standing.digest)


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
