"""A run of attribution records folded into the ledger, in log order: the ledger's one rule.

Each record becomes a step (``step_of``): a decision or priced traffic *opens* a
commission, a review *moves* one, a rejection is *kept* with its reason. ``fold``
applies the steps in order over what the ledger already holds of their conversions
(``Holdings``, read once for the whole run) and returns what the run changes
(``Outcome``), so a step sees every step before it exactly as if each had been
written and read back. A run of one record is the same fold.

What the rule refuses raises (``Refused``: a conflicting decision, a review naming
another partner; ``NotRecordedYet``: a review of a commission not recorded yet): the
run then commits nothing, and the consumer applies its records again one at a time,
where the same rule raises for the one record it concerns.

An appeal (a ``ConversionAttributed`` after the conversion's ``ConversionRejected``)
opens the commission like any decision; it is earned when the appeal was recorded,
not when the conversion happened, so a balance as of a moment before the appeal does
not show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from afflux_contracts import (
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    Event,
    ImpressionsPriced,
    round_money,
)
from afflux_payouts.domain.ledger import (
    Bucket,
    LedgerEntry,
    Refused,
    Rejection,
    commission_for,
    commission_for_traffic,
    rejection_for,
    review,
)


class ConflictingDecision(Refused):
    """A second decision for a recorded conversion that is not the same decision."""


class RejectedAtAttribution(Refused):
    """A review of a conversion attribution rejected: there is no commission to change."""


class NotRecordedYet(LookupError):
    """A review of a commission the ledger does not hold yet (it is parked and retried)."""


@dataclass(frozen=True)
class Source:
    """Where and when the record a step comes from was read: its event_id, when its
    producer recorded it (``known_on``), and its place on the log."""

    event_id: UUID
    known_on: datetime
    recorded_from: str
    """``topic#partition@offset``."""
    log_offset: int


@dataclass(frozen=True)
class Change:
    """One row of a commission's history: what it holds after one record (``amount`` is
    what it earns: 0 when void). A commission's state at a moment is its latest change
    (by log offset) that happened by then."""

    conversion_id: str
    partner_id: str
    offer_id: str
    currency: str
    status: Bucket
    amount: Decimal
    happened_at: datetime
    source: Source

    @classmethod
    def of(cls, entry: LedgerEntry, happened_at: datetime, source: Source) -> Change:
        earned = entry.amount if entry.bucket is not Bucket.VOID else Decimal(0)
        return cls(entry.conversion_id, entry.partner_id, entry.offer_id, entry.currency, entry.bucket,
                   round_money(earned, entry.currency), happened_at, source)


@dataclass
class Holdings:
    """What the ledger holds of a run's conversions before the run: their commissions,
    and which were rejected at attribution."""

    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    """What a run changes: commissions opened (as opened), the final state of every
    commission a review moved, the history rows in log order, the rejections kept."""

    opened: list[LedgerEntry] = field(default_factory=list)
    moved: dict[str, LedgerEntry] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class Step(Protocol):
    @property
    def conversion_id(self) -> str: ...

    def apply(self, holdings: Holdings, outcome: Outcome) -> None: ...


@dataclass(frozen=True)
class Opened:
    """A decision (or priced traffic) that opens ``entry`` unless it is recorded already."""

    entry: LedgerEntry
    happened_at: datetime
    source: Source

    @property
    def conversion_id(self) -> str:
        return self.entry.conversion_id

    def apply(self, holdings: Holdings, outcome: Outcome) -> None:
        entry, existing = self.entry, holdings.entries.get(self.conversion_id)
        if existing is not None:
            if existing.same_commission(entry):
                return  # the same decision re-published: counted once already
            raise ConflictingDecision(
                f"conversion {entry.conversion_id} was already recorded from event {existing.event_id} "
                f"({existing.partner_id}, {existing.amount} {existing.currency}, {existing.bucket}); "
                f"a conflicting decision ({entry.partner_id}, {entry.amount} {entry.currency}, "
                f"{entry.bucket}) does not change a commission")
        holdings.entries[entry.conversion_id] = entry
        outcome.opened.append(entry)
        outcome.changes.append(Change.of(entry, self.happened_at, self.source))


@dataclass(frozen=True)
class Reviewed:
    """A status change that moves its conversion's commission."""

    change: ConversionStatusChanged
    source: Source

    @property
    def conversion_id(self) -> str:
        return self.change.conversion_id

    def apply(self, holdings: Holdings, outcome: Outcome) -> None:
        entry = holdings.entries.get(self.conversion_id)
        if entry is None:
            if self.conversion_id in holdings.rejected:
                raise RejectedAtAttribution(
                    f"status change {self.source.event_id}: conversion {self.conversion_id} was rejected "
                    "at attribution and has no commission to change")
            raise NotRecordedYet(f"status change of conversion {self.conversion_id}, "
                                 "whose commission is not recorded yet")
        moved = review(entry, self.change, self.source.event_id)
        holdings.entries[moved.conversion_id] = outcome.moved[moved.conversion_id] = moved
        outcome.changes.append(Change.of(moved, self.change.changed_at, self.source))


@dataclass(frozen=True)
class Rejected:
    """A conversion that earns nothing, kept with its reason."""

    rejection: Rejection

    @property
    def conversion_id(self) -> str:
        return self.rejection.conversion_id

    def apply(self, holdings: Holdings, outcome: Outcome) -> None:
        holdings.rejected.add(self.conversion_id)
        outcome.rejections.append(self.rejection)


def _decided(decision: ConversionAttributed, source: Source) -> Step:
    entry = commission_for(decision, source.event_id, source.recorded_from)
    happened_at = source.known_on if decision.appeal is not None else decision.converted_at
    return Opened(entry, happened_at, source)


def _priced(priced: ClickPriced | ImpressionsPriced, source: Source) -> Step:
    entry = commission_for_traffic(priced, source.event_id, source.recorded_from)
    return Opened(entry, entry.converted_at, source)


def _reviewed(change: ConversionStatusChanged, source: Source) -> Step:
    return Reviewed(change, source)


def _rejected(decision: ConversionRejected, source: Source) -> Step:
    return Rejected(rejection_for(decision, source.event_id, source.recorded_from))


STEPS: dict[type[Event], Callable[[Any, Source], Step]] = {
    ConversionAttributed: _decided,
    ClickPriced: _priced,
    ImpressionsPriced: _priced,
    ConversionStatusChanged: _reviewed,
    ConversionRejected: _rejected,
}
"""The attribution events the ledger folds, and the step each becomes."""


def step_of(payload: Event, source: Source) -> Step:
    """The ledger step of one attribution record (``Refused`` if it can never be one)."""
    return STEPS[type(payload)](payload, source)


def conversion_ids(steps: Iterable[Step]) -> list[str]:
    """The conversions ``steps`` touch, each once, in order of first appearance."""
    return list(dict.fromkeys(step.conversion_id for step in steps))


def fold(holdings: Holdings, steps: Sequence[Step]) -> Outcome:
    """The steps applied in order over ``holdings`` (which they update)."""
    outcome = Outcome()
    for step in steps:
        step.apply(holdings, outcome)
    return outcome
