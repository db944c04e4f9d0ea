"""The shadow fold: log records applied to a store exactly as the live consumer applies them.

In runs of consecutive records of one partition (the store's ``apply_run``, through the
consumer's own run handlers: ``Fold.handlers``), and when a run fails, each record as a
run of one through the same handlers: a record waiting for another fact
(``RetryLater``) is held back with the rest of its partition and retried once others
were applied; one that can never apply (undecodable, ``Unprocessable``) is left out as
the live consumer dead-letters it (the shadow only counts it: it never writes to a
DLQ). There is no second implementation of the rules here, and no third path.

A record left out blocks its key as a dead letter does the live consumer's
(``afflux_plumbing.blocking``): the key's later records are left out behind it, held in
the scratch store's own table, until a redriven copy of it on the log is applied. A
discard is an operator's act the log does not show: a replay after one differs on that
key until the key's letters are redriven.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from afflux_contracts import DecodeError, Envelope, Event, decode
from afflux_plumbing.blocking import BEHIND, FREE, HEAD, KeyBlocks, LogRecord, verdict
from afflux_plumbing.consume import RUN_LIMIT
from afflux_plumbing.outage import DATABASE_OUTAGES
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, Record, RetryLater
from afflux_plumbing.store import TrackedApplication, Write

Transform = Callable[[Envelope[Event]], Envelope[Event]]
"""Rewrites an envelope before it is folded (a what-if); identity for a replay."""


@dataclass(frozen=True)
class Fold:
    """One of the service's consumers: the store it applies to, its topics, its handlers."""

    store: TrackedApplication
    topics: tuple[str, ...]
    handlers: Handlers


@dataclass(frozen=True)
class Built:
    """The service's folds opened on one schema, and how to close their stores."""

    folds: list[Fold]
    close: Callable[[], object]


FoldFactory = Callable[[str], Built]
"""Opens the service's folds on the schema named (a scratch one); called in a worker thread."""


@dataclass
class FoldReport:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    left_out: int = 0
    """Records after ``until``."""
    dead_letters: list[str] = field(default_factory=list)
    """``position: reason`` of each record the fold could not apply (the live consumer
    dead-letters these)."""


@dataclass
class _Pending:
    """A partition held back at a record waiting for another fact (it and the ones after it)."""

    records: list[LogRecord]
    reason: str


Decoded = tuple[LogRecord, Envelope[Event]]


class ShadowFold:
    """Applies log records to the folds' stores exactly as the live consumer would."""

    def __init__(self, folds: Sequence[Fold], *, run_limit: int = RUN_LIMIT, until: datetime | None = None,
                 transform: Transform | None = None) -> None:
        self.by_topic = {topic: fold for fold in folds for topic in fold.topics}
        self.run_limit = run_limit
        self.until = until
        self.transform = transform
        self.report = FoldReport()
        self._held: dict[tuple[str, int], _Pending] = {}
        self._blocks: dict[int, KeyBlocks] = {}

    def apply(self, records: Sequence[LogRecord]) -> None:
        """Fold consecutive records of one partition (called from a worker thread)."""
        if not records:
            return
        self.report.read += len(records)
        held = self._held.get((records[0].topic, records[0].partition))
        if held is not None:
            held.records.extend(records)
        else:
            self._process(list(records))
        self.retry_held()

    def finish(self) -> None:
        """Once the log is read: retry held partitions until none makes progress, then
        leave out each still-waiting record (as the live consumer's DLQ does after its
        waiting limit) and go on with its partition."""
        finish_all([self])

    def held(self) -> bool:
        return bool(self._held)

    def release_stuck(self) -> None:
        """Leave out the waiting record of each held partition, and go on after it."""
        for key in list(self._held):
            pending = self._held.pop(key)
            first = pending.records[0]
            self._dead_letter(first, f"still waiting at the end of the log: {pending.reason}")
            self._process(pending.records[1:])

    def retry_held(self) -> bool:
        """Retry each held partition from its waiting record; True if any moved on."""
        progressed = False
        for key in list(self._held):
            pending = self._held.pop(key)
            self._process(pending.records)
            after = self._held.get(key)
            progressed = progressed or after is None or len(after.records) < len(pending.records)
        return progressed

    def _process(self, records: list[LogRecord]) -> None:
        """Apply one partition's records in order: decodable ones in runs; one that is left
        out (undecodable: dead-lettered; after ``until``: only counted) between the runs
        before and after it."""
        run: list[Decoded] = []
        for index, record in enumerate(records):
            if self._blocks_of(record).may_block(record):
                if not self._flush(run, records[index:]):
                    return
                run = []
                if not self._blocked(record, records[index + 1:]):
                    return
                continue
            envelope, problem = self._decoded(record)
            if envelope is None:
                if not self._flush(run, records[index:]):
                    return
                run = []
                if problem is None:
                    self.report.left_out += 1
                else:
                    self._dead_letter(record, problem)
                continue
            run.append((record, envelope))
            if len(run) == self.run_limit:
                if not self._flush(run, records[index + 1:]):
                    return
                run = []
        self._flush(run, [])

    def _decoded(self, record: LogRecord) -> tuple[Envelope[Event] | None, str | None]:
        """The record's envelope (transformed); or None and why it cannot be applied, or
        None alone for a record after ``until``."""
        try:
            envelope = decode(record.value)
        except DecodeError as error:
            return None, str(error)
        if self.until is not None and happened_at(envelope) > self.until:
            return None, None
        return (self.transform(envelope) if self.transform else envelope), None

    def _flush(self, run: list[Decoded], rest: list[LogRecord]) -> bool:
        """Apply ``run``; False if a record of it had to be held back (then it, the ones
        after it and ``rest`` wait in ``_held``)."""
        if not run or self._apply_run(run):
            return True
        waiting = self._one_by_one(run)
        if waiting is None:
            return True
        record = run[waiting][0]
        self._held[(record.topic, record.partition)].records.extend(rest)
        return False

    def _apply_run(self, run: Sequence[Decoded]) -> bool:
        """The run as one transaction; False if anything in it failed (nothing committed)."""
        fold = self.by_topic[run[0][0].topic]
        records = [Record(envelope, _position(record)) for record, envelope in run]
        try:
            applied = fold.store.apply_run(records, fold.handlers)
        except DATABASE_OUTAGES:
            raise
        except IntegrityError:
            if not _recorded(fold, records[-1].position):
                return False
            applied = [False] * len(records)  # a stretch folded before, delivered again
        except Exception:
            return False
        fresh = sum(applied)
        self.report.applied += fresh
        self.report.duplicates += len(applied) - fresh
        return True

    def _one_by_one(self, items: Sequence[Decoded]) -> int | None:
        """Apply ``items`` as runs of one; the index of a record that had to be held back
        (then it and the ones after it wait in ``_held``), else None."""
        for index, (record, envelope) in enumerate(items):
            waiting = [r for r, _ in items[index + 1:]]
            if self._blocks_of(record).may_block(record):  # blocked by a record before it in the run
                if not self._blocked(record, waiting):
                    return index
                continue
            wait = self._apply_one(record, envelope)
            if wait is not None:
                self._held[(record.topic, record.partition)] = _Pending([record, *waiting], wait)
                return index
        return None

    def _apply_one(self, record: LogRecord, envelope: Envelope[Event],
                   also: Sequence[Write] = ()) -> str | None:
        """Apply one record as a run of one (with ``also``); why it must wait, if it must."""
        fold, position = self.by_topic[record.topic], _position(record)
        try:
            fresh = fold.store.apply_run([Record(envelope, position)], fold.handlers, also)[0]
        except RetryLater as wait:
            return str(wait)
        except DATABASE_OUTAGES:
            raise
        except IntegrityError:
            if not _recorded(fold, position):
                raise
            fresh = False  # its position is recorded: a record left out before, delivered again
        except Exception as error:
            self._dead_letter(record, f"{type(error).__name__}: {error}")
            return None
        self.report.applied += int(fresh)
        self.report.duplicates += int(not fresh)
        return None

    def _blocked(self, record: LogRecord, rest: list[LogRecord]) -> bool:
        """A record of a key that may be blocked, as the live consumer takes it: the copy of
        the key's first held record is applied (settling it), another record of the key is
        left out behind it, a record that changes nothing here goes on. False if it must
        wait (then it and ``rest`` wait in ``_held``)."""
        blocks = self._blocks_of(record)
        assert record.key is not None
        held = blocks.held(record.topic, record.key)
        envelope, problem = self._decoded(record)
        if envelope is None and problem is None:
            self.report.left_out += 1
            return True
        handled = envelope is None or type(envelope.payload) in self.by_topic[record.topic].handlers.types
        found = verdict(held, record.value, handled)
        if found == BEHIND:
            self._dead_letter(record, f"behind {held[0].source}")
            return True
        if found == FREE and not held:
            blocks.free(record.topic, record.key)
        if envelope is None:
            self._dead_letter(record, problem or "")
            return True
        wait = self._apply_one(record, envelope, [blocks.settling(held[0])] if found == HEAD else [])
        if wait is not None:
            self._held[(record.topic, record.partition)] = _Pending([record, *rest], wait)
            return False
        if found == HEAD and not blocks.held(record.topic, record.key):
            blocks.free(record.topic, record.key)
        return True

    def _dead_letter(self, record: LogRecord, reason: str) -> None:
        """Leave ``record`` out; keyed, it blocks its key in the scratch store."""
        blocks = self._blocks_of(record)
        held = [blocks.holding(record, "(shadow fold)", reason)] if record.key is not None else []
        self.by_topic[record.topic].store.record_position(_position(record), held)
        if record.key is not None:
            blocks.block(record.topic, record.key)
        self.report.dead_letters.append(f"{_position(record)}: {reason}")

    def _blocks_of(self, record: LogRecord) -> KeyBlocks:
        """The blocked keys of ``record``'s fold, read from its store on first use (a fold
        resumed on a store carries on with its blocks)."""
        fold = self.by_topic[record.topic]
        blocks = self._blocks.get(id(fold))
        if blocks is None:
            blocks = self._blocks[id(fold)] = KeyBlocks(fold.store, "shadow", fold.topics, counted=False)
            blocks.load()
        return blocks


def _recorded(fold: Fold, position: Position) -> bool:
    recorded: Any = fold.store.tracked_recorder.has_tracking_id(position.tracking_name, position.offset)
    return bool(recorded)


FACT_TIMES = ("converted_at", "changed_at", "issued_at", "paid_at", "adjusted_at", "priced_at", "held_at",
              "released_at", "set_at")
"""The payload fields that say when a fact happened (the times the projection's ``as_of``
counts by); a fact without one happened when its envelope says (``occurred_at``)."""


def happened_at(envelope: Envelope[Event]) -> datetime:
    """When the fact ``envelope`` carries happened: what ``--until`` folds by."""
    for name in FACT_TIMES:
        value = getattr(envelope.payload, name, None)
        if isinstance(value, datetime):
            return value
    return envelope.occurred_at


def _position(record: LogRecord) -> Position:
    return Position(record.topic, record.partition, record.offset)


def finish_all(folds: Sequence[ShadowFold]) -> None:
    """Retry every held partition while any makes progress (a record may wait for one of
    another fold), then release the stuck ones, until none is held."""
    while any(fold.held() for fold in folds):
        if any([fold.retry_held() for fold in folds]):  # a list: retry every one
            continue
        for fold in folds:
            fold.release_stuck()


def merged(reports: Sequence[FoldReport]) -> FoldReport:
    total = FoldReport()
    for report in reports:
        total.read += report.read
        total.applied += report.applied
        total.duplicates += report.duplicates
        total.left_out += report.left_out
        total.dead_letters += report.dead_letters
    return total
