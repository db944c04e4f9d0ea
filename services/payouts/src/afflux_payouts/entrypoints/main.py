"""The payouts process: the ledger store, its consumers of the attribution, partners and
payouts logs, the relay that publishes its statements, the close scheduler and the admin API."""

from __future__ import annotations

import asyncio
import logging

from afflux_contracts import ATTRIBUTION, PARTNERS, PAYOUTS
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.published import to_envelope
from afflux_payouts.application.statements import NotFoldedYet, Statements
from afflux_payouts.entrypoints.drift import watch_drift
from afflux_payouts.entrypoints.http import create_app
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.background import while_served
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.outage import OUTAGES
from afflux_plumbing.service import Built, ServiceRuntime, run_service

log = logging.getLogger(__name__)


def build(settings: PayoutsSettings) -> Built:
    """Wire the store, one consumer per folded topic (each in its own group, so a record
    parked on one never holds up the others), the relay, the scheduler and the HTTP app."""
    store = open_store(PayoutsStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings)
    for topic, group in ((ATTRIBUTION, "attribution"), (PARTNERS, "partners"), (PAYOUTS, "payouts")):
        runtime.consume(store, [topic.name], group=group)  # the store's @handles methods
    runtime.relay(store, to_envelope)
    statements = Statements(store)
    app = create_app(store, runtime.ready, runtime.credentials(), statements)
    watch_drift(app, settings, build)  # replay: a shadow fold checks the live projection
    if settings.close_interval > 0:
        while_served(app, lambda: close_on_schedule(statements, settings.close_interval), "payouts-close")
    return runtime, app, store.close


async def close_on_schedule(statements: Statements, interval: float) -> None:
    """Close every billed partner's periods as its frequency ends them, every ``interval``
    seconds (an outage or a fold that lags is retried at the next round)."""
    while True:
        await asyncio.sleep(interval)
        try:
            issued = await asyncio.to_thread(statements.close_due)
        except NotFoldedYet as error:
            log.warning("scheduled statement close postponed: %s", error)
            continue
        except OUTAGES as error:
            log.warning("scheduled statement close postponed: %s", error)
            continue
        if issued:
            log.info("closed %d statements on schedule", len(issued))


def main() -> None:
    run_service(PayoutsSettings, build)
