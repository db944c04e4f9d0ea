"""The postbacks process: two consumers (the partners and attribution logs), the delivery
worker, the outbox relay and the delivery-log API on one loop."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from afflux_contracts import PARTNERS
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.runs import Handlers
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Publication, Subscription, Wiring
from afflux_postbacks.adapters.sender import PostbackSender
from afflux_postbacks.adapters.store import PostbacksStore
from afflux_postbacks.application.news import News
from afflux_postbacks.application.published import to_envelope
from afflux_postbacks.application.worker import DeliveryWorker
from afflux_postbacks.domain.retries import RetryPolicy
from afflux_postbacks.entrypoints.http import create_app
from afflux_postbacks.settings import PostbacksSettings

NEWS = Subscription.per_topic(News)
"""A consumer per topic the news handles (partners, attribution), each in its own group."""
WIRING = Wiring(PostbacksSettings.service_name, subscriptions=(*NEWS, STAFF_VIEW),
                publications=(Publication.of("relay", to_envelope.events),))
"""What postbacks runs on the log: its consumers, the staff view, the relay of outcomes."""


def build(settings: PostbacksSettings) -> Built:
    """Wire the store, its consumers (each in its own group), the worker, the relay that
    publishes outcomes, and the app. The worker runs with the app (started and stopped
    by its lifespan: ServiceRuntime runs only consumers and relays); the store is
    ``app.state.postbacks``."""
    store = open_store(PostbacksStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings, WIRING)
    news = Handlers.of(News(store))
    for subscription in NEWS:
        runtime.consume(store, subscription, handlers=news)
    runtime.relay(store, to_envelope)
    sender = PostbackSender(timeout=settings.call_timeout, allow_private=settings.allow_private)
    partners_log = LogCatchUp(store, PARTNERS.name, settings.kafka_bootstrap_servers)
    worker = DeliveryWorker(
        store, sender.call, RetryPolicy(settings.retry_first, settings.retry_cap, settings.give_up_after),
        per_host=settings.per_host, partners_log=partners_log,
        # A call, a wait for a slot, and a margin (a claim whose wait ate into the call's
        # time is released unsent); also how long a crash delays what was claimed.
        lease=3 * settings.call_timeout + 5, call_timeout=settings.call_timeout)
    store.on_commit(worker.wake)

    async def ready() -> bool:
        return await runtime.ready() and worker.health.ok

    app = create_app(store, ready, runtime.credentials())
    running: list[asyncio.Task[None]] = []

    async def start_worker() -> None:
        running.append(asyncio.create_task(worker.run(), name="postback worker"))

    async def stop_worker() -> None:
        for task in running:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        await sender.close()
        await partners_log.stop()

    app.router.add_event_handler("startup", start_worker)
    app.router.add_event_handler("shutdown", stop_worker)
    app.state.postbacks = store
    return runtime, app, store.close


def main() -> None:
    run_service(PostbacksSettings, build)
