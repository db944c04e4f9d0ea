"""``afflux what-if``: re-price a window's conversions with other terms in a shadow
projection, and report what each partner would earn instead.

The log is folded from offset 0 into a scratch schema by the payouts service's own
fold, up to the live projection's positions, with one change on the way: each
ConversionAttributed of the offer (and partner) converted in [from, to) carries
the payout the given terms price it at, by attribution's own pricing rule (and an
approval of such a conversion carries it too; an advertiser's adjustment keeps
its amount). The report compares the shadow's balances with a copy of the live
ones taken at the same positions. The live ledger is only read.
"""

from __future__ import annotations

import asyncio
import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from afflux_attribution.domain.pricing import MissingSaleAmount, price
from afflux_attribution.domain.terms import PricingTerms
from afflux_contracts import (
    ConversionAttributed,
    ConversionStatusChanged,
    Envelope,
    Event,
    Money,
    StatusChange,
    Terms,
)
from afflux_infra.replay_cli import console, errors, parse_moment, payouts_settings, progress_bar
from afflux_payouts.adapters import shadow
from afflux_payouts.application.replay import Progress as OnProgress
from afflux_payouts.application.replay import ReplayOptions, bookkeeping_prefix, fold_log, opened_shadow
from afflux_payouts.application.replay_fold import FoldFactory, FoldReport
from afflux_payouts.entrypoints.drift import service_folds
from afflux_payouts.entrypoints.main import build
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.store import TrackedApplication

CSV_COLUMNS = ("partner_id", "currency", "conversions_repriced", "current_payout", "what_if_payout",
               "current_balance", "what_if_balance", "difference")


@dataclass(frozen=True)
class Scenario:
    """Which conversions to re-price, and with what."""

    offer_id: str
    terms: Terms
    start: datetime
    end: datetime
    partner_id: str | None = None

    def covers(self, decision: ConversionAttributed) -> bool:
        return (decision.offer_id == self.offer_id and self.start <= decision.converted_at < self.end
                and (self.partner_id is None or decision.partner_id == self.partner_id))


@dataclass
class Repricing:
    """The transform a what-if folds the log through, and what it changed."""

    scenario: Scenario
    repriced: dict[str, tuple[str, str, Decimal, Decimal]] = field(default_factory=dict)
    """conversion_id -> (partner_id, currency, payout on the log, what-if payout)."""
    unpriceable: list[str] = field(default_factory=list)
    """Conversions the terms cannot price (percentage terms, no sale amount): kept as they are."""

    def __call__(self, envelope: Envelope[Event]) -> Envelope[Event]:
        payload = envelope.payload
        if isinstance(payload, ConversionAttributed) and self.scenario.covers(payload):
            return self._reprice(envelope, payload)
        if (isinstance(payload, ConversionStatusChanged) and payload.status is StatusChange.APPROVED
                and payload.conversion_id in self.repriced):
            new = self.repriced[payload.conversion_id][3]
            return _with_payload(envelope, payload.model_copy(
                update={"payout": Money(amount=new, currency=payload.payout.currency)}))
        return envelope

    def _reprice(self, envelope: Envelope[Event], decision: ConversionAttributed) -> Envelope[Event]:
        terms = self.scenario.terms
        currency = decision.payout.currency
        try:
            new = price(PricingTerms(terms.type, terms.amount, terms.percent), decision.sale_amount, currency)
        except MissingSaleAmount:
            self.unpriceable.append(decision.conversion_id)
            return envelope
        known = self.repriced.get(decision.conversion_id)
        if known is None:  # the first decision is the one the ledger keeps
            old = decision.payout.amount
            self.repriced[decision.conversion_id] = (decision.partner_id, currency, old, new)
        return _with_payload(envelope, decision.model_copy(
            update={"payout": Money(amount=new, currency=currency)}))


def _with_payload(envelope: Envelope[Event], payload: Event) -> Envelope[Event]:
    return envelope.model_copy(update={"payload": payload})


@dataclass(frozen=True)
class ReportLine:
    partner_id: str
    currency: str
    conversions: int
    current_payout: Decimal
    what_if_payout: Decimal
    current_balance: Decimal
    what_if_balance: Decimal

    @property
    def difference(self) -> Decimal:
        return self.what_if_balance - self.current_balance

    def row(self) -> tuple[str, ...]:
        return (self.partner_id, self.currency, str(self.conversions), str(self.current_payout),
                str(self.what_if_payout), str(self.current_balance), str(self.what_if_balance),
                str(self.difference))


@dataclass
class WhatIf:
    lines: list[ReportLine]
    report: FoldReport
    unpriceable: list[str]


async def what_if_report(database_url: str, bootstrap_servers: str, live_schema: str, factory: FoldFactory,
                         scenario: Scenario, *, keep: bool = False,
                         progress: OnProgress | None = None) -> WhatIf:
    """Fold the log re-priced by ``scenario`` into a shadow and compare its balances with
    the live ones at the same positions (the live schema is only read)."""
    if not await asyncio.to_thread(shadow.schema_exists, database_url, live_schema):
        raise LookupError(f"no payouts projection in schema {live_schema!r} of this database")
    repricing = Repricing(scenario)
    async with opened_shadow(database_url, factory, "whatif", keep=keep) as (built, _, copy):
        prefix = bookkeeping_prefix(built.folds)
        store = built.folds[0].store
        tables = await asyncio.to_thread(shadow.projection_tables, database_url, live_schema, prefix)
        positions = await asyncio.to_thread(shadow.snapshot, database_url, live_schema, copy, tables,
                                            store.tracked_recorder.tracking_table_name)
        report = await fold_log(built.folds, bootstrap_servers, positions, ReplayOptions(),
                                transform=repricing, progress=progress)
        lines = await asyncio.to_thread(_lines, repricing, store, database_url, copy)
    return WhatIf(lines, report, repricing.unpriceable)


def _lines(repricing: Repricing, shadow_store: TrackedApplication, database_url: str,
           copy: str) -> list[ReportLine]:
    """One line per (partner, currency) with re-priced conversions."""
    groups: dict[tuple[str, str], list[tuple[Decimal, Decimal]]] = {}
    for partner, currency, old, new in repricing.repriced.values():
        groups.setdefault((partner, currency), []).append((old, new))
    live = open_store(type(shadow_store), database_url, copy)
    try:
        lines = []
        for (partner, currency), payouts in sorted(groups.items()):
            lines.append(ReportLine(
                partner, currency, len(payouts), sum((o for o, _ in payouts), Decimal(0)),
                sum((n for _, n in payouts), Decimal(0)),
                _total(live, partner, currency), _total(shadow_store, partner, currency)))
        return lines
    finally:
        live.close()


def _total(store: TrackedApplication, partner_id: str, currency: str) -> Decimal:
    """What the partner holds in ``currency`` over every bucket (pending, accrued, payable, paid)."""
    balances = store.balances(partner_id)  # type: ignore[attr-defined]
    balance = balances.get(currency)
    return Decimal(0) if balance is None else sum((Decimal(v) for v in balance.formatted().values()),
                                                  Decimal(0))


def write_csv(path: Path, lines: list[ReportLine]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(line.row() for line in lines)


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
    try:
        with progress_bar() as progress:
            found = asyncio.run(what_if_report(
                settings.database_url, settings.kafka_bootstrap_servers, settings.db_schema,
                service_folds(settings, build), scenario, keep=keep, progress=progress))
    except LookupError as error:
        errors.print(f"afflux: {error}")
        raise typer.Exit(2) from error
    path = Path(out or f"what-if-{offer}.csv")
    write_csv(path, found.lines)
    _print(found, scenario, path)


def _print(found: WhatIf, scenario: Scenario, path: Path) -> None:
    table = Table(*CSV_COLUMNS, title=f"what if {scenario.offer_id} paid {scenario.terms.model_dump_json()} "
                  f"from {scenario.start.isoformat()} to {scenario.end.isoformat()}")
    for line in found.lines:
        table.add_row(*line.row())
    console.print(table)
    if not found.lines:
        console.print("no conversion of that offer in that window: nothing would change")
    if found.unpriceable:
        console.print(f"{len(found.unpriceable)} conversion(s) have no sale amount for these terms and "
                      "keep their payout")
    console.print(f"report written to {path} (the live ledger is unchanged)")
