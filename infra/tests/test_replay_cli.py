"""``afflux replay payouts --verify``, ``afflux drift payouts`` and ``afflux what-if`` as an
operator runs them: the real command in its own process, against a payouts service that
folded a real log on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from payouts_fixtures import BASE_TIME, RunningPayouts, attributed, new_id, status_changed, usd
from psycopg import sql

from afflux_contracts import ConversionStatus, StatusChange
from afflux_infra.testing import SessionInfrastructure, eventually
from afflux_plumbing.publish import Publisher

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Log:
    service: RunningPayouts
    partner: str
    other: str
    offer: str
    sale: str
    """A conversion of ``partner`` paying 10.00, whose live row a test corrupts (and mends)."""


@pytest.fixture(scope="module")
async def folded(infra: SessionInfrastructure) -> AsyncIterator[Log]:
    """A payouts service that folded: ``partner`` 10.00 and 5.00 on ``offer`` (March 1), a
    pending 3.00 approved on March 4, 2.50 on March 10; ``other`` 3.00 on ``offer`` and 4.00
    on another offer."""
    service = RunningPayouts(infra.new_database(), infra.bootstrap_servers, f"test-{secrets.token_hex(4)}")
    await service.start()
    publisher = Publisher(infra.bootstrap_servers, client_id="replay-cli-test")
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
    yield Log(service, partner, other, offer, sale.payload.conversion_id)
    await publisher.stop()
    await service.stop()


async def afflux(log: Log, *args: str) -> tuple[int, str]:
    """Run the ``afflux`` command with the service's database and brokers; (exit code, output)."""
    env = {**os.environ, "DATABASE_URL": log.service.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": log.service.kafka_bootstrap, "COLUMNS": "220"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "afflux_infra.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_verify_of_the_live_projection_exits_0(folded: Log) -> None:
    code, output = await afflux(folded, "replay", "payouts", "--verify")
    assert code == 0, output
    assert "ledger_entries: equal" in output and "equal: the live projection is the log's fold" in output


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
        assert "MISMATCH: 1 row(s) differ" in output


async def test_verify_until_a_moment_compares_the_balances_as_of_then(folded: Log) -> None:
    code, output = await afflux(folded, "replay", "payouts", "--verify", "--until", "2026-03-06T00:00:00Z")
    assert code == 0, output
    assert "replay vs live" in output
    [line] = [line for line in output.splitlines() if folded.partner in line]
    assert "18.00" in line and "same" in line  # 10 + 5 + the 3 approved on March 4; not March 10's 2.50


async def test_verify_as_known_on_a_moment_leaves_out_later_records(
    folded: Log, infra: SessionInfrastructure
) -> None:
    known = datetime.now(UTC).replace(microsecond=0)
    await asyncio.sleep(1.2)
    late = new_id("partner")
    publisher = Publisher(infra.bootstrap_servers, client_id="replay-cli-late")
    await publisher.start()
    try:
        await publisher.publish(attributed(late, "1.00", converted_at=BASE_TIME))
    finally:
        await publisher.stop()
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


def test_moments_without_a_zone_are_utc() -> None:
    from afflux_infra.replay_cli import parse_moment

    assert parse_moment("2026-03-06T00:00:00", "--until") == datetime(2026, 3, 6, tzinfo=UTC)
    assert parse_moment("2026-03-06T01:00:00+01:00", "--until") == datetime(2026, 3, 6, tzinfo=UTC)


def test_an_unset_database_or_broker_is_named_with_exit_2() -> None:
    from typer.testing import CliRunner

    from afflux_infra.cli import app

    result = CliRunner().invoke(app, ["drift", "payouts"],
                                env={"DATABASE_URL": None, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert result.exit_code == 2
    assert "set DATABASE_URL" in result.output
