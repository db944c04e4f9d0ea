"""The gateway process: its projections (five consumers, one per topic), the partner
API, the admin report and the portal on one loop."""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress

from afflux_contracts import ATTRIBUTION, PARTNERS, PAYOUTS, POSTBACKS, TRACKING
from afflux_gateway.adapters.partners_client import PartnersClient
from afflux_gateway.application.projection import Gateway
from afflux_gateway.domain.throttle import FailureThrottle
from afflux_gateway.entrypoints.auth import Guard
from afflux_gateway.entrypoints.http import mount_api
from afflux_gateway.entrypoints.portal import Portal, mount_portal
from afflux_gateway.settings import GatewaySettings
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.http import service_app
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: GatewaySettings) -> Built:
    """Wire the store and its consumers (each topic in its own group, so a conversion
    waiting for its click never holds the clicks back), the API and the portal. The
    store is ``app.state.gateway``."""
    store = open_store(Gateway, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings)
    runtime.consume(store, [PARTNERS.name], store.apply_partners_event, group="partners")
    clicks = runtime.consume(store, [TRACKING.name], store.apply_tracking_event, group="tracking")
    runtime.consume(store, [ATTRIBUTION.name], store.apply_attribution_event, group="attribution")
    runtime.consume(store, [PAYOUTS.name], store.apply_payouts_event, group="payouts")
    runtime.consume(store, [POSTBACKS.name], store.apply_postbacks_event, group="postbacks")
    guard = Guard(store, FailureThrottle(settings.failure_limit, settings.failure_period), threading.Lock())
    partners = PartnersClient(settings.partners_api, settings.admin_token)
    app = service_app("Afflux gateway", runtime.ready)
    mount_api(app, store, guard, partners, settings.tracking_url, settings.admin_token)
    mount_portal(
        app,
        Portal(store, guard, partners, settings.tracking_url, settings.session_key, settings.secure_cookies),
    )
    tracking_log = LogCatchUp(clicks, TRACKING.name, settings.kafka_bootstrap_servers)
    checking: list[asyncio.Task[None]] = []

    async def start_checking() -> None:
        checking.append(asyncio.create_task(store.click_wait.keep_checking(tracking_log), name="click wait"))

    async def stop() -> None:
        for task in checking:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        await tracking_log.stop()
        await partners.close()

    app.router.add_event_handler("startup", start_checking)
    app.router.add_event_handler("shutdown", stop)
    app.state.gateway = store
    app.state.guard = guard
    return runtime, app, store.close


def main() -> None:
    run_service(GatewaySettings, build)
