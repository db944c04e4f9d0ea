"""``afflux replay payouts`` and ``afflux drift payouts``: re-derive the payouts
projection from the log and compare it with the live one.

Both read ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` (and
``AFFLUX_PAYOUTS_SCHEMA``) as the payouts service does, rebuild the projection in
a scratch schema with the service's own fold, and exit 1 when anything differs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from afflux_payouts.adapters.shadow_log import LogShorterThanPositions
from afflux_payouts.application.replay import Progress as OnProgress
from afflux_payouts.application.replay import ReplayOptions, Verification, verify
from afflux_payouts.entrypoints.drift import service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings

replay_app = typer.Typer(
    help="Rebuild a projection from the log (offset 0) and compare it with the live one.",
    no_args_is_help=True)
drift_app = typer.Typer(help="Compare a live projection with a shadow fold of the log.", no_args_is_help=True)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``replay``, ``drift`` and ``what-if`` to the ``afflux`` command."""
    from afflux_infra.replay_whatif import what_if

    app.add_typer(replay_app, name="replay")
    app.add_typer(drift_app, name="drift")
    app.command("what-if")(what_if)


def parse_moment(value: str | None, option: str) -> datetime | None:
    """An RFC 3339 moment (``2026-10-31T23:59:59Z``); without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not a date-time like 2026-10-31T23:59:59Z",
                                 param_hint=option) from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def payouts_settings() -> PayoutsSettings:
    """The payouts service's settings from the environment; exit 2 naming what is unset."""
    missing = [name for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if not os.environ.get(name)]
    try:
        if not missing:
            return PayoutsSettings(port=0)
    except ValidationError as error:
        missing = [str(e["loc"][0]) for e in error.errors()]
    errors.print(f"afflux: set {', '.join(missing)} (the payouts service's database and the Kafka brokers)")
    raise typer.Exit(2)


@replay_app.command("payouts")
def replay_payouts(
    verify_it: bool = typer.Option(False, "--verify", help="Compare with the live projection; exit 1 on a "
                                   "mismatch."),
    until: str | None = typer.Option(None, help="Fold only the facts that happened by then (a conversion's "
                                     "converted_at, a review's changed_at, ...), e.g. 2026-10-31T23:59:59Z."),
    as_known_on: str | None = typer.Option(None, help="Fold only the records on the log by then (record "
                                           "timestamps)."),
    keep: bool = typer.Option(False, help="Keep the scratch schemas (named in the output) to inspect them."),
) -> None:
    """Rebuild the payouts projection from offset 0 into a scratch schema, reading each partition up
    to the live projection's stored position, and (with --verify) compare every projection table
    row by row. As of a point in time, the balances are compared with the live ones asked as of
    it, or shown."""
    options = ReplayOptions(until=parse_moment(until, "--until"),
                            known_by=parse_moment(as_known_on, "--as-known-on"), keep=keep or not verify_it)
    found = _run(options)
    _print(found, compare=verify_it, kept=options.keep)
    if verify_it and found.mismatched:
        raise typer.Exit(1)


@drift_app.command("payouts")
def drift_payouts() -> None:
    """Fold the log into a shadow projection and compare it with the live payouts projection
    (what the payouts service also does every AFFLUX_PAYOUTS_DRIFT_INTERVAL seconds); exit 1 if
    they differ."""
    found = _run(ReplayOptions())
    _print(found, compare=True, kept=False)
    if found.mismatched:
        raise typer.Exit(1)


def _run(options: ReplayOptions) -> Verification:
    settings = payouts_settings()

    async def go(progress: OnProgress | None) -> Verification:
        return await verify(settings.database_url, settings.kafka_bootstrap_servers, settings.db_schema,
                            service_folds(settings, build), options, progress)

    try:
        with progress_bar() as progress:
            return asyncio.run(go(progress))
    except (LookupError, LogShorterThanPositions) as error:
        errors.print(f"afflux: {error}")
        raise typer.Exit(2) from error


@contextmanager
def progress_bar() -> Iterator[OnProgress | None]:
    """A progress bar of the records folded, on a terminal only."""
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("folding the log"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("fold", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print(found: Verification, *, compare: bool, kept: bool) -> None:
    report = found.report
    console.print(f"folded {report.read} records (applied {report.applied}, duplicates {report.duplicates}, "
                  f"left out after --until {report.left_out}, not applicable {len(report.dead_letters)}) "
                  f"in {found.seconds:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in found.phases.items())}), "
                  f"up to {len(found.positions)} live positions")
    for letter in report.dead_letters[:10]:
        console.print(f"  not applied (the live consumer dead-letters it too): {letter}")
    if kept:
        console.print(f"shadow schema kept: {found.schemas[0]} (live copy: {found.schemas[1]})")
    if found.point_in_time:
        _print_balances(found)
    elif compare:
        _print_tables(found)
    if compare:
        verdict = ("[green]equal[/]: the live projection is the log's fold" if not found.mismatched else
                   f"[red]MISMATCH[/]: {found.mismatched} row(s) differ from the log's fold")
        console.print(verdict)


def _print_tables(found: Verification) -> None:
    for table in found.tables:
        key = ", ".join(table.key) or "whole row"
        if table.equal:
            console.print(f"  {table.table}: equal")
            continue
        console.print(f"  [red]{table.table}[/]: {table.mismatched} row(s) differ (key: {key})"
                      + (f"; {table.problem}" if table.problem else ""))
        for row in table.rows:
            name = " ".join(f"{k}={v}" for k, v in row.key.items())
            changes = "; ".join(f"{c}: live {lv!s} / replay {rv!s}" for c, lv, rv in row.changed())
            console.print(f"    {name}: {row.kind}" + (f": {changes}" if row.kind == "differs" else ""))
        if table.mismatched > len(table.rows):
            console.print(f"    ... and {table.mismatched - len(table.rows)} more")


def _print_balances(found: Verification) -> None:
    title = ("balances as of the point in time: replay vs live" if found.compared_as_of else
             "balances as of the point in time (the live store cannot be asked as of it: "
             "shown, not compared)")
    table = Table("partner", "currency", "accrued", "pending", "payable", "paid", "live", title=title)
    for partner in found.balances:
        for currency, buckets in partner.replay.items():
            live = (partner.live or {}).get(currency) if partner.live is not None else None
            verdict = "-" if partner.live is None else ("same" if live == buckets else f"[red]{live}[/]")
            table.add_row(partner.partner_id, currency, buckets["accrued"], buckets["pending"],
                          buckets["payable"], buckets["paid"], verdict)
        for currency in sorted(set(partner.live or {}) - set(partner.replay)):
            table.add_row(partner.partner_id, currency, "-", "-", "-", "-",
                          f"[red]{(partner.live or {})[currency]}[/]")
    console.print(table)
