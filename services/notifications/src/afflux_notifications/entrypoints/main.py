"""The notifications process: a consumer per topic it hears news on, the dead-letter
reader, the mail worker, the outbox relay, the embedded mail catcher (without
``AFFLUX_SMTP_URL``) and the HTTP API on one loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from contextlib import suppress
from datetime import timedelta
from typing import Any

from afflux_contracts import ALL_TOPICS
from afflux_notifications.adapters.catcher import MailCatcher
from afflux_notifications.adapters.dead_letters import DeadLetterReader
from afflux_notifications.adapters.lease import PostgresLease
from afflux_notifications.adapters.smtp import InvalidSmtpUrl, SmtpMailer, SmtpServer
from afflux_notifications.adapters.store import NotificationsStore
from afflux_notifications.adapters.templates import JinjaRenderer
from afflux_notifications.application.digests import digest_mails
from afflux_notifications.application.news import News
from afflux_notifications.application.published import to_envelope
from afflux_notifications.application.sending import MailWorker
from afflux_notifications.domain.delivery import RetryPolicy
from afflux_notifications.entrypoints.http import create_app
from afflux_notifications.settings import NotificationsSettings
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.outage import OUTAGES, Backoff
from afflux_plumbing.runs import Handlers
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Publication, Subscription, Wiring

DIGEST_LOOK_EVERY = 30.0
"""Seconds between looks for dead-letter digests that are due."""
NEWS = Subscription.per_topic(News)
"""A consumer per topic whose events the news handles (an awaited event's topic joins once
the event exists), each in its own group."""
WIRING = Wiring(NotificationsSettings.service_name, subscriptions=(*NEWS, STAFF_VIEW),
                publications=(Publication.of("relay", to_envelope.events),))
"""What notifications runs on the log: its news, the staff view, the relay of outcomes."""


def build(settings: NotificationsSettings) -> Built:
    """Wire the store, a consumer per topic whose events the news handles (an awaited
    event's topic joins once the event exists), the relay, the workers and the app. The
    workers (mail, dead letters, digests, the catcher) run with the app, started and
    stopped by its lifespan; the store is ``app.state.notifications``."""
    server = _smtp_server(settings)
    store = open_store(NotificationsStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings, WIRING)
    news = Handlers.of(News(store, settings.staff))
    for subscription in NEWS:
        runtime.consume(store, subscription, handlers=news)
    runtime.relay(store, to_envelope)
    catcher = MailCatcher(store, port=settings.catcher_port) if server is None else None
    mailer = SmtpMailer(server or SmtpServer("127.0.0.1", 0), settings.mail_from,
                        timeout=settings.smtp_timeout, ca_file=settings.smtp_ca_file)
    renderer = JinjaRenderer(program_name=settings.program_name, portal_url=settings.portal_url)
    policy = RetryPolicy(settings.retry_first, settings.retry_cap, settings.give_up_after)
    worker = MailWorker(store, renderer, mailer, PostgresLease(settings.database_url), policy,
                        domain=settings.mail_domain, concurrency=settings.concurrency)
    store.on_commit(worker.wake)
    counted = asyncio.Event()
    dead_letters = DeadLetterReader(store, [topic.dlq for topic in ALL_TOPICS],
                                    settings.kafka_bootstrap_servers,
                                    client_id=f"{settings.consumer_group}-dlq", on_counted=counted.set)
    every = timedelta(seconds=settings.digest_every)
    mails_for = digest_mails(settings.staff)

    async def digests() -> None:
        """A digest is looked for when dead letters were counted, and every half minute (a
        topic's period may have ended since)."""
        backoff = Backoff()
        while True:
            try:
                await asyncio.to_thread(store.take_due, every, mails_for)
                backoff.reset()
            except OUTAGES:
                await backoff.wait()
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(counted.wait(), DIGEST_LOOK_EVERY)
            counted.clear()

    async def ready() -> bool:
        return await runtime.ready() and worker.health.ok and dead_letters.ready

    app = create_app(store, ready, runtime.credentials(), catching=catcher is not None)
    running: list[asyncio.Task[None]] = []

    async def start_workers() -> None:
        if catcher is not None:
            await catcher.start()
            mailer.server = SmtpServer(catcher.host, catcher.port)
        work: list[Callable[[], Coroutine[Any, Any, None]]] = [worker.run, dead_letters.run, digests]
        running.extend(asyncio.create_task(job(), name=job.__qualname__) for job in work)

    async def stop_workers() -> None:
        for task in running:
            task.cancel()
        for task in running:
            with suppress(asyncio.CancelledError, Exception):
                await task
        await worker.lease.release()
        if catcher is not None:
            await catcher.stop()

    app.router.add_event_handler("startup", start_workers)
    app.router.add_event_handler("shutdown", stop_workers)
    app.state.notifications = store
    app.state.catcher = catcher
    return runtime, app, store.close


def _smtp_server(settings: NotificationsSettings) -> SmtpServer | None:
    """``AFFLUX_SMTP_URL`` parsed (None: catch locally); a bad one stops the service, saying why."""
    if settings.catching:
        return None
    try:
        return SmtpServer.parse(settings.smtp_url)
    except InvalidSmtpUrl as error:
        print(f"notifications: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def main() -> None:
    run_service(NotificationsSettings, build)
