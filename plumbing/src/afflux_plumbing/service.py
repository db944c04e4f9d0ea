"""One service process: its HTTP app and its background workers (consumers, relay)
on one event loop, started and stopped together.

A worker that fails for good (say, a consumer whose stored position is beyond
the log end) stops the process with a clear error instead of limping on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextlib import suppress
from typing import Any, TypeVar

import uvicorn
import uvloop
from fastapi import FastAPI

from afflux_plumbing.auth import Credentials
from afflux_plumbing.consume import TrackedConsumer
from afflux_plumbing.logs import configure_logging
from afflux_plumbing.publish import Publisher
from afflux_plumbing.relay import OutboxRelay, ToEnvelope
from afflux_plumbing.runs import Handlers
from afflux_plumbing.settings import ServiceSettings
from afflux_plumbing.staff_credentials import StaffCredentials, StaffView
from afflux_plumbing.store import TrackedApplication
from afflux_plumbing.tracing import configure_tracing

log = logging.getLogger(__name__)


class ServiceRuntime:
    """Owns a service's Kafka clients and background workers."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.publisher = Publisher(settings.kafka_bootstrap_servers, client_id=settings.consumer_group)
        self.consumers: list[TrackedConsumer] = []
        self.relays: list[OutboxRelay] = []
        self._started = False
        self._server: uvicorn.Server | None = None
        self._credentials: Credentials | None = None
        self.staff_view: StaffView | None = None
        """The staff view, once ``credentials`` was asked for: a worker of its own, not one
        of the service's ``consumers`` (which are its folds, replayed by its CLI)."""

    def consume(
        self, store: TrackedApplication, topics: Sequence[str], *,
        group: str, every_partition: bool = False, handlers: Handlers | None = None,
    ) -> TrackedConsumer:
        """Apply ``topics`` to ``store`` through ``handlers`` (default: the store's
        ``@handles`` methods). Each
        consumer of a service names its own ``group``, so that one waiting for a fact
        (``RetryLater``) never delays another's topics.
        ``every_partition``: a replica reading all partitions outside any group (see
        ``TrackedConsumer``)."""
        consumer = TrackedConsumer(
                store=store,
                topics=topics,
                handlers=handlers,
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                group_id=f"{self.settings.consumer_group}-{group}",
                dead_letters=self.publisher,
                retry_later_limit=self.settings.retry_later_limit,
                every_partition=every_partition,
            )
        self.consumers.append(consumer)
        return consumer

    def credentials(self) -> Credentials:
        """What the service's admin routes accept: the admin token, the service tokens of
        its settings, and the staff's sessions and API tokens, from a view of
        ``afflux.staff.v1`` kept in the service's schema by a replica consumer of every
        partition while the service is served (``staff_credentials``). Made once; every
        admin route shares it."""
        if self._credentials is None:
            staff = StaffCredentials()
            settings = self.settings
            self.staff_view = StaffView(
                staff, settings.database_url, settings.db_schema, settings.kafka_bootstrap_servers,
                f"{settings.consumer_group}-staff", self.publisher, settings.retry_later_limit)
            self._credentials = Credentials.of(self.settings, staff)
        return self._credentials

    def relay(self, app: TrackedApplication, to_envelope: ToEnvelope) -> None:
        self.relays.append(
            OutboxRelay(app, self.publisher, to_envelope, database_url=self.settings.database_url)
        )

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


