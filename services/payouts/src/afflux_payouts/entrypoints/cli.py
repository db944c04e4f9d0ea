"""Payouts' own commands, which the ``afflux`` CLI mounts: ``afflux replay payouts``,
``afflux drift payouts``, ``afflux verify statement <id>`` and ``afflux what-if``.

They read ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` (and ``AFFLUX_PAYOUTS_SCHEMA``)
as the payouts service does, rebuild the projection in a scratch schema with the
service's own fold (``entrypoints/drift.py: service_folds``), and exit 1 when anything
differs (2 when something needed is missing).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from afflux_attribution.domain.pricing import MissingSaleAmount, price
from afflux_attribution.domain.terms import PricingTerms
from afflux_contracts import Terms
from afflux_payouts.application.replay import Progress as OnProgress
from afflux_payouts.application.replay import ReplayOptions, Verification, prove_statement, verify
from afflux_payouts.application.shadows import LogShorterThanPositions
from afflux_payouts.application.what_if import Scenario, what_if_report
from afflux_payouts.entrypoints import cli_report
from afflux_payouts.entrypoints.cli_report import console, errors
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings

app = typer.Typer(help="Payouts: replay, verify, what-if and drift of the payouts projection.",
                  no_args_is_help=True)
replay_app = typer.Typer(
    help="Rebuild a projection from the log (offset 0) and compare it with the live one.",
    no_args_is_help=True)
drift_app = typer.Typer(help="Compare a live projection with a shadow fold of the log.", no_args_is_help=True)
verify_app = typer.Typer(help="Prove what payouts issued from the log alone.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")
app.add_typer(drift_app, name="drift")
app.add_typer(verify_app, name="verify")

T = TypeVar("T")


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
    verify_it: bool = typer.Option(False, "--verify", help="Compare with the live projection and prove every "
                                   "statement from the log; exit 1 on a mismatch."),
    until: str | None = typer.Option(None, help="Fold only the facts that happened by then (a conversion's "
                                     "converted_at, a review's changed_at, ...), e.g. 2026-10-31T23:59:59Z."),
    as_known_on: str | None = typer.Option(None, help="Fold only the records on the log by then (record "
                                           "timestamps)."),
    keep: bool = typer.Option(False, help="Keep the scratch schemas (named in the output) to inspect them."),
) -> None:
    """Rebuild the payouts projection from offset 0 into a scratch schema, reading each partition up
    to the live projection's stored position, and (with --verify) compare every projection table
    row by row and re-derive every statement's lines from the log up to its log position with the
    close rules, naming each whose digest differs. As of a point in time, the balances are
    compared with the live ones asked as of it."""
    options = ReplayOptions(until=parse_moment(until, "--until"),
                            known_by=parse_moment(as_known_on, "--as-known-on"), keep=keep or not verify_it)
    found = _verified(options)
    cli_report.verification(found, compare=verify_it, kept=options.keep)
    if verify_it and found.mismatched:
        raise typer.Exit(1)


@drift_app.command("payouts")
def drift_payouts() -> None:
    """Fold the log into a shadow projection and compare it with the live payouts projection
    (what the payouts service also does every AFFLUX_PAYOUTS_DRIFT_INTERVAL seconds); exit 1 if
    they differ."""
    found = _verified(ReplayOptions())
    cli_report.verification(found, compare=True, kept=False)
    if found.mismatched:
        raise typer.Exit(1)


@verify_app.command("statement")
def verify_statement(
    statement_id: str = typer.Argument(help="The statement to prove, e.g. st_3f9a..."),
) -> None:
    """Re-derive one statement's lines from the log up to its log position with the close rules and
    compare its digest (an auditor's check: the live projection is only copied); exit 1 if the log
    does not give its lines (or payouts refused it), 2 if the log has no such statement."""
    settings = payouts_settings()
    found = _run(prove_statement(replaying(settings), settings.db_schema, service_folds(settings, build),
                                 statement_id))
    cli_report.proof(found)
    if not found.equal:
        raise typer.Exit(1)


def _verified(options: ReplayOptions) -> Verification:
    settings = payouts_settings()
    with progress_bar() as progress:
        return _run(verify(replaying(settings), settings.db_schema, service_folds(settings, build), options,
                           progress))


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
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


def attribution_price(terms: Terms, sale_amount: Decimal | None, currency: str) -> Decimal | None:
    """Attribution's own pricing rule (payouts never prices by itself); None: it cannot."""
    try:
        return price(PricingTerms(terms.type, terms.amount, terms.percent), sale_amount, currency)
    except MissingSaleAmount:
        return None


@app.command("what-if")
def what_if(
    offer: str = typer.Option(..., help="The offer whose conversions are re-priced."),
    payout: str = typer.Option(..., help='The payout terms, e.g. \'{"type":"cpa","amount":"5.00"}\'.'),
    partner: str | None = typer.Option(None, help="Only this partner's conversions."),
    start: str = typer.Option(..., "--from", help="Conversions at or after this moment (RFC 3339)."),
    end: str = typer.Option(..., "--to", help="Conversions before this moment (RFC 3339)."),
    out: str | None = typer.Option(None, help="The CSV report (default: what-if-<offer>.csv here)."),
    keep: bool = typer.Option(False, help="Keep the shadow schemas to inspect them."),
) -> None:
    """Re-price the window's conversions of an offer with other payout terms in a shadow
    projection, and report per partner and currency what they would hold instead (CSV and a
    table). The live ledger is not changed."""
    try:
        terms = Terms.model_validate(json.loads(payout))
    except (json.JSONDecodeError, ValidationError) as error:
        raise typer.BadParameter(f"not payout terms: {error}", param_hint="--payout") from error
    begin, finish = parse_moment(start, "--from"), parse_moment(end, "--to")
    assert begin is not None and finish is not None
    if finish <= begin:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    scenario = Scenario(offer, terms, begin, finish, partner)
    settings = payouts_settings()
    with progress_bar() as progress:
        found = _run(what_if_report(replaying(settings), settings.db_schema, service_folds(settings, build),
                                    scenario, attribution_price, keep=keep, progress=progress))
    path = Path(out or f"what-if-{offer}.csv")
    cli_report.write_csv(path, found.lines)
    cli_report.what_if(found, scenario, path)
