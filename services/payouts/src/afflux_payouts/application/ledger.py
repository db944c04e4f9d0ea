"""Folding ``afflux.attribution.v1`` into the commission ledger, a run at a time.

The handler reads what the ledger holds of the run's conversions in one query, folds
the run's records in log order through the ledger's rule (``domain/ledger_fold.py``)
and hands every write back in batch form. What the rule refuses is dead-lettered
(``Unprocessable``); a review of a commission not recorded yet is parked
(``RetryLater``): the run then commits nothing, and the consumer applies its records
again as runs of one, through this same handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from afflux_payouts.domain.ledger import Refused
from afflux_payouts.domain.ledger_fold import (
    Holdings,
    NotRecordedYet,
    Outcome,
    Source,
    conversion_ids,
    fold,
    step_of,
)
from afflux_plumbing.runs import Record, RetryLater, Run, Unprocessable
from afflux_plumbing.store import Changes, Write


class LedgerTables(Protocol):
    """Where the ledger is kept: what a run needs read, and its writes."""

    def holding(self, conversion_ids: Sequence[str]) -> Holdings:
        """The commissions held for these conversions, and which were rejected (one read)."""
        ...

    def writes(self, outcome: Outcome) -> list[Write]:
        """The run's outcome as batch writes, in order."""
        ...


def source_of(record: Record[Any]) -> Source:
    """Where and when ``record`` was read: what every row it leaves says of its origin."""
    return Source(record.event_id, record.occurred_at, str(record.position), record.position.offset)


def fold_attribution(tables: LedgerTables, run: Run) -> Changes:
    """The ledger changes of a run of attribution records."""
    try:
        steps = [step_of(record.payload, source_of(record)) for record in run]
        outcome = fold(tables.holding(conversion_ids(steps)), steps)
    except NotRecordedYet as waiting:
        raise RetryLater(str(waiting)) from waiting
    except Refused as refused:
        raise Unprocessable(str(refused)) from refused
    return Changes(writes=tables.writes(outcome))
