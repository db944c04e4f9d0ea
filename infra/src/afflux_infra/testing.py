"""Pytest plugin: real PostgreSQL and a real Kafka-API broker for every test tier.

One fixture chooses the infrastructure: ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``
when set; else testcontainers when a Docker engine answers; else the embedded
servers ``make run`` uses. Each test gets its own database and its own consumer
group prefix, so tests share a broker without seeing each other's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from psycopg import sql

from afflux_contracts import DecodeError, Envelope, Event, decode
from afflux_infra.embedded import EmbeddedBroker, free_port
from afflux_infra.platform import Infrastructure, start_infrastructure
from afflux_infra.provision import ensure_topics
from afflux_plumbing.service import Built, ServiceRuntime
from afflux_plumbing.settings import ServiceSettings

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)


@dataclass
class SessionInfrastructure:
    """The session's PostgreSQL server and broker; every test gets a database of its own."""

    server: Infrastructure
    databases: list[str] = field(default_factory=list)
    retired: queue.SimpleQueue[str | None] = field(default_factory=queue.SimpleQueue)
    _dropper: threading.Thread | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.server.bootstrap_servers

    def new_database(self) -> str:
        name = f"afflux_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.server.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return url_for_database(self.server.database_url, name)

    def retire(self, url: str) -> None:
        """Drop a database nobody uses any more, on a thread of its own while the tests go
        on: a drop takes ~75 ms, and a session makes hundreds of databases, which dropped
        all at its end kept the last worker of a CI run busy for a minute."""
        name = urlsplit(url).path.lstrip("/")
        self.databases.remove(name)
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_retired, name="drop-databases", daemon=True)
            self._dropper.start()
        self.retired.put(name)

    def _drop_retired(self) -> None:
        with psycopg.connect(self.server.database_url, autocommit=True) as conn:
            while (name := self.retired.get()) is not None:
                _drop(conn, name)

    def drop_databases(self) -> None:
        """Drop the session's databases: the retired ones' thread finishes its queue, then
        the rest go here."""
        if self._dropper is not None:
            self.retired.put(None)
            self._dropper.join()
        with psycopg.connect(self.server.database_url, autocommit=True) as conn:
            for name in self.databases:
                _drop(conn, name)


def _drop(conn: psycopg.Connection[Any], name: str) -> None:
    with suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def url_for_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def broker_of_its_own(infra: SessionInfrastructure) -> Iterator[str]:
    """A broker whose topics hold only what the caller publishes: a fresh platform or
    service reads every topic from offset 0, and on the session's shared broker it would
    first wade through every other test's records. With an external broker
    (KAFKA_BOOTSTRAP_SERVERS) the session's is shared anyway."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield infra.bootstrap_servers
        return
    broker = EmbeddedBroker().start()
    try:
        asyncio.run(ensure_topics(broker.bootstrap_servers, replication=broker.replication_factor))
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def infra() -> Iterator[SessionInfrastructure]:
    with ExitStack() as stack:
        infrastructure = SessionInfrastructure(start_infrastructure(stack, containers=True))
        yield infrastructure
        infrastructure.drop_databases()


@pytest.fixture
def database_url(infra: SessionInfrastructure) -> Iterator[str]:
    """A fresh, empty database for this test, dropped behind it (see ``retire``)."""
    url = infra.new_database()
    yield url
    infra.retire(url)


@pytest.fixture
def kafka_bootstrap(infra: SessionInfrastructure) -> str:
    return infra.bootstrap_servers


@pytest.fixture
def group_prefix() -> str:
    """A consumer-group prefix of this test's own, so its consumers start clean."""
    return f"test-{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def serving(runtime: ServiceRuntime, app: FastAPI, timeout: float = 60.0) -> AsyncIterator[str]:
    """Run a service (HTTP on its settings' port, plus its consumers and relay) inside
    the test's event loop; yield its base URL once /readyz answers 200."""
    task = asyncio.create_task(runtime.serve(app))
    base_url = runtime.settings.base_url
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                if task.done():
                    raise RuntimeError(f"service stopped while starting: {task.result()}")
                with suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"service at {base_url} not ready after {timeout}s")
                await asyncio.sleep(0.05)
        yield base_url
    finally:
        runtime.request_exit()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=30)


class RunningService(Generic[S]):
    """A service built as its ``main`` builds it (``build(settings)``), served in the test's
    event loop (``serving``) on the database, broker and consumer groups the test names.

    Every test tier wants the same thing of it: its URL, HTTP from the loop and from a
    thread, and a stop and a start again on the same database (a restart). So the settings
    are made at each start, on a free port unless the test names one: between a stop and a
    start a test may change what the next build reads (a new ``group_prefix``, an
    environment variable). A subclass adds only what is its service's own: its defaults
    (tokens, intervals), its credential in ``headers``, its reading helpers.

    The service runs on the test's loop: a blocking call there would stall it, so ``get``
    is for threads (``eventually``, ``asyncio.to_thread``) and ``fetch``/``client`` for
    the loop."""

    headers: ClassVar[Mapping[str, str]] = {}
    """What the HTTP helpers send unless a call names its own (a subclass's credential)."""

    def __init__(
        self, settings_type: type[S], main: Callable[[S], Built], database_url: str, kafka_bootstrap: str,
        group_prefix: str = "", **settings: Any,
    ) -> None:
        self.settings_type, self.main = settings_type, main
        self.database_url, self.kafka_bootstrap = database_url, kafka_bootstrap
        self.group_prefix = group_prefix or f"test-{secrets.token_hex(4)}"
        """Read at each start: a test may give a restarted service new consumer groups."""
        self.overrides = settings
        """The test's settings (aliases, e.g. ``AFFLUX_ADMIN_TOKEN``), over the defaults."""
        self.base_url = ""
        self._served: tuple[S, FastAPI] | None = None
        self._stack: AsyncExitStack | None = None

    def configured(self) -> S:
        """The settings of the next start: the test's database, broker and groups, a free port."""
        return self.settings_type(**{
            "DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "AFFLUX_CONSUMER_GROUP_PREFIX": self.group_prefix, "port": free_port(), **self.overrides,
        })

    async def start(self) -> Self:
        """Build the service and serve it; back once /readyz answers. After ``stop``: a restart."""
        settings = self.configured()
        async with AsyncExitStack() as stack:
            runtime, app, close = self.main(settings)
            stack.callback(close)
            self.base_url = await stack.enter_async_context(serving(runtime, app))
            self._stack = stack.pop_all()
        self._served = settings, app
        return self

    async def stop(self) -> None:
        """Stop serving and close the stores (a no-op when stopped)."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def settings(self) -> S:
        """What the service was last started with."""
        return self._started()[0]

    @property
    def app(self) -> FastAPI:
        """The app last served (its ``state`` holds the stores ``build`` wired)."""
        return self._started()[1]

    def _started(self) -> tuple[S, FastAPI]:
        if self._served is None:
            raise RuntimeError(f"{type(self).__name__} was never started")
        return self._served

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A client of the service for the test's loop (``headers`` unless given others)."""
        kwargs.setdefault("headers", self.headers)
        kwargs.setdefault("timeout", 10)
        return httpx.AsyncClient(base_url=self.base_url, **kwargs)

    async def fetch(
        self, path: str, *, headers: Mapping[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        """A GET from the test's loop (``headers`` unless given others: ``{}`` sends none)."""
        async with self.client(headers=self.headers if headers is None else headers) as client:
            return await client.get(path, params=params)

    def get(self, path: str, *, headers: Mapping[str, str] | None = None, **params: Any) -> httpx.Response:
        """A blocking GET: only from a thread, never on the loop the service runs on."""
        return httpx.get(f"{self.base_url}{path}", params=params, timeout=10,
                         headers=self.headers if headers is None else headers)

    def get_json(self, path: str, **params: Any) -> dict[str, Any]:
        """A blocking GET that must answer 200: its body (from a thread, as ``get``)."""
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def eventually(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll ``check`` (sync, run in a thread) until it returns a truthy value; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def read_topic(
    bootstrap_servers: str, topic: str, partitions: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` from offset 0 up to now, across its partitions.

    Done means: at or past the reported end offsets *and* two polls in a row found
    nothing, because some brokers (Tansu 0.x) report an end offset short of the last
    records of a multi-record batch."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[ConsumerRecord[bytes, bytes]] = []
        idle_polls = 0
        while idle_polls < 2 or [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            idle_polls = 0 if batch else idle_polls + 1
            for tp_records in batch.values():
                records.extend(tp_records)
        return records
    finally:
        await consumer.stop()


async def read_envelopes(
    bootstrap_servers: str, topic: str, partitions: int
) -> list[tuple[ConsumerRecord[bytes, bytes], Envelope[Event]]]:
    """Every decodable record on ``topic`` (as ``read_topic``), with its envelope.

    Tests share one broker, and some put undecodable bytes on a topic on purpose (to
    prove they are dead-lettered); a test reading the log for its own events skips them
    rather than failing on another test's garbage."""
    found = []
    for record in await read_topic(bootstrap_servers, topic, partitions):
        with suppress(DecodeError):
            found.append((record, decode(record.value)))
    return found
