"""Folding payouts' own log back, a run at a time: statements issued (judged before they
move money), their holds and releases, payments and adjustments.

The handler reads, once for the run, what its records need: the statements they name
as recorded so far, how far the fold has read each partition, and what the ledger
holds unclaimed for the lines of each statement issued (as of its period end and log
position: one query for all of them); it folds the records in log order
(``domain/statement_fold.py``) and hands the writes back in batch form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from afflux_contracts import StatementIssued
from afflux_payouts.application.ledger import source_of
from afflux_payouts.domain.ledger import Refused
from afflux_payouts.domain.ledger_fold import NotRecordedYet, Source
from afflux_payouts.domain.statement_fold import (
    Books,
    Converted,
    Folded,
    Held,
    Issued,
    Paid,
    PaymentFailed,
    Released,
    Standing,
    Step,
    fold,
    step_of,
)
from afflux_payouts.domain.statements import Ask, OpenLine, line_key
from afflux_plumbing.runs import RetryLater, Run, Unprocessable
from afflux_plumbing.store import Changes, Write


class StatementBooks(Protocol):
    """Where the fold keeps statements, payments and adjustments."""

    def standings(self, statement_ids: Sequence[str]) -> dict[str, Standing]: ...

    def applied(self, partitions: Sequence[str]) -> dict[str, int]:
        """The last offset this store applied of each of these ``topic#partition`` (if any)."""
        ...

    def open_lines(self, asks: Sequence[Ask]) -> dict[str, list[OpenLine]]: ...

    def writes(self, folded: Folded) -> list[Write]: ...


def judging(issued: StatementIssued, source: Source) -> Ask:
    """What to ask of the ledger to judge ``issued``: the lines it names, as of its period end,
    from the records up to its log position, less the claims of the statements before it."""
    return Ask(key=source.recorded_from, as_of=issued.period_end, partner_id=issued.partner_id,
               currency=issued.currency, positions=issued.log_position, before=source.recorded_from,
               refs=tuple(sorted({line.ref for line in issued.lines})))


def fold_payouts(books: StatementBooks, run: Run) -> Changes:
    """The changes of a run of payouts' own records."""
    try:
        steps: list[Step] = [step_of(record.payload, source_of(record)) for record in run]
        folded = fold(_books_for(books, steps), steps)
    except NotRecordedYet as waiting:
        raise RetryLater(str(waiting)) from waiting
    except Refused as refused:
        raise Unprocessable(str(refused)) from refused
    return Changes(writes=books.writes(folded))


def _books_for(books: StatementBooks, steps: Sequence[Step]) -> Books:
    issued = [step for step in steps if isinstance(step, Issued)]
    named = [s.issued.statement_id for s in issued] + [_named(step) for step in steps
                                                       if isinstance(step, NAMING)]
    known = Books(standings=books.standings(list(dict.fromkeys(named))) if named else {})
    if issued:
        known.applied = books.applied(sorted({name for step in issued for name in step.issued.log_position}))
        held = books.open_lines([judging(step.issued, step.source) for step in issued])
        known.held = {key: {line_key(o.line): o.line for o in lines} for key, lines in held.items()}
    return known


NAMING = (Paid, Held, Released, PaymentFailed, Converted)
"""The steps that name a statement recorded before them."""


def _named(step: Paid | Held | Released | PaymentFailed | Converted) -> str:
    """The statement a payment, a hold, a release, a failed payment or a conversion names."""
    if isinstance(step, Converted):
        return step.converted.statement_id
    if isinstance(step, Paid):
        return step.paid.statement_id
    if isinstance(step, PaymentFailed):
        return step.failed.statement_id
    return step.held.statement_id if isinstance(step, Held) else step.released.statement_id
