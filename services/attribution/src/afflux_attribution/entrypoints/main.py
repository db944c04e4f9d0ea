"""The attribution process: its two consumers, its outbox relay and its HTTP API on one loop."""

from __future__ import annotations

from afflux_attribution.application.attribution import Attribution
from afflux_attribution.application.published import to_envelope
from afflux_attribution.entrypoints.http import create_app
from afflux_attribution.settings import AttributionSettings
from afflux_contracts import PARTNERS, TRACKING
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: AttributionSettings) -> Built:
    """Wire the store, its consumers (each in its own group, so a conversion parked
    while its offer is on the way never holds up the partners log that brings it), the
    relay that publishes decisions, and the app. The store is also reachable as
    ``app.state.attribution`` (operators' shells and tests read the views through it)."""
    store = open_store(Attribution, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings)
    runtime.consume(store, [PARTNERS.name], store.apply_partners_event, group="partners")
    runtime.consume(store, [TRACKING.name], store.apply_tracking_event, group="tracking")
    runtime.relay(store, to_envelope)
    # "Never reported" is only said once every report on the tracking log is applied.
    tracking_log = LogCatchUp(store, TRACKING.name, settings.kafka_bootstrap_servers)
    app = create_app(store, runtime.ready, settings.admin_token, tracking_log, settings.publish_timeout)
    app.router.add_event_handler("shutdown", tracking_log.stop)
    app.state.attribution = store
    return runtime, app, store.close


def main() -> None:
    run_service(AttributionSettings, build)
