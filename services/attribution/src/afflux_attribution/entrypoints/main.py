"""The attribution process: its two consumers, its outbox relay and its HTTP API on one loop."""

from __future__ import annotations

import time

from afflux_attribution.adapters.freshness import GatedConsumer, PartnersFreshness, TrackingEnds
from afflux_attribution.adapters.postgres import AttributionStore
from afflux_attribution.application.attribution import PARTNERS_EVENTS, Attribution
from afflux_attribution.application.published import to_envelope
from afflux_attribution.entrypoints.http import create_app
from afflux_attribution.settings import AttributionSettings
from afflux_contracts import PARTNERS, TRACKING
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import Handlers, Run
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.store import Changes
from afflux_plumbing.wiring import Publication, Subscription, Wiring

PARTNERS_FEED = Subscription.of(AttributionStore, "partners", [PARTNERS])
TRACKING_FEED = Subscription.of(AttributionStore, "tracking", [TRACKING])
WIRING = Wiring(AttributionSettings.service_name, subscriptions=(PARTNERS_FEED, TRACKING_FEED, STAFF_VIEW),
                publications=(Publication.of("relay", to_envelope.events),))
"""What attribution runs on the log: its two consumers, the staff view, its relay."""


class TrackingLog:
    """A ``LogCatchUp`` on the tracking log, made on first use: its Kafka client belongs to
    the event loop that serves the app, which may not be the one ``build`` runs on."""

    def __init__(self, store: Attribution, bootstrap_servers: str) -> None:
        self._store, self._bootstrap = store, bootstrap_servers
        self._catch_up: LogCatchUp | None = None

    async def caught_up(self, timeout: float) -> bool:
        if self._catch_up is None:
            self._catch_up = LogCatchUp(self._store, TRACKING.name, self._bootstrap)
        return await self._catch_up.caught_up(timeout)

    async def stop(self) -> None:
        if self._catch_up is not None:
            await self._catch_up.stop()


def build(settings: AttributionSettings) -> Built:
    """Wire the store, its consumers (each in its own group, so a conversion parked
    while its offer is on the way never holds up the partners log that brings it), the
    relay that publishes decisions, and the app. The tracking consumer catches the
    partners view up with its log after each fetch (``adapters/freshness.py``). The
    store is also reachable as ``app.state.attribution`` (operators' shells and tests
    read the views through it)."""
    store = open_store(AttributionStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings, WIRING)
    partners = runtime.consume(store, PARTNERS_FEED,
                               handlers=partners_handlers(store, settings.partners_delay))
    freshness = PartnersFreshness()
    store.partners_fresh = freshness
    tracking_ends = TrackingEnds(store, settings.kafka_bootstrap_servers, settings.catch_up_timeout)
    store.click_wait = tracking_ends
    tracking = runtime.consume_with(
        GatedConsumer, store, TRACKING_FEED,
        catch_up=LogCatchUp(partners, PARTNERS.name, settings.kafka_bootstrap_servers),
        freshness=freshness, timeout=settings.catch_up_timeout, tracking_ends=tracking_ends,
    )
    runtime.relay(store, to_envelope)
    # "Never reported" is only said once every report on the tracking log is applied.
    tracking_log = TrackingLog(store, settings.kafka_bootstrap_servers)
    app = create_app(store, runtime.ready, runtime.credentials(), tracking_log, settings.publish_timeout)
    app.router.add_event_handler("shutdown", tracking_log.stop)
    app.router.add_event_handler("shutdown", tracking.stop_catch_up)
    app.state.attribution = store
    return runtime, app, store.close


def partners_handlers(store: Attribution, delay: float) -> Handlers:
    """The partners consumer's handlers; with ``delay`` (a test hook) each first waits that
    long per event, in its worker thread, to play a partners view that lags its log."""
    if delay <= 0:
        return store.handlers

    def slowed(run: Run) -> Changes:
        time.sleep(delay * len(run))
        changes: Changes = store.on_partners(run)
        return changes

    return Handlers(dict.fromkeys(PARTNERS_EVENTS, slowed))


def main() -> None:
    run_service(AttributionSettings, build)
