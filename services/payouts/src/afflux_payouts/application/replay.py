"""Re-deriving the payouts projection from the log: replay, verify, drift, a statement's proof.

A *shadow fold* (``replay_fold``) rebuilds the projection from offset 0 into a
scratch schema with the service's own consumers (the same stores, topics and run
handlers the live process runs, so there is no second implementation of the rules),
reading each partition up to the live projection's stored position, so that the two
hold the same records and compare like for like; partitions are folded side by side,
each in order.

``verify`` then compares the shadow with a copy of the live projection taken in one
database snapshot with its positions (generic over tables: ``Shadows.diff_schemas``),
and re-derives every statement of the shadow from the log up to its log position with
the close rules (``Statements.rederive``): a statement whose digest differs, or that
the fold refused, is named. As of a point in time (``until``: facts that happened by
then; ``known_by``: records on the log by then) the live tables hold the present, so
the shadow's balances are compared with the live store's balances asked as of that
point instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from afflux_payouts.application.payouts import Payouts
from afflux_payouts.application.replay_fold import (
    Built,
    Fold,
    FoldFactory,
    FoldReport,
    ShadowFold,
    Transform,
    finish_all,
    merged,
)
from afflux_payouts.application.shadows import Replaying, Stretch, TableDiff
from afflux_payouts.application.statements import Rederived, Statements
from afflux_plumbing.blocking import LogRecord
from afflux_plumbing.store import TrackedApplication

Progress = Callable[[int, int], None]
"""Called with (records read so far, records to read)."""

REPLAY_RUN_LIMIT = 1000
"""Records per transaction of a replay: ten times the live consumer's ``RUN_LIMIT`` (a
replay folds a backlog, where a run's fixed costs, a connection check, its reads and
its commit, count; a run's size never changes what it folds to)."""

WORKERS = 4
"""Partitions folded at once: each partition's records stay in order in one thread, and
partitions are independent (one partner's records share one), so while one waits for
PostgreSQL another runs."""


@dataclass(frozen=True)
class ReplayOptions:
    until: datetime | None = None
    known_by: datetime | None = None
    run_limit: int = REPLAY_RUN_LIMIT
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


async def fold_log(folds: Sequence[Fold], replaying: Replaying, positions: dict[str, int],
                   options: ReplayOptions, *, transform: Transform | None = None,
                   progress: Progress | None = None, workers: int = WORKERS) -> FoldReport:
    """Fold the log up to ``positions`` into ``folds``' stores, resuming after what they
    hold already (so an interrupted fold goes on where it stopped)."""
    plan = stretches(folds, positions, resume_from=folds[0].store)
    total = sum(s.size for s in plan)
    shadows: dict[tuple[str, int], ShadowFold] = {}
    running: dict[tuple[str, int], asyncio.Task[None]] = {}
    slots = asyncio.Semaphore(workers)

    async def apply(fold: ShadowFold, records: Sequence[LogRecord]) -> None:
        async with slots:
            await asyncio.to_thread(fold.apply, records)
        if progress:
            progress(sum(f.report.read for f in shadows.values()), total)

    if progress:
        progress(0, total)
    async for key, records in replaying.log.read(plan, known_by=options.known_by):
        fold = shadows.setdefault(key, ShadowFold(folds, run_limit=options.run_limit, until=options.until,
                                                  transform=transform))
        if key in running:
            await running[key]  # one batch of a partition at a time: its records stay in order
        running[key] = asyncio.create_task(apply(fold, records))
    await asyncio.gather(*running.values())
    await asyncio.to_thread(finish_all, list(shadows.values()))
    return merged([fold.report for fold in shadows.values()])


def payouts_of(built: Built) -> Payouts:
    """The payouts store the folds apply to."""
    store = built.folds[0].store
    assert isinstance(store, Payouts)
    return store


def projection_of(built: Built) -> tuple[str, ...]:
    """The tables of the projection the folds write (what a replay copies and compares)."""
    return payouts_of(built).projection


@dataclass(frozen=True)
class BalanceDiff:
    """One partner's balances as of the point in time: the shadow's and the live one's."""

    partner_id: str
    replay: dict[str, dict[str, str]]
    live: dict[str, dict[str, str]]


@dataclass
class Verification:
    """What ``verify`` found: the fold's report, its positions, the table diffs and the
    statements re-derived (or, as of a point in time, the balances compared)."""

    report: FoldReport
    positions: dict[str, int]
    seconds: float
    tables: list[TableDiff] = field(default_factory=list)
    statements: list[Rederived] = field(default_factory=list)
    balances: list[BalanceDiff] = field(default_factory=list)
    point_in_time: bool = False
    schemas: tuple[str, str] = ("", "")
    """(shadow, live copy): kept when asked to."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent opening the shadow and copying the live tables, folding, comparing."""

    @property
    def unproven(self) -> list[Rederived]:
        """Statements whose lines the log does not give (or that the fold refused)."""
        return [found for found in self.statements if not found.equal]

    @property
    def mismatched(self) -> int:
        """Differing rows, partners' balances and statements in all: 0 means equal."""
        if self.point_in_time:
            return sum(1 for b in self.balances if b.live != b.replay)
        rows = sum(t.mismatched + (t.problem is not None and t.mismatched == 0) for t in self.tables)
        return rows + len(self.unproven)


@dataclass(frozen=True)
class Shadow:
    """The service's folds opened on a scratch schema, and where the live copy goes."""

    built: Built
    schema: str
    copy: str


@asynccontextmanager
async def opened_shadow(replaying: Replaying, factory: FoldFactory, kind: str, *,
                        keep: bool) -> AsyncIterator[Shadow]:
    """The service's folds opened on a new scratch schema, and the name of the schema the
    live tables are copied into; both dropped afterwards unless ``keep``."""
    shadows = replaying.shadows
    scratch = shadows.scratch_schema(kind)
    built: Built | None = None
    try:
        built = await asyncio.to_thread(factory, scratch)
        yield Shadow(built, scratch, f"{scratch}_live")
    finally:
        if built is not None:
            await asyncio.to_thread(built.close)
        if not keep:
            await asyncio.to_thread(shadows.drop_schema, scratch)
            await asyncio.to_thread(shadows.drop_schema, f"{scratch}_live")


async def folded_shadow(replaying: Replaying, live_schema: str, shadow: Shadow, options: ReplayOptions, *,
                        transform: Transform | None = None, progress: Progress | None = None
                        ) -> tuple[FoldReport, dict[str, int]]:
    """Copy the live projection and its positions in one snapshot, then fold the log up to
    those positions into the shadow. ``LookupError`` when there is no live projection."""
    shadows, folds = replaying.shadows, shadow.built.folds
    if not await asyncio.to_thread(shadows.schema_exists, live_schema):
        raise LookupError(f"no payouts projection in schema {live_schema!r} of this database")
    tables = await asyncio.to_thread(shadows.projection_tables, live_schema, projection_of(shadow.built))
    tracking = folds[0].store.tracked_recorder.tracking_table_name
    positions = await asyncio.to_thread(shadows.snapshot, live_schema, shadow.copy, tables, tracking)
    report = await fold_log(folds, replaying, positions, options, transform=transform, progress=progress)
    return report, positions


async def verify(replaying: Replaying, live_schema: str, factory: FoldFactory,
                 options: ReplayOptions = ReplayOptions(), progress: Progress | None = None) -> Verification:
    """Rebuild the projection from the log in a scratch schema and compare it with the live
    one at the same positions, and prove every statement from the log. Raises
    ``LookupError`` when there is no live projection."""
    started = time.perf_counter()
    phases: dict[str, float] = {}
    async with opened_shadow(replaying, factory, "replay", keep=options.keep) as shadow:
        report, positions = await folded_shadow(replaying, live_schema, shadow, options, progress=progress)
        phases["fold"] = time.perf_counter() - started
        result = Verification(report, positions, 0.0, schemas=(shadow.schema, shadow.copy), phases=phases)
        replayed = payouts_of(shadow.built)
        if options.until is None and options.known_by is None:
            diff, names = replaying.shadows.diff_schemas, projection_of(shadow.built)
            result.tables = await asyncio.to_thread(diff, shadow.copy, shadow.schema, names)
            result.statements = await asyncio.to_thread(Statements(replayed).rederive)
        else:
            result.point_in_time = True
            result.balances = await asyncio.to_thread(_balances_as_of, replaying, factory, shadow, options)
        phases["compare"] = time.perf_counter() - started - phases["fold"]
    result.seconds = time.perf_counter() - started
    return result


async def prove_statement(replaying: Replaying, live_schema: str, factory: FoldFactory,
                          statement_id: str) -> Rederived:
    """One statement of the log beside its lines re-derived from the log up to its log
    position (the shadow folds the log; the live projection is only copied).
    ``LookupError`` when the log has no such statement."""
    async with opened_shadow(replaying, factory, "proof", keep=False) as shadow:
        await folded_shadow(replaying, live_schema, shadow, ReplayOptions())
        found = await asyncio.to_thread(Statements(payouts_of(shadow.built)).rederive, statement_id)
    if not found:
        raise LookupError(f"no statement {statement_id} on the log up to the live projection's positions")
    return found[0]


def _balances_as_of(replaying: Replaying, factory: FoldFactory, shadow: Shadow,
                    options: ReplayOptions) -> list[BalanceDiff]:
    """The shadow's balances per partner beside the live ones asked as of the same point
    (on the copy of the live tables taken with the positions folded)."""
    replayed = payouts_of(shadow.built)
    partners = replaying.shadows.partner_ids([replayed.schema, shadow.copy], projection_of(shadow.built))
    copied = factory(shadow.copy)
    try:
        live = payouts_of(copied)
        return [BalanceDiff(partner, _formatted(replayed, partner, None, None),
                            _formatted(live, partner, options.until, options.known_by))
                for partner in partners]
    finally:
        copied.close()


def _formatted(store: Payouts, partner_id: str, as_of: datetime | None,
               known: datetime | None) -> dict[str, dict[str, str]]:
    balances = store.reads.balances(partner_id, as_of, known)
    return {currency: balance.formatted() for currency, balance in balances.items()}
