"""``afflux replay payouts --verify``, ``afflux drift payouts``, ``afflux verify statement``
and ``afflux what-if`` (payouts' own commands, which the ``afflux`` CLI mounts) as an
operator runs them (the ``afflux`` command, once in its own process), against a payouts
service that folded a real log on a broker of the module's own and the real PostgreSQL. The last test
puts a forged statement on the log, which every later verify would name."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from payouts_fixtures import (
    BASE_TIME,
    RunningPayouts,
    attributed,
    buckets,
    new_id,
    status_changed,
    usd,
)
from psycopg import sql
from typer.testing import CliRunner

from afflux_contracts import (
    ConversionStatus,
    Envelope,
    LineKind,
    StatementIssued,
    StatementLine,
    StatusChange,
    statement_digest,
)
from afflux_infra.cli import app
from afflux_infra.testing import SessionInfrastructure, broker_of_its_own, eventually
from afflux_plumbing.publish import Publisher

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Log:
    service: RunningPayouts
    publisher: Publisher
    partner: str
    other: str
    offer: str
    sale: str
    """A conversion of ``partner`` paying 10.00, whose live row a test corrupts (and mends)."""
    statement: StatementIssued
    """``other``'s statement of March 2 (its 3.00 and 4.00), payable."""


@pytest.fixture(scope="module")
def module_broker(infra: SessionInfrastructure) -> Iterator[str]:
    """A broker whose topics hold only this module's records: a replay folds them all."""
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
async def folded(infra: SessionInfrastructure, module_broker: str) -> AsyncIterator[Log]:
    """A payouts service that folded: ``partner`` 10.00 and 5.00 on ``offer`` (March 1), a
    pending 3.00 approved on March 4, 2.50 on March 10; ``other`` 3.00 on ``offer`` and 4.00
    on another offer (stated on March 2), 6.00 on March 21."""
    service = RunningPayouts(infra.new_database(), module_broker, f"test-{secrets.token_hex(4)}")
    await service.start()
    publisher = Publisher(module_broker, client_id="replay-cli-test")
    await publisher.start()
    partner, other, offer = new_id("partner"), new_id("partner"), new_id("offer")
    sale = attributed(partner, "10.00", offer_id=offer)
    pending = attributed(partner, "3.00", status=ConversionStatus.PENDING, converted_at=BASE_TIME)
    for envelope in (
        sale, attributed(partner, "5.00", offer_id=offer), pending,
        status_changed(pending, StatusChange.APPROVED, previous=ConversionStatus.PENDING),
        attributed(partner, "2.50", converted_at=BASE_TIME + timedelta(days=9)),
        attributed(other, "3.00", offer_id=offer), attributed(other, "4.00"),
        attributed(other, "6.00", offer_id=offer, converted_at=BASE_TIME + timedelta(days=20)),
    ):
        await publisher.publish(envelope)
    await eventually(lambda: service.balances(partner) == {"USD": usd("20.50")}
                     and service.balances(other) == {"USD": usd("13.00")}, timeout=30)
    closed = await service.post("/v1/statements/close", {"period_end": "2026-03-02T00:00:00Z",
                                                         "partner_id": other})
    assert closed.status_code == 200, closed.text
    statement_id = closed.json()["statements"][0]["statement_id"]
    await eventually(lambda: service.balances(other) == {"USD": buckets("6.00", payable="7.00")})
    yield Log(service, publisher, partner, other, offer, sale.payload.conversion_id,
              await _issued(service, statement_id))
    await publisher.stop()
    await service.stop()


async def _issued(service: RunningPayouts, statement_id: str) -> StatementIssued:
    """A statement as it went on the log, rebuilt from the statements API."""
    shown = (await service.fetch(f"/v1/statements/{statement_id}")).json()
    lines = tuple(StatementLine(kind=LineKind(line["kind"]), ref=line["ref"], offer_id=line["offer_id"],
                                happened_at=line["happened_at"], amount=line["amount"])
                  for line in shown["lines"])
    return StatementIssued(statement_id=statement_id, partner_id=shown["partner_id"],
                           currency=shown["currency"], period_start=shown["period_start"],
                           period_end=shown["period_end"], status=shown["status"], lines=lines,
                           total=shown["total"], carried_over=shown["carried_over"],
                           minimum_payout=shown["minimum_payout"], frequency=shown["frequency"],
                           closed_by=shown["closed_by"], log_position=shown["log_position"],
                           digest=shown["digest"], issued_at=shown["issued_at"])


async def afflux(log: Log, *args: str, own_process: bool = False) -> tuple[int, str]:
    """Run the ``afflux`` command with the service's database and brokers; (exit code, output).
    In this process by default (its imports and the service's wiring cost seconds a run on a
    busy machine); ``own_process``: as ``python -m afflux_infra.cli``, the operator's way."""
    env = {"DATABASE_URL": log.service.database_url, "KAFKA_BOOTSTRAP_SERVERS": log.service.kafka_bootstrap,
           "COLUMNS": "220"}
    if not own_process:
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "afflux_infra.cli", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_verify_of_the_live_projection_exits_0(folded: Log) -> None:
    code, output = await afflux(folded, "replay", "payouts", "--verify", own_process=True)
    assert code == 0, output
    assert "ledger_entries: equal" in output and "equal: the live projection is the log's fold" in output
    assert "statements: 1 re-derived from the log up to their log positions: each digest equal" in output


async def test_verify_and_drift_exit_1_naming_a_corrupted_ledger_row(folded: Log) -> None:
    change = "UPDATE payouts.ledger_entries SET amount = amount + %s WHERE conversion_id = %s"
    async with await psycopg.AsyncConnection.connect(folded.service.database_url, autocommit=True) as conn:
        await conn.execute(change, (1, folded.sale))
        try:
            verified = await afflux(folded, "replay", "payouts", "--verify")
            drifted = await afflux(folded, "drift", "payouts")
        finally:
            await conn.execute(change, (-1, folded.sale))

    for code, output in (verified, drifted):
        assert code == 1, output
        assert f"conversion_id={folded.sale}: differs: amount: live 11.00 / replay 10.00" in output, output
        assert "MISMATCH: 1 row(s) or statement(s) differ" in output


async def test_verify_until_a_moment_compares_the_balances_as_of_then(folded: Log) -> None:
    code, output = await afflux(folded, "replay", "payouts", "--verify", "--until", "2026-03-06T00:00:00Z")
    assert code == 0, output
    assert "replay vs live" in output
    [line] = [line for line in output.splitlines() if folded.partner in line]
    assert "18.00" in line and "same" in line  # 10 + 5 + the 3 approved on March 4; not March 10's 2.50


async def test_verify_as_known_on_a_moment_leaves_out_later_records(folded: Log) -> None:
    known = datetime.now(UTC).replace(microsecond=0)
    await asyncio.sleep(1.2)
    late = new_id("partner")
    await folded.publisher.publish(attributed(late, "1.00", converted_at=BASE_TIME))
    await eventually(lambda: folded.service.balances(late) == {"USD": usd("1.00")})

    code, output = await afflux(folded, "replay", "payouts", "--verify", "--as-known-on",
                                known.isoformat().replace("+00:00", "Z"))
    assert code == 0, output
    [line] = [line for line in output.splitlines() if folded.partner in line]
    assert "20.50" in line and "same" in line  # everything of the partner was on the log by then
    assert not [line for line in output.splitlines() if late in line and "1.00" in line]


async def test_replay_with_keep_leaves_the_rebuilt_projection_to_query(folded: Log) -> None:
    code, output = await afflux(folded, "replay", "payouts", "--keep")
    assert code == 0, output
    [schema] = re.findall(r"shadow schema kept: (payouts_replay_\w+)", output)
    async with await psycopg.AsyncConnection.connect(folded.service.database_url, autocommit=True) as conn:
        cursor = await conn.execute(sql.SQL("SELECT amount FROM {} WHERE conversion_id = %s").format(
            sql.Identifier(schema, "ledger_entries")), (folded.sale,))
        assert [str(row[0]) for row in await cursor.fetchall()] == ["10.00"]
        for kept in (schema, f"{schema}_live"):
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(kept)))


async def test_what_if_reports_exact_differences_and_leaves_the_live_ledger_untouched(
    folded: Log, tmp_path: Path
) -> None:
    before = await _live_tables(folded.service.database_url)
    report = tmp_path / "what-if.csv"
    code, output = await afflux(
        folded, "what-if", "--offer", folded.offer, "--payout", '{"type":"cpa","amount":"5.00"}',
        "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-09T00:00:00Z", "--out", str(report))
    assert code == 0, output

    with report.open() as lines:
        rows = {row["partner_id"]: row for row in csv.DictReader(lines)}
    assert rows == {
        folded.partner: {"partner_id": folded.partner, "currency": "USD", "conversions_repriced": "2",
                         "current_payout": "15.00", "what_if_payout": "10.00", "current_balance": "20.50",
                         "what_if_balance": "15.50", "difference": "-5.00"},
        folded.other: {"partner_id": folded.other, "currency": "USD", "conversions_repriced": "1",
                       "current_payout": "3.00", "what_if_payout": "5.00", "current_balance": "13.00",
                       "what_if_balance": "15.00", "difference": "2.00"},
    }
    assert "-5.00" in output and "the live ledger is unchanged" in output
    assert await _live_tables(folded.service.database_url) == before


async def test_bad_what_if_terms_are_refused_by_name(folded: Log) -> None:
    code, output = await afflux(folded, "what-if", "--offer", folded.offer, "--payout", '{"type":"cpx"}',
                                "--from", "2026-03-01", "--to", "2026-03-09")
    assert code == 2 and "--payout" in output


async def _live_tables(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the live payouts schema (projection and bookkeeping), in full."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'payouts'")
        tables = sorted(str(row[0]) for row in await cursor.fetchall())
        found = {}
        for table in tables:
            rows = await conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(
                sql.Identifier("payouts", table)))
            found[table] = [tuple(row) for row in await rows.fetchall()]
        return found


def test_an_unset_database_or_broker_is_named_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["drift", "payouts"],
                                env={"DATABASE_URL": None, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert result.exit_code == 2
    assert "set DATABASE_URL" in result.output


async def test_a_forged_statement_pays_nothing_and_verify_names_it(folded: Log) -> None:
    """The audit claim: ``other``'s genuine statement copied under a new id with one more
    line of 500.00 for a conversion that never happened, its digest recomputed by the
    published rule, produced onto ``afflux.payouts.v1`` by hand. Last in the module: every
    later verify of this log names it."""
    genuine = folded.statement
    extra = StatementLine(kind=LineKind.COMMISSION, ref=new_id("conv"), offer_id=folded.offer,
                          happened_at=BASE_TIME, amount=Decimal("500.00"))
    lines = (*genuine.lines, extra)
    forged_id = f"st_{secrets.token_hex(12)}"
    forged = genuine.model_copy(update={
        "statement_id": forged_id, "lines": lines, "total": genuine.total + extra.amount,
        "digest": statement_digest(forged_id, genuine.partner_id, genuine.currency, genuine.period_end,
                                   lines)})
    before = await asyncio.to_thread(folded.service.balances, folded.other)
    await folded.publisher.publish(Envelope.wrap(forged, producer="payouts"))

    refused = await eventually(lambda: folded.service.get("/v1/statements", partner_id=folded.other,
                                                          status="refused").json()["statements"])
    assert [s["statement_id"] for s in refused] == [forged_id]
    refusal = refused[0]["refusal"]
    assert f"commission {extra.ref} (500.00 USD: it holds nothing)" in refusal, refusal
    assert all(f"commission {line.ref} ({line.amount} USD: it holds nothing)" in refusal  # on the genuine one
               for line in genuine.lines), refusal
    assert await asyncio.to_thread(folded.service.balances, folded.other) == before  # it pays nothing
    paying = await folded.service.post(f"/v1/statements/{forged_id}/paid", {"reference": "wire-x"})
    assert paying.status_code == 404  # payouts never issued it

    code, output = await afflux(folded, "replay", "payouts", "--verify")
    assert code == 1, output
    assert f"statement {forged_id} ({folded.other}, USD): refused by the fold" in output
    assert "statements: 2 re-derived from the log up to their log positions, 1 not given by it" in output

    code, output = await afflux(folded, "verify", "statement", forged_id)
    assert code == 1 and f"statement {forged_id}" in output and "nothing" in output, output
    code, output = await afflux(folded, "verify", "statement", genuine.statement_id)
    assert code == 0 and "proven" in output, output
    code, output = await afflux(folded, "verify", "statement", "st_never_issued")
    assert code == 2 and "no statement st_never_issued" in output, output
