"""What a run of attribution records does to the ledger, decided for the whole run at once.

One record at a time, a commission reads its conversion's entry (is it recorded
already?) and a review reads the entry it moves: a round trip per record. In a run
(``Payouts.apply_run``) the handlers instead leave each ledger step here, in log order,
and at the run's end ``settle`` reads the entries of every conversion the run touches
in one query, replays the steps in memory in the same order with the same rules
(``same_commission``, ``review``), and writes the outcome in three multi-row
statements. A step sees every step before it in the run exactly as if each had been
written and read back, so the tables come out identical to the one-at-a-time fold's.

Anything the one-at-a-time fold would refuse or hold back (a conflicting decision, a
review of a commission not recorded, a review that names another partner) raises
here, and the run commits nothing: the consumer (or the shadow fold) then applies its
records one at a time, where the same rule raises for the same record, with the
reasons it always gave.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from afflux_contracts import ConversionStatusChanged, Envelope, Event
from afflux_payouts.domain.ledger import LedgerEntry, ReviewMismatch, review
from afflux_plumbing.consume import RetryLater, Unprocessable

ChangeRow = dict[str, Any]
"""The parameters of one ``commission_changes`` row (``Payouts.change_row``)."""


@dataclass(frozen=True)
class Opened:
    """A decision (or priced traffic) that opens ``entry`` unless it is recorded already."""

    entry: LedgerEntry
    envelope: Envelope[Event]

    @property
    def conversion_id(self) -> str:
        return self.entry.conversion_id


@dataclass(frozen=True)
class Reviewed:
    """A status change that moves its conversion's commission."""

    change: ConversionStatusChanged
    envelope: Envelope[Event]

    @property
    def conversion_id(self) -> str:
        return self.change.conversion_id


Step = Opened | Reviewed


@dataclass
class Settled:
    """The run's ledger writes: entries to insert as opened, the final state of every
    entry a review moved (one per conversion: the last), and the history rows in log order."""

    inserted: list[LedgerEntry] = field(default_factory=list)
    moved: dict[str, LedgerEntry] = field(default_factory=dict)
    changes: list[ChangeRow] = field(default_factory=list)


@dataclass
class RunLedger:
    """The ledger steps of the run being applied, in log order."""

    steps: list[Step] = field(default_factory=list)

    def conversion_ids(self) -> list[str]:
        return list(dict.fromkeys(step.conversion_id for step in self.steps))

    def settle(self, recorded: Mapping[str, LedgerEntry],
               change_row: Callable[[LedgerEntry, datetime, Envelope[Event]], ChangeRow]) -> Settled:
        """Replay the steps over ``recorded`` (the entries already in the ledger, by
        conversion_id) with the one-at-a-time rules; raise where those rules raise."""
        known = dict(recorded)
        settled = Settled()
        for step in self.steps:
            if isinstance(step, Opened):
                _open(step, known, settled, change_row)
            else:
                _review(step, known, settled, change_row)
        return settled


def _open(step: Opened, known: dict[str, LedgerEntry], settled: Settled,
          change_row: Callable[[LedgerEntry, datetime, Envelope[Event]], ChangeRow]) -> None:
    entry, existing = step.entry, known.get(step.conversion_id)
    if existing is not None:
        if existing.same_commission(entry):
            return  # the same decision re-published: counted once already
        raise Unprocessable(f"conversion {entry.conversion_id} was already recorded from event "
                            f"{existing.event_id}; a conflicting decision (event {entry.event_id}) does "
                            "not change a commission")
    known[entry.conversion_id] = entry
    settled.inserted.append(entry)
    settled.changes.append(change_row(entry, entry.converted_at, step.envelope))


def _review(step: Reviewed, known: dict[str, LedgerEntry], settled: Settled,
            change_row: Callable[[LedgerEntry, datetime, Envelope[Event]], ChangeRow]) -> None:
    entry = known.get(step.conversion_id)
    if entry is None:
        raise RetryLater(f"status change of conversion {step.conversion_id}, whose commission is not "
                         "recorded (or was rejected): applied one record at a time")
    try:
        moved = review(entry, step.change, step.envelope.event_id)
    except ReviewMismatch as error:
        raise Unprocessable(str(error)) from error
    known[moved.conversion_id] = moved
    settled.moved[moved.conversion_id] = moved
    settled.changes.append(change_row(moved, step.change.changed_at, step.envelope))


class RunMemory(threading.local):
    """The applying thread's run ledger; ``None`` outside a run (each record reads and
    writes for itself)."""

    current: RunLedger | None = None


def json_rows(rows: Iterable[Mapping[str, Any]]) -> str:
    """``rows`` as a JSON array of objects for ``json_to_recordset``: a run's rows travel as
    one parameter (binding them as arrays costs the client more than the server's insert).
    Decimals, UUIDs and times go as their exact text (``numeric``, ``uuid`` and
    ``timestamptz`` read it back as the value itself: the scale of an amount is kept)."""
    return json.dumps(list(rows), default=_text, separators=(",", ":"))


def _text(value: object) -> str:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON text here")
