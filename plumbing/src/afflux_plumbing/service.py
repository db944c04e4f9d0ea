"""One service process: its HTTP app and its background workers (consumers, relay)
on one event loop, started and stopped together.

A worker that fails for good (say, a consumer whose stored position is beyond
the log end) stops the process with a clear error instead of limping on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any, TypeVar

import uvicorn
import uvloop
from fastapi import FastAPI

from afflux_plumbing.auth import Credentials
from afflux_plumbing.consume import TrackedConsumer
from afflux_plumbing.logs import configure_logging
from afflux_plumbing.publish import Publisher
from afflux_plumbing.relay import OutboxRelay, Publishing
from afflux_plumbing.runs import Handlers
from afflux_plumbing.settings import ServiceSettings
from afflux_plumbing.staff_credentials import STAFF_VIEW, StaffCredentials, StaffView
from afflux_plumbing.store import TrackedApplication
from afflux_plumbing.tracing import configure_tracing
from afflux_plumbing.wiring import DeclaredProducer, Publication, Subscription, Undeclared, Wiring

log = logging.getLogger(__name__)
C = TypeVar("C", bound=TrackedConsumer)


class ServiceRuntime:
    """Owns a service's Kafka clients and background workers."""

    def __init__(self, settings: ServiceSettings, wiring: Wiring) -> None:
        """``wiring``: what the service declares it consumes and publishes; the runtime
        runs only that, and all of it (``wiring.Undeclared`` otherwise)."""
        if wiring.service != settings.service_name:
            raise Undeclared(f"{settings.service_name} is wired as {wiring.service!r}")
        self.settings = settings
        self.wiring = wiring
        self._wired: set[Subscription | Publication] = set()
        self.publisher = Publisher(settings.kafka_bootstrap_servers, client_id=settings.consumer_group)
        self.consumers: list[TrackedConsumer] = []
        self.relays: list[OutboxRelay] = []
        self._started = False
        self._server: uvicorn.Server | None = None
        self._credentials: Credentials | None = None
        self.staff_view: StaffView | None = None
        """The staff view, once ``credentials`` was asked for: a worker of its own, not one
        of the service's ``consumers`` (which are its folds, replayed by its CLI)."""

    def consume(self, store: TrackedApplication, subscription: Subscription, *,
                handlers: Handlers | None = None) -> TrackedConsumer:
        """Apply ``subscription``'s topics to ``store`` through ``handlers`` (default: the
        store's ``@handles`` methods), which must take exactly the events it declares.
        Each consumer of a service names its own group, so that one waiting for a fact
        (``RetryLater``) never delays another's topics."""
        return self.consume_with(TrackedConsumer, store, subscription, handlers=handlers)

    def consume_with(self, kind: Callable[..., C], store: TrackedApplication, subscription: Subscription,
                     *, handlers: Handlers | None = None, **extra: Any) -> C:
        """``consume`` with a ``TrackedConsumer`` subclass ``kind`` taking ``extra``
        arguments besides the plumbing's."""
        self.wiring.declares(subscription)
        handlers = handlers if handlers is not None else store.handlers
        subscription.check(handlers)
        consumer = kind(
            store=store,
            topics=subscription.topic_names,
            handlers=handlers,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"{self.settings.consumer_group}-{subscription.group}",
            dead_letters=self.publisher,
            retry_later_limit=self.settings.retry_later_limit,
            every_partition=subscription.every_partition,
            session_timeout_ms=self.settings.group_session_ms,
            **extra,
        )
        self.consumers.append(consumer)
        self._wired.add(subscription)
        return consumer

    def credentials(self) -> Credentials:
        """What the service's admin routes accept: the admin token, the service tokens of
        its settings, and the staff's sessions and API tokens, from a view of
        ``afflux.staff.v1`` kept in the service's schema by a replica consumer of every
        partition while the service is served (``staff_credentials``). Made once; every
        admin route shares it."""
        if self._credentials is None:
            self.wiring.declares(STAFF_VIEW)
            self._wired.add(STAFF_VIEW)
            staff = StaffCredentials()
            settings = self.settings
            self.staff_view = StaffView(
                staff, settings.database_url, settings.db_schema, settings.kafka_bootstrap_servers,
                f"{settings.consumer_group}-{STAFF_VIEW.group}", self.publisher, settings.retry_later_limit)
            self._credentials = Credentials.of(self.settings, staff)
        return self._credentials

    def relay(self, app: TrackedApplication, to_envelope: Publishing) -> None:
        """Publish ``app``'s stored events through ``to_envelope``: the wiring's ``relay``
        publication, whose events are the translations' (``Publishing.events``)."""
        publication = self.wiring.publication("relay")
        if publication.events != to_envelope.events:
            raise Undeclared(f"{self.wiring.service}'s relay publishes other events than its wiring declares")
        self._wired.add(publication)
        self.relays.append(
            OutboxRelay(app, self.publisher, to_envelope, database_url=self.settings.database_url)
        )

    def producer(self, name: str) -> DeclaredProducer:
        """The service's publisher for the wiring's publication ``name`` (a producer of its
        own, beside the relay): it refuses an event the publication does not declare."""
        publication = self.wiring.publication(name)
        self._wired.add(publication)
        return DeclaredProducer(self.publisher, publication)

    def _check_wired(self) -> None:
        """Everything the wiring declares runs: the document shows nothing that does not."""
        declared: set[Subscription | Publication] = {*self.wiring.subscriptions, *self.wiring.publications}
        if idle := declared - self._wired:
            names = ", ".join(sorted(declaration.label for declaration in idle))
            raise Undeclared(f"{self.wiring.service} declares {names} but does not run it")

    def request_exit(self) -> None:
        """Ask a running ``serve`` to stop as if signalled (used by in-process tests)."""
        if self._server is not None:
            self._server.should_exit = True

    async def ready(self) -> bool:
        """Started, every consumer assigned, and no worker failing to reach the broker or
        the database (they retry meanwhile: an outage makes a service not-ready, not dead)."""
        return (self._started and all(consumer.ready for consumer in self.consumers)
                and all(relay.health.ok for relay in self.relays)
                and (self.staff_view is None or self.staff_view.ready))

    def _workers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        views = [self.staff_view.run] if self.staff_view is not None else []
        return [c.run for c in self.consumers] + [r.run for r in self.relays] + views

    async def serve(self, app: FastAPI, on_stop: Callable[[], Any] | None = None) -> int:
        """Run HTTP and workers until a signal or a worker failure; return the exit code."""
        self._check_wired()
        await self.publisher.start()
        server = uvicorn.Server(
            uvicorn.Config(app, host=self.settings.host, port=self.settings.port,
                           log_level="warning", access_log=False, lifespan="on",
                           # The client's address is http_proxies' rule (AFFLUX_TRUSTED_PROXIES);
                           # uvicorn's would believe X-Forwarded-For from any local caller.
                           proxy_headers=False)
        )
        self._server = server
        tasks = [asyncio.create_task(work(), name=getattr(work, "__qualname__", "worker"))
                 for work in self._workers()]
        self._started = True
        failure: list[BaseException] = []

        def stop_on_failure(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                failure.append(task.exception())  # type: ignore[arg-type]
                log.error("%s stopped: %s", task.get_name(), task.exception())
                server.should_exit = True

        for task in tasks:
            task.add_done_callback(stop_on_failure)
        try:
            await server.serve()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
            await self.publisher.stop()
            if on_stop is not None:
                on_stop()
        if failure:
            print(f"{self.settings.service_name}: {failure[0]}", file=sys.stderr)
            return 1
        return 0


Built = tuple[ServiceRuntime, FastAPI, Callable[[], Any]]
"""What a service's ``build(settings)`` returns: its runtime, its HTTP app, and what to
close when it stops (its stores)."""

S = TypeVar("S", bound=ServiceSettings)


def run_service(settings_type: type[S], build: Callable[[S], Built]) -> None:
    """The body of every service's ``main``: settings from the environment, build, serve
    until SIGINT/SIGTERM or a worker failure, exit with its code."""
    configure_logging(settings_type.service_name)
    configure_tracing(settings_type.service_name)
    settings = settings_type()

    async def serve() -> int:
        # Kafka clients bind to the running loop when created, so build inside it.
        runtime, app, close = build(settings)
        return await runtime.serve(app, on_stop=close)

    # uvloop, as uvicorn itself would pick: this loop is created here, not by uvicorn.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        code = runner.run(serve())
    sys.exit(code)


