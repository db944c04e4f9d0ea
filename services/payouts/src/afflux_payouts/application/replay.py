"""Re-deriving the payouts projection from the log: replay, verify, drift.

A *shadow fold* (``replay_fold``) rebuilds the projection from offset 0 into a
scratch schema with the service's own consumers (the same stores, topics and
handlers the live process runs, so there is no second implementation of the
rules), reading each partition up to the live projection's stored position, so
that the two hold the same records and compare like for like; partitions are
folded side by side, each in order.

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
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from afflux_payouts.adapters import shadow
from afflux_payouts.adapters.shadow_log import Record, Stretch, read_stretches
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
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.store import TrackedApplication

Progress = Callable[[int, int], None]
"""Called with (records read so far, records to read)."""


REPLAY_RUN_LIMIT = 1000
"""Records per transaction of a replay: ten times the live consumer's ``RUN_LIMIT`` (a
replay folds a backlog, where a run's fixed costs, a connection check, its reads and
its commit, count; a run's size never changes what it folds to)."""


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
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent opening the shadow and copying the live tables, folding, comparing."""

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
    phases: dict[str, float] = {}
    async with opened_shadow(database_url, factory, "replay", keep=options.keep) as (built, scratch, copy):
        folds = built.folds
        prefix = bookkeeping_prefix(folds)
        tables = await asyncio.to_thread(shadow.projection_tables, database_url, live_schema, prefix)
        tracking = folds[0].store.tracked_recorder.tracking_table_name
        positions = await asyncio.to_thread(
            shadow.snapshot, database_url, live_schema, copy, tables, tracking)
        phases["snapshot"] = time.perf_counter() - started
        report = await fold_log(folds, bootstrap_servers, positions, options, progress=progress)
        phases["fold"] = time.perf_counter() - started - phases["snapshot"]
        result = Verification(report, positions, 0.0, schemas=(scratch, copy), phases=phases)
        if options.until is None and options.known_by is None:
            result.tables = await asyncio.to_thread(shadow.diff_schemas, database_url, copy, scratch, prefix)
        else:
            result.point_in_time = True
            await asyncio.to_thread(_compare_as_of, result, database_url, live_schema, copy, folds, options)
        phases["compare"] = time.perf_counter() - started - phases["snapshot"] - phases["fold"]
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
