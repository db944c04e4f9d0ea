"""Shadow folds of the payouts service, and its drift watch.

``service_folds`` opens the service's own consumers (built by its ``build``, so a
consumer added there is folded by every replay too) on a scratch schema, for
``afflux replay``, ``afflux verify statement``, ``afflux what-if`` and ``afflux drift``
(``entrypoints/cli.py``). ``watch_drift`` makes
the running service verify its live projection against a shadow fold every
``AFFLUX_PAYOUTS_DRIFT_INTERVAL`` seconds (0: never), one instance at a time
(a PostgreSQL advisory lock), exporting the outcome on ``/metrics`` and logging
each mismatching row at ERROR.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import psycopg
from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from afflux_payouts.adapters.shadow import PostgresShadows
from afflux_payouts.adapters.shadow_log import KafkaLog
from afflux_payouts.application.replay import Verification, verify
from afflux_payouts.application.replay_fold import Built, Fold, FoldFactory
from afflux_payouts.application.shadows import Replaying
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.background import while_served
from afflux_plumbing.service import Built as BuiltService

log = logging.getLogger(__name__)

BuildService = Callable[[PayoutsSettings], BuiltService]

DRIFT_MISMATCHED = Gauge("afflux_payouts_drift_mismatched_rows",
                         "Rows of the live payouts projection that differ from a shadow fold of the log "
                         "(last drift check)")
DRIFT_LAST_RUN = Gauge("afflux_payouts_drift_last_run_timestamp_seconds",
                       "When the last drift check of the payouts projection finished (Unix time)")
DRIFT_RUNS = Counter("afflux_payouts_drift_runs_total", "Drift checks of the payouts projection",
                     ["outcome"])


class DriftSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    interval: float = Field(default=3600.0, ge=0, validation_alias="AFFLUX_PAYOUTS_DRIFT_INTERVAL")
    """Seconds between drift checks; 0 turns them off."""


def service_folds(settings: PayoutsSettings, build: BuildService) -> FoldFactory:
    """Opens the service's consumers, as ``build`` wires them, on a given schema. Call it
    from a worker thread (opening a store blocks): the service is built on a loop of the
    thread's own, since its Kafka clients bind to one, and they are closed at once, never
    started (the shadow reads the log itself)."""

    def open_folds(schema: str) -> Built:
        async def built() -> Built:
            runtime, _, close = build(settings.model_copy(update={"db_schema": schema}))
            folds = [Fold(c.store, tuple(c.topics), c.handlers) for c in runtime.consumers]
            for consumer in runtime.consumers:
                await consumer._consumer.stop()  # never started: only releases the client
            await runtime.publisher.stop()
            return Built(folds, close)

        return asyncio.run(built())

    return open_folds


def replaying(settings: PayoutsSettings) -> Replaying:
    """The service's database schemas and its log, for a replay."""
    return Replaying(PostgresShadows(settings.database_url), KafkaLog(settings.kafka_bootstrap_servers))


def log_mismatches(found: Verification) -> None:
    for table in found.tables:
        if table.problem:
            log.error("payouts drift: table %s: %s", table.table, table.problem)
        for row in table.rows:
            log.error("payouts drift: %s %s %s: %s", table.table, row.kind, row.key,
                      "; ".join(f"{c} live={lv!r} replay={rv!r}" for c, lv, rv in row.changed()))
    for statement in found.unproven:
        stated = statement.statement
        log.error("payouts drift: statement %s is not what the log gives: %s", stated.statement_id,
                  stated.refusal or f"digest {stated.digest}, re-derived {statement.digest}")


async def check_drift(settings: PayoutsSettings, build: BuildService) -> Verification:
    """One drift check: a shadow fold compared with the live projection, recorded in the
    metrics and logged when they differ."""
    try:
        found = await verify(replaying(settings), settings.db_schema, service_folds(settings, build))
    except Exception:
        DRIFT_RUNS.labels(outcome="failed").inc()
        raise
    DRIFT_MISMATCHED.set(found.mismatched)
    DRIFT_LAST_RUN.set(time.time())
    DRIFT_RUNS.labels(outcome="mismatch" if found.mismatched else "equal").inc()
    if found.mismatched:
        log.error("payouts drift: %d rows of the live projection differ from the log's fold",
                  found.mismatched)
        log_mismatches(found)
    return found


async def _watch(settings: PayoutsSettings, build: BuildService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        lock = f"afflux-payouts-drift:{settings.db_schema}"
        try:
            async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
                cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (lock,))
                held = await cursor.fetchone()
                if held and held[0]:
                    await check_drift(settings, build)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payouts drift check failed; next in %gs", interval)


def watch_drift(app: FastAPI, settings: PayoutsSettings, build: BuildService) -> None:
    """Run drift checks in the background while ``app`` is served (the service's hook)."""
    interval = DriftSettings().interval
    if interval > 0:
        while_served(app, lambda: _watch(settings, build, interval), "payouts-drift")
