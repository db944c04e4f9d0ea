"""The tracking process: the routing-view consumer and the public HTTP edge on one loop."""

from __future__ import annotations

from afflux_contracts import PARTNERS, ClickRecorded, ConversionReported, ImpressionRecorded
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import Handlers
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.wiring import Publication, Subscription, Wiring
from afflux_tracking.adapters.store import TrackingStore
from afflux_tracking.adapters.visitor_profiles import VisitorProfiles
from afflux_tracking.application.intake import Intake
from afflux_tracking.application.routing import Routing
from afflux_tracking.entrypoints.http import create_app
from afflux_tracking.settings import TrackingSettings

ROUTING = Subscription.of(Routing, "partners", [PARTNERS], every_partition=True)
"""Every instance needs the whole routing view: a replica of the partners log, no group."""
WIRING = Wiring(TrackingSettings.service_name, subscriptions=(ROUTING,), publications=(
    Publication.of("intake", (ClickRecorded, ImpressionRecorded, ConversionReported)),))
"""What tracking runs on the log: the routing view, and intake's clicks, impressions and
conversion reports (its producer refuses any other event)."""


def build(settings: TrackingSettings) -> Built:
    """Wire the store, the partners consumer and the app. The store is also reachable as
    ``app.state.tracking`` and the view's keeper as ``app.state.routing`` (operators'
    shells and tests read the view through them)."""
    store = open_store(TrackingStore, settings.database_url, settings.db_schema)
    routing = Routing(store)
    runtime = ServiceRuntime(settings, WIRING)
    consumer = runtime.consume(store, ROUTING, handlers=Handlers.of(routing))
    partners_log = LogCatchUp(consumer, PARTNERS.name, settings.kafka_bootstrap_servers)
    intake = Intake(routing.view, runtime.producer("intake"), partners_log, settings.intake(),
                    VisitorProfiles(settings.geoip_database))
    app = create_app(intake, runtime.ready, settings.proxies)
    app.router.add_event_handler("shutdown", partners_log.stop)
    app.state.tracking = store
    app.state.routing = routing
    return runtime, app, store.close


def main() -> None:
    run_service(TrackingSettings, build)
