"""The gateway process: its projections (five consumers, one per topic), the partner
API, the admin report and the portal on one loop."""

from __future__ import annotations

import sys

from afflux_contracts import ATTRIBUTION, PARTNERS, PAYOUTS, POSTBACKS, TRACKING
from afflux_gateway.adapters.service_clients import PartnersClient, PayoutsClient
from afflux_gateway.adapters.views import GatewayStore, PostgresViews
from afflux_gateway.application.projection import Projection
from afflux_gateway.entrypoints.auth import Guard
from afflux_gateway.entrypoints.http import mount_api
from afflux_gateway.entrypoints.portal import Portal, mount_portal
from afflux_gateway.entrypoints.throttle import FailureThrottle
from afflux_gateway.settings import GatewaySettings, MissingSecret
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.http import service_app
from afflux_plumbing.runs import Handlers
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: GatewaySettings) -> Built:
    """Wire the store and its consumers (each topic in its own group, so a review waiting
    for its conversion never holds the clicks back), the API and the portal. The store is
    ``app.state.gateway``, its views ``app.state.views``. ``MissingSecret`` without the
    portal's session secret or the gateway's service token."""
    keys, token = settings.session_keys(), settings.own_token()
    store = open_store(GatewayStore, settings.database_url, settings.db_schema)
    views = PostgresViews(store)
    handlers = Handlers.of(Projection(views))
    runtime = ServiceRuntime(settings)
    for topic, group in (
        (PARTNERS, "partners"),
        (TRACKING, "tracking"),
        (ATTRIBUTION, "attribution"),
        (PAYOUTS, "payouts"),
        (POSTBACKS, "postbacks"),
    ):
        runtime.consume(store, [topic.name], group=group, handlers=handlers)
    guard = Guard(views, FailureThrottle(settings.failure_limit, settings.failure_period), settings.proxies)
    partners = PartnersClient(settings.partners_api, token)
    payouts = PayoutsClient(settings.payouts_api, token)
    app = service_app("Afflux gateway", runtime.ready)
    mount_api(app, views, guard, partners, payouts, settings.tracking_url, runtime.credentials())
    mount_portal(
        app, Portal(views, guard, partners, payouts, settings.tracking_url, keys, settings.secure_cookies)
    )

    async def stop() -> None:
        await partners.close()
        await payouts.close()

    app.router.add_event_handler("shutdown", stop)
    app.state.gateway, app.state.views, app.state.guard = store, views, guard
    return runtime, app, store.close


def main() -> None:
    try:  # before anything starts: say which secret is missing, not a traceback
        settings = GatewaySettings()
        settings.session_keys(), settings.own_token()
    except MissingSecret as error:
        print(f"gateway: {error}", file=sys.stderr)
        sys.exit(2)
    run_service(GatewaySettings, build)
