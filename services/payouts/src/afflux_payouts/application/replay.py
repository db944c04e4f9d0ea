"""Re-deriving the payouts projection from the log: replay, verify, drift.

A *shadow fold* rebuilds the projection from offset 0 into a scratch schema with
the service's own consumers (the same stores, topics and handlers the live
process runs, so there is no second implementation of the rules), reading each
partition up to the live projection's stored position, so that the two hold the
same records and compare like for like. The records are applied as the live
consumer applies them: in runs of consecutive records of one partition, one at a
time when a run fails, a record waiting for another fact (``RetryLater``) held
back with the rest of its partition and retried once others were applied, one
that can never apply (undecodable, ``Unprocessable``) left out as the live
consumer dead-letters it (the shadow only counts it: it never writes to a DLQ).

``verify`` then compares the shadow with a copy of the live projection taken in
one database snapshot with its positions (generic over tables: see
``adapters.shadow``). As of a point in time (``until``: facts that happened by then,
``happened_at``; ``known_by``: records on the log by then) the live
tables hold the present, so the shadow's balances are compared with the live
store's balances asked as of that point when its ``balances`` can be, else only
reported.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from eventsourcing.persistence import IntegrityError
from psycopg import sql

from afflux_contracts import DecodeError, Envelope, Event, decode
from afflux_payouts.adapters import shadow
from afflux_payouts.adapters.shadow_log import Record, Stretch, read_stretches
from afflux_plumbing.consume import RUN_LIMIT, Handler, RetryLater
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.outage import DATABASE_OUTAGES
from afflux_plumbing.positions import Position
from afflux_plumbing.store import Changes, RunItem, TrackedApplication, Write

log = logging.getLogger(__name__)

Transform = Callable[[Envelope[Event]], Envelope[Event]]
"""Rewrites an envelope before it is folded (a what-if); identity for a replay."""
Progress = Callable[[int, int], None]
"""Called with (records read so far, records to read)."""


@dataclass(frozen=True)
class Fold:
    """One of the service's consumers: the store it applies to, its topics, its handler."""

    store: TrackedApplication
    topics: tuple[str, ...]
    handler: Handler


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

    records: list[Record]
    reason: str


Decoded = tuple[Record, Envelope[Event]]


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

    def apply(self, records: Sequence[Record]) -> None:
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

    def _process(self, records: list[Record]) -> None:
        """Apply one partition's records in order: decodable ones in runs; one that is left
        out (undecodable: dead-lettered; after ``until``: only counted) between the runs
        before and after it."""
        run: list[Decoded] = []
        for index, record in enumerate(records):
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

    def _decoded(self, record: Record) -> tuple[Envelope[Event] | None, str | None]:
        """The record's envelope (transformed); or None and why it cannot be applied, or
        None alone for a record after ``until``."""
        try:
            envelope = decode(record.value)
        except DecodeError as error:
            return None, str(error)
        if self.until is not None and happened_at(envelope) > self.until:
            return None, None
        return (self.transform(envelope) if self.transform else envelope), None

    def _flush(self, run: list[Decoded], rest: list[Record]) -> bool:
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
        fold = self.by_topic[run[0][0].topic]
        items = [RunItem(_position(r), e.event_id, partial(fold.handler, e)) for r, e in run]
        items[0] = replace(items[0], changes=partial(_without_flush_wait, items[0].changes))
        try:
            applied = fold.store.apply_run(items)
        except DATABASE_OUTAGES:
            raise
        except Exception:
            return False
        fresh = sum(applied)
        self.report.applied += fresh
        self.report.duplicates += len(applied) - fresh
        return True

    def _one_by_one(self, items: Sequence[Decoded]) -> int | None:
        """Apply ``items`` one at a time; the index of a record that had to be held back
        (then it and the ones after it wait in ``_held``), else None."""
        for index, (record, envelope) in enumerate(items):
            fold = self.by_topic[record.topic]
            position = _position(record)
            if fold.store.has_applied(envelope.event_id):
                fold.store.record_position(position)
                self.report.duplicates += 1
                continue
            try:
                changes = fold.handler(envelope)
            except RetryLater as wait:
                waiting = [r for r, _ in items[index:]]
                self._held[(record.topic, record.partition)] = _Pending(waiting, str(wait))
                return index
            except DATABASE_OUTAGES:
                raise
            except Exception as error:
                self._dead_letter(record, f"{type(error).__name__}: {error}")
                continue
            try:
                fresh = fold.store.apply(changes, position, envelope.event_id)
            except IntegrityError:
                # Its position is recorded: a record left out before, delivered again.
                if not fold.store.tracked_recorder.has_tracking_id(position.tracking_name, position.offset):
                    raise
                fresh = False
            self.report.applied += int(fresh)
            self.report.duplicates += int(not fresh)
        return None

    def retry_held(self) -> bool:
        """Retry each held partition from its waiting record; True if any moved on."""
        progressed = False
        for key in list(self._held):
            pending = self._held.pop(key)
            self._process(pending.records)
            after = self._held.get(key)
            progressed = progressed or after is None or len(after.records) < len(pending.records)
        return progressed

    def _dead_letter(self, record: Record, reason: str) -> None:
        self.by_topic[record.topic].store.record_position(_position(record))
        self.report.dead_letters.append(f"{_position(record)}: {reason}")


def _without_flush_wait(changes: Callable[[], Changes]) -> Changes:
    """A run's first changes, and the run's commit not waiting for its WAL flush: the shadow
    is scratch, and a commit lost in a crash loses its positions with it (a resumed fold
    reads those records again)."""
    made = changes()
    return Changes(aggregates=made.aggregates, writes=[Write(NO_FLUSH_WAIT), *made.writes])


NO_FLUSH_WAIT = sql.SQL("SET LOCAL synchronous_commit TO off")


FACT_TIMES = ("converted_at", "changed_at", "issued_at", "paid_at", "adjusted_at", "priced_at")
"""The payload fields that say when a fact happened (the times the projection's ``as_of``
counts by); a fact without one happened when its envelope says (``occurred_at``)."""


def happened_at(envelope: Envelope[Event]) -> datetime:
    """When the fact ``envelope`` carries happened: what ``--until`` folds by."""
    for name in FACT_TIMES:
        value = getattr(envelope.payload, name, None)
        if isinstance(value, datetime):
            return value
    return envelope.occurred_at


def _position(record: Record) -> Position:
    return Position(record.topic, record.partition, record.offset)


# -- replaying into a scratch schema ---------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOptions:
    until: datetime | None = None
    known_by: datetime | None = None
    run_limit: int = RUN_LIMIT
    keep: bool = False
    """Keep the scratch schemas (to inspect them) instead of dropping them."""


def stretches(folds: Sequence[Fold], positions: dict[str, int], *,
              resume_from: TrackedApplication | None = None) -> list[Stretch]:
    """Each folded partition from offset 0 (or after ``resume_from``'s stored position)
    up to its position in ``positions`` (``topic#partition`` -> last offset)."""
    found = []
    for name, last in sorted(positions.items()):
        topic, _, partition = name.rpartition("#")
        if not partition.isdigit() or not any(topic in fold.topics for fold in folds):
            continue
        stored = resume_from.stored_offset(topic, int(partition)) if resume_from else None
        found.append(Stretch(topic, int(partition), 0 if stored is None else stored + 1, last))
    return found


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


WORKERS = 4
"""Partitions folded at once: each partition's records stay in order in one thread, and
partitions are independent (one partner's records share one), so while one waits for
PostgreSQL another runs."""


async def fold_log(folds: Sequence[Fold], bootstrap_servers: str, positions: dict[str, int],
                   options: ReplayOptions, *, transform: Transform | None = None,
                   progress: Progress | None = None, workers: int = WORKERS) -> FoldReport:
    """Fold the log up to ``positions`` into ``folds``' stores, resuming after what they
    hold already (so an interrupted fold goes on where it stopped)."""
    plan = stretches(folds, positions, resume_from=folds[0].store)
    total = sum(s.size for s in plan)
    shadows: dict[tuple[str, int], ShadowFold] = {}
    running: dict[tuple[str, int], asyncio.Task[None]] = {}
    slots = asyncio.Semaphore(workers)

    async def apply(fold: ShadowFold, records: list[Record]) -> None:
        async with slots:
            await asyncio.to_thread(fold.apply, records)
        if progress:
            progress(sum(f.report.read for f in shadows.values()), total)

    if progress:
        progress(0, total)
    async for tp, records in read_stretches(bootstrap_servers, plan, known_by=options.known_by):
        key = (tp.topic, tp.partition)
        fold = shadows.setdefault(key, ShadowFold(folds, run_limit=options.run_limit, until=options.until,
                                                  transform=transform))
        if key in running:
            await running[key]  # one batch of a partition at a time: its records stay in order
        running[key] = asyncio.create_task(apply(fold, records))
    await asyncio.gather(*running.values())
    await asyncio.to_thread(finish_all, list(shadows.values()))
    return merged([fold.report for fold in shadows.values()])


def bookkeeping_prefix(folds: Sequence[Fold]) -> str:
    """eventsourcing names every table of its own ``<application name>_...``."""
    return f"{folds[0].store.name.lower()}_"


@dataclass(frozen=True)
class BalanceDiff:
    """One partner's balances as of the point in time: the shadow's and the live one's."""

    partner_id: str
    replay: dict[str, dict[str, str]]
    live: dict[str, dict[str, str]] | None


@dataclass
class Verification:
    """What ``verify`` found: the fold's report, its positions, the table diffs (or,
    as of a point in time, the balances compared or shown)."""

    report: FoldReport
    positions: dict[str, int]
    seconds: float
    tables: list[shadow.TableDiff] = field(default_factory=list)
    balances: list[BalanceDiff] = field(default_factory=list)
    point_in_time: bool = False
    compared_as_of: bool = False
    """As of a point in time: whether the live store could be asked as of it."""
    schemas: tuple[str, str] = ("", "")
    """(shadow, live copy): kept when asked to."""

    @property
    def mismatched(self) -> int:
        """Differing rows (or partners' balances) in all: 0 means equal."""
        if self.point_in_time:
            return sum(1 for b in self.balances if b.live is not None and b.live != b.replay)
        return sum(t.mismatched + (t.problem is not None and t.mismatched == 0) for t in self.tables)


@asynccontextmanager
async def opened_shadow(database_url: str, factory: FoldFactory, kind: str, *,
                        keep: bool) -> AsyncIterator[tuple[Built, str, str]]:
    """The service's folds opened on a new scratch schema, and the name of the schema the
    live tables are copied into; both dropped afterwards unless ``keep``."""
    scratch = shadow.scratch_schema(kind)
    copy = f"{scratch}_live"
    built: Built | None = None
    try:
        built = await asyncio.to_thread(factory, scratch)
        yield built, scratch, copy
    finally:
        if built is not None:
            await asyncio.to_thread(built.close)
        if not keep:
            await asyncio.to_thread(shadow.drop_schema, database_url, scratch)
            await asyncio.to_thread(shadow.drop_schema, database_url, copy)


async def verify(database_url: str, bootstrap_servers: str, live_schema: str, factory: FoldFactory,
                 options: ReplayOptions = ReplayOptions(), progress: Progress | None = None) -> Verification:
    """Rebuild the projection from the log in a scratch schema and compare it with the live
    one at the same positions. Raises ``LookupError`` when there is no live projection."""
    if not await asyncio.to_thread(shadow.schema_exists, database_url, live_schema):
        raise LookupError(f"no payouts projection in schema {live_schema!r} of this database")
    started = time.perf_counter()
    async with opened_shadow(database_url, factory, "replay", keep=options.keep) as (built, scratch, copy):
        folds = built.folds
        prefix = bookkeeping_prefix(folds)
        tables = await asyncio.to_thread(shadow.projection_tables, database_url, live_schema, prefix)
        tracking = folds[0].store.tracked_recorder.tracking_table_name
        positions = await asyncio.to_thread(
            shadow.snapshot, database_url, live_schema, copy, tables, tracking)
        report = await fold_log(folds, bootstrap_servers, positions, options, progress=progress)
        result = Verification(report, positions, 0.0, schemas=(scratch, copy))
        if options.until is None and options.known_by is None:
            result.tables = await asyncio.to_thread(shadow.diff_schemas, database_url, copy, scratch, prefix)
        else:
            result.point_in_time = True
            await asyncio.to_thread(_compare_as_of, result, database_url, live_schema, copy, folds, options)
    result.seconds = time.perf_counter() - started
    return result


def _compare_as_of(result: Verification, database_url: str, live_schema: str, copy: str,
                   folds: Sequence[Fold], options: ReplayOptions) -> None:
    """The shadow's balances per partner beside the live store's as of the same point,
    when the live store answers as of a point in time."""
    replayed = folds[0].store
    partners = shadow.partner_ids(database_url, [replayed.schema, copy], bookkeeping_prefix(folds))
    live = open_store(type(replayed), database_url, live_schema)
    try:
        as_of = _as_of_arguments(live, options)
        result.compared_as_of = as_of is not None
        for partner in partners:
            mine = _formatted(replayed, partner, {})
            theirs = _formatted(live, partner, as_of) if as_of is not None else None
            result.balances.append(BalanceDiff(partner, mine, theirs))
    finally:
        live.close()


def _as_of_arguments(store: TrackedApplication, options: ReplayOptions) -> dict[str, datetime] | None:
    """The keyword arguments that ask ``store.balances`` as of the options' point in
    time, or None if it cannot be asked so."""
    balances = getattr(store, "balances", None)
    if balances is None:
        return None
    accepted = inspect.signature(balances).parameters
    wanted = {"as_of": options.until, "as_known_on": options.known_by}
    asked = {name: value for name, value in wanted.items() if value is not None}
    return asked if all(name in accepted for name in asked) else None


def _formatted(store: TrackedApplication, partner_id: str,
               as_of: dict[str, Any]) -> dict[str, dict[str, str]]:
    balances = store.balances(partner_id, **as_of)  # type: ignore[attr-defined]
    return {currency: balance.formatted() for currency, balance in balances.items()}
