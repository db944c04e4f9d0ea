"""Every service's app, built as its own tests build it (``build(settings)`` on a
database of its own), for tests of the HTTP edge that span all services.

Partners is also served (its relay running), because a partners write waits for its
events to be on the log before answering. Attribution is served too, and waited for
until it has read the tracking log to its end: it answers an unknown conversion id
only once caught up with that log (else 503). Payouts and the gateway are served so
that a partner's key reaches the gateway's views and its balance is asked of payouts
(with the gateway's own service token). A module may name the services it needs served
(``SERVED``). All of them share a broker of the module's own. The others are only called
in-process.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from security_fixtures import ADMIN_TOKEN, ServiceApp

from afflux_attribution.entrypoints.main import build as build_attribution
from afflux_attribution.settings import AttributionSettings
from afflux_console.entrypoints.main import build as build_console
from afflux_console.settings import ConsoleSettings
from afflux_contracts import TRACKING
from afflux_gateway.entrypoints.main import build as build_gateway
from afflux_gateway.settings import GatewaySettings
from afflux_infra.embedded import free_port
from afflux_infra.platform import GATEWAY_SCOPES
from afflux_infra.testing import SessionInfrastructure, broker_of_its_own, serving
from afflux_notifications.entrypoints.main import build as build_notifications
from afflux_notifications.settings import NotificationsSettings
from afflux_partners.entrypoints.main import build as build_partners
from afflux_partners.settings import PartnersSettings
from afflux_payouts.entrypoints.main import build as build_payouts
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.auth import service_token_entry
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.service import Built
from afflux_plumbing.settings import ServiceSettings
from afflux_postbacks.entrypoints.main import build as build_postbacks
from afflux_postbacks.settings import PostbacksSettings
from afflux_tracking.entrypoints.main import build as build_tracking
from afflux_tracking.settings import TrackingSettings

BUILDS: dict[str, tuple[type[ServiceSettings], Callable[[Any], Built]]] = {
    "partners": (PartnersSettings, build_partners),
    "tracking": (TrackingSettings, build_tracking),
    "attribution": (AttributionSettings, build_attribution),
    "payouts": (PayoutsSettings, build_payouts),
    "postbacks": (PostbacksSettings, build_postbacks),
    "gateway": (GatewaySettings, build_gateway),
    "console": (ConsoleSettings, build_console),
    "notifications": (NotificationsSettings, build_notifications),
}
SERVED = {"partners", "attribution", "payouts", "gateway"}
"""What a test module gets served unless it names its own ``SERVED`` (test_staff_roles
serves every service with admin routes: a staff credential reaches a service's staff
view only while it is served)."""
GATEWAY_TOKEN = "security-test-gateway-token-5d1e"
GATEWAY_SECRETS = {"session_secret": "security-test-session-secret-0123456789",
                   "service_token": GATEWAY_TOKEN}
PROFILE_KEY = "c2VjdXJpdHktdGVzdC1wcm9maWxlLWtleS0wMTIzNDU="
"""Seals partners' tax and payment details (a deployment must set one: without it the
profile routes answer 503)."""
CAUGHT_UP_WITHIN = 180.0


@pytest.fixture(scope="module")
def security_broker(infra: SessionInfrastructure) -> Iterator[str]:
    """A broker of the module's own: attribution and the gateway read every topic from
    offset 0, and on the session's broker they would first wade through every earlier
    test's records (thousands of partners events and conversions for offers they never
    saw, each parked until its partners view has caught up)."""
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
async def service_apps(
    infra: SessionInfrastructure, security_broker: str, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, ServiceApp]]:
    apps: dict[str, ServiceApp] = {}
    served = getattr(request.module, "SERVED", SERVED)
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        for name, (settings_type, build) in BUILDS.items():
            own = ({**GATEWAY_SECRETS, "payouts_url": urls["payouts"], "partners_url": urls["partners"]}
                   if name == "gateway" else {"profile_keys": PROFILE_KEY} if name in ("partners", "payouts")
                   else {})
            settings = settings_type(
                database_url=infra.new_database(), kafka_bootstrap_servers=security_broker,
                admin_token=ADMIN_TOKEN, group_prefix=f"test-{secrets.token_hex(4)}", port=free_port(),
                service_tokens=service_token_entry("gateway", GATEWAY_TOKEN, GATEWAY_SCOPES), **own,
            )
            runtime, app, close = build(settings)
            stack.callback(close)
            if name in served:
                urls[name] = await stack.enter_async_context(serving(runtime, app))
                if name == "attribution":
                    await caught_up_with_tracking(app, security_broker)
            apps[name] = ServiceApp(name, app, served=name in served)
        yield apps


async def caught_up_with_tracking(app: Any, bootstrap_servers: str) -> None:
    """Until attribution's store has applied the tracking log to its end (asked with a
    catch-up of the test's own: the app's belongs to the loop the fuzzer calls it on)."""
    catch_up = LogCatchUp(app.state.attribution, TRACKING.name, bootstrap_servers)
    try:
        if not await catch_up.caught_up(CAUGHT_UP_WITHIN):
            raise TimeoutError(f"attribution did not catch up with the tracking log in {CAUGHT_UP_WITHIN}s")
    finally:
        await catch_up.stop()
