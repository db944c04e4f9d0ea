"""The gateway process: its projections (five consumers, one per topic), the partner
API, the admin report and the portal on one loop."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, date, datetime, timedelta

from afflux_gateway.adapters.creatives import CreativeTables
from afflux_gateway.adapters.people import PeopleTables
from afflux_gateway.adapters.service_clients import (
    NotificationsClient,
    PartnersApplications,
    PartnersClient,
    PayoutsClient,
)
from afflux_gateway.adapters.smart_links import SmartLinkTables
from afflux_gateway.adapters.views import GatewayStore, PostgresViews
from afflux_gateway.application.creatives import CreativeShelf
from afflux_gateway.application.people import People
from afflux_gateway.application.projection import Projection
from afflux_gateway.application.signup import Limits, SignupDesk
from afflux_gateway.application.smart_links import SmartLinks
from afflux_gateway.entrypoints.auth import Guard
from afflux_gateway.entrypoints.creatives import creatives_router
from afflux_gateway.entrypoints.http import mount_api
from afflux_gateway.entrypoints.invoices import invoice_router
from afflux_gateway.entrypoints.people import Credentials, Throttle, mount_people
from afflux_gateway.entrypoints.portal import Portal, mount_portal
from afflux_gateway.entrypoints.portal_creatives import CreativePages, mount_creative_pages
from afflux_gateway.entrypoints.portal_payment import PaymentDetails, mount_payment_details
from afflux_gateway.entrypoints.portal_smart_links import SmartLinkPages, mount_smart_link_pages
from afflux_gateway.entrypoints.signup import SignupPages, link_maker, mount_signup
from afflux_gateway.entrypoints.smart_links import smart_links_router
from afflux_gateway.entrypoints.throttle import FailureThrottle
from afflux_gateway.settings import GatewaySettings, MissingSecret
from afflux_plumbing.background import while_served
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.http import service_app
from afflux_plumbing.outage import OUTAGES
from afflux_plumbing.runs import Handlers
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Subscription, Wiring

log = logging.getLogger(__name__)
EXPIRY_INTERVAL = 60.0
"""How often the gateway looks whether a UTC day has ended (the rollup's expiry runs once
a day; until it has, reports leave the day out by reading it from ``daily``)."""


class Projections(Projection, People, SmartLinks, CreativeShelf):
    """Every projection of the gateway: the program, traffic and money (``Projection``),
    the partners' users (``People``), the smart links (``SmartLinks``) and the offers'
    creatives (``CreativeShelf``)."""

    def __init__(self, views: PostgresViews, people: PeopleTables, smart_links: SmartLinkTables,
                 shelf: CreativeTables | None = None) -> None:
        super().__init__(views)
        self.people = people
        self.smart_links = smart_links
        self.shelf = shelf or CreativeTables(views.store)


PROJECTIONS = Subscription.per_topic(Projections)
"""A consumer per topic the projections read (each in its own group, so a review waiting
for its conversion never holds the clicks back)."""
WIRING = Wiring(GatewaySettings.service_name, subscriptions=(*PROJECTIONS, STAFF_VIEW))
"""What the gateway runs on the log: its projections and the staff view; it publishes nothing."""


def build(settings: GatewaySettings) -> Built:
    """Wire the store and its consumers (each topic in its own group, so a review waiting
    for its conversion never holds the clicks back), the API and the portal. The store is
    ``app.state.gateway``, its views ``app.state.views``. ``MissingSecret`` without the
    portal's session secret or the gateway's service token."""
    keys, token = settings.session_keys(), settings.own_token()
    store = open_store(GatewayStore, settings.database_url, settings.db_schema)
    views = PostgresViews(store)
    people = PeopleTables(store)
    smart_links = SmartLinkTables(store)
    shelf = CreativeTables(store)
    handlers = Handlers.of(Projections(views, people, smart_links, shelf))
    runtime = ServiceRuntime(settings, WIRING)
    for subscription in PROJECTIONS:
        runtime.consume(store, subscription, handlers=handlers)
    guard = Guard(views, FailureThrottle(settings.failure_limit, settings.failure_period), settings.proxies)
    partners = PartnersClient(settings.partners_api, token)
    payouts = PayoutsClient(settings.payouts_api, token)
    app = service_app("Afflux gateway", runtime.ready)
    mount_api(app, views, guard, partners, payouts, settings.tracking_url, runtime.credentials())
    app.include_router(invoice_router(views, guard, payouts))
    app.include_router(smart_links_router(smart_links, guard, settings.tracking_url))
    app.include_router(creatives_router(views, shelf, guard, settings.tracking_url, settings.site_url))
    portal = Portal(views, guard, partners, payouts, settings.tracking_url, keys, settings.secure_cookies,
                    people, invoices=payouts)
    mount_portal(app, portal)
    mount_payment_details(app, PaymentDetails(portal, partners))
    mount_smart_link_pages(app, SmartLinkPages(portal, smart_links))
    mount_creative_pages(app, CreativePages(portal, shelf, settings.site_url))
    mail = NotificationsClient(settings.notifications_url, token)
    limits = Limits(settings.signup_address_limit, settings.signup_email_limit,
                    timedelta(seconds=settings.signup_period), timedelta(hours=settings.verify_hours))
    desk = SignupDesk(people, mail, PartnersApplications(partners), limits,
                      link_maker(settings.public_url, keys))
    mount_signup(app, SignupPages(portal, desk))
    throttle = Throttle(FailureThrottle(settings.failure_limit, settings.failure_period))
    mount_people(app, Credentials(portal, partners, throttle), guard)

    async def stop() -> None:
        await partners.close()
        await payouts.close()
        await mail.close()

    app.router.add_event_handler("shutdown", stop)
    while_served(app, lambda: expire_daily(views), "gateway-recent-expiry")
    app.state.gateway, app.state.views, app.state.guard = store, views, guard
    return runtime, app, store.close


async def expire_daily(views: PostgresViews) -> None:
    """Each new UTC day (and at start), take the day that left the last 30 out of the
    leading partners' rollup; an outage is retried at the next look."""
    done: date | None = None
    while True:
        today = datetime.now(UTC).date()
        if today != done:
            try:
                await asyncio.to_thread(views.expire_recent, today)
                done = today
            except OUTAGES as error:
                log.warning("the recent figures' daily expiry is postponed: %s", error)
        await asyncio.sleep(EXPIRY_INTERVAL)


def main() -> None:
    try:  # before anything starts: say which secret is missing, not a traceback
        settings = GatewaySettings()
        settings.session_keys(), settings.own_token()
    except MissingSecret as error:
        print(f"gateway: {error}", file=sys.stderr)
        sys.exit(2)
    run_service(GatewaySettings, build)
