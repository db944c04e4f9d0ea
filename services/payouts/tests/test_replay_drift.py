"""The payouts service checks its own projection against a shadow fold of the log every
AFFLUX_PAYOUTS_DRIFT_INTERVAL seconds: the outcome is on /metrics, and a mismatch is
logged at ERROR naming the row."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from payouts_fixtures import RunningPayouts, attributed, new_id, usd

from afflux_infra.testing import SessionInfrastructure, eventually
from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
async def drifting(infra: SessionInfrastructure) -> AsyncIterator[RunningPayouts]:
    """A payouts service checking for drift twice a second."""
    os.environ["AFFLUX_PAYOUTS_DRIFT_INTERVAL"] = "0.5"
    try:
        group = f"test-{secrets.token_hex(4)}"
        service = RunningPayouts(infra.new_database(), infra.bootstrap_servers, group)
        await service.start()
    finally:
        del os.environ["AFFLUX_PAYOUTS_DRIFT_INTERVAL"]
    yield service
    await service.stop()


def metric(service: RunningPayouts, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", service.get("/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_drift_check_runs_in_the_service_and_reports_a_corrupted_row(
    drifting: RunningPayouts, infra: SessionInfrastructure, caplog: pytest.LogCaptureFixture
) -> None:
    partner = new_id("partner")
    sale = attributed(partner, "8.00")
    publisher = Publisher(infra.bootstrap_servers, client_id="drift-test")
    await publisher.start()
    try:
        await publisher.publish(sale)
    finally:
        await publisher.stop()
    await eventually(lambda: drifting.balances(partner) == {"USD": usd("8.00")})
    started = time.time()
    mismatched = "afflux_payouts_drift_mismatched_rows"
    last_run = "afflux_payouts_drift_last_run_timestamp_seconds"
    await eventually(lambda: (metric(drifting, last_run) or 0) > started
                     and metric(drifting, mismatched) == 0, timeout=30)

    change = "UPDATE payouts.ledger_entries SET bucket = %s WHERE conversion_id = %s"
    async with await psycopg.AsyncConnection.connect(drifting.database_url, autocommit=True) as conn:
        with caplog.at_level(logging.ERROR, logger="afflux_payouts.entrypoints.drift"):
            await conn.execute(change, ("paid", sale.payload.conversion_id))
            try:
                await eventually(lambda: metric(drifting, mismatched) == 1, timeout=30)
            finally:
                await conn.execute(change, ("accrued", sale.payload.conversion_id))
    assert any(sale.payload.conversion_id in r.getMessage() and "bucket live='paid' replay='accrued'"
               in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    await eventually(lambda: metric(drifting, mismatched) == 0, timeout=30)
    runs = await asyncio.to_thread(metric, drifting, 'afflux_payouts_drift_runs_total{outcome="mismatch"}')
    assert (runs or 0) >= 1
