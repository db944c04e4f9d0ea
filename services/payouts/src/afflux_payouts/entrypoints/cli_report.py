"""What payouts' commands print: a replay's verdict per table and per statement, a
statement's proof, a what-if's report (and its CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console
from rich.table import Table

from afflux_payouts.application.replay import Verification
from afflux_payouts.application.statements import Rederived
from afflux_payouts.application.what_if import ReportLine, Scenario, WhatIf

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
"""Lines are never folded at the terminal's width: a verdict naming a statement stays one
line for grep, whatever width the console found when it was made."""

CSV_COLUMNS = ("partner_id", "currency", "conversions_repriced", "current_payout", "what_if_payout",
               "current_balance", "what_if_balance", "difference")


def verification(found: Verification, *, compare: bool, kept: bool) -> None:
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
        _balances(found)
    elif compare:
        _tables(found)
        _statements(found)
    if compare:
        verdict = ("[green]equal[/]: the live projection is the log's fold" if not found.mismatched else
                   f"[red]MISMATCH[/]: {found.mismatched} row(s) or statement(s) differ from the log's fold")
        console.print(verdict)


def _tables(found: Verification) -> None:
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


def _statements(found: Verification) -> None:
    unproven = found.unproven
    console.print(f"  statements: {len(found.statements)} re-derived from the log up to their log positions"
                  + (": each digest equal" if not unproven else f", [red]{len(unproven)} not given by it[/]"))
    for statement in unproven:
        console.print(f"    {_verdict(statement)}")


def _verdict(found: Rederived) -> str:
    statement = found.statement
    name = f"statement {statement.statement_id} ({statement.partner_id}, {statement.currency})"
    if statement.refusal is not None:
        return f"[red]{name}[/]: refused by the fold: {statement.refusal}"
    if found.digest != statement.digest:
        return f"[red]{name}[/]: digest {statement.digest}, the log gives {found.digest}"
    if found.conversion_error is not None:
        return f"[red]{name}[/]: its conversion is not the one the log's rates give: {found.conversion_error}"
    return f"{name}: digest equal"


def proof(found: Rederived) -> None:
    """A statement's lines beside the ones the log gives, and the verdict."""
    statement = found.statement
    table = Table("kind", "ref", "offer", "stated", "the log gives",
                  title=f"statement {statement.statement_id}: {statement.partner_id}, {statement.currency}, "
                        f"period end {statement.period_end.isoformat()}")
    stated = {(line.kind, line.ref): line for line in statement.lines}
    given = {(line.kind, line.ref): line for line in found.lines}
    for key in sorted(set(stated) | set(given)):
        mine, theirs = stated.get(key), given.get(key)
        either = mine or theirs
        offer = either.offer_id if either is not None else None
        table.add_row(key[0].value, key[1], offer or "", str(mine.amount) if mine else "-",
                      str(theirs.amount) if theirs else "[red]nothing[/]" if mine else "-")
    console.print(table)
    console.print(_verdict(found) if not found.equal else
                  f"[green]proven[/]: digest {statement.digest} is the one of the lines the log gives")


def write_csv(path: Path, lines: list[ReportLine]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(line.row() for line in lines)


def what_if(found: WhatIf, scenario: Scenario, path: Path) -> None:
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


def _balances(found: Verification) -> None:
    table = Table("partner", "currency", "accrued", "pending", "payable", "paid", "live",
                  title="balances as of the point in time: replay vs live")
    for partner in found.balances:
        for currency, buckets in partner.replay.items():
            live = partner.live.get(currency)
            verdict = "same" if live == buckets else f"[red]{live}[/]"
            table.add_row(partner.partner_id, currency, buckets["accrued"], buckets["pending"],
                          buckets["payable"], buckets["paid"], verdict)
        for currency in sorted(set(partner.live) - set(partner.replay)):
            live_only = f"[red]{partner.live[currency]}[/]"
            table.add_row(partner.partner_id, currency, "-", "-", "-", "-", live_only)
    console.print(table)
