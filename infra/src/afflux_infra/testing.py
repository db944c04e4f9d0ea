"""Pytest plugin: real PostgreSQL and a real Kafka-API broker for every test tier.

One fixture chooses the infrastructure: ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``
when set; else testcontainers when a Docker engine answers; else the embedded
servers ``make run`` uses. Each test gets its own database and its own consumer
group prefix, so tests share a broker without seeing each other's state.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from afflux_infra.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from afflux_infra.provision import ensure_topics


@dataclass
class Infrastructure:
    """Where the test PostgreSQL server and Kafka broker are."""

    server_url: str
    bootstrap_servers: str
    kind: str
    databases: list[str] = field(default_factory=list)

    def new_database(self) -> str:
        name = f"afflux_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return url_for_database(self.server_url, name)

    def drop_databases(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.databases:
                with suppress(psycopg.Error):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)))


def url_for_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def _start_infrastructure(stack: ExitStack) -> Infrastructure:
    server_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    kind = "environment"
    docker = (server_url is None or bootstrap is None) and _docker_answers()
    if server_url is None and docker:
        from testcontainers.postgres import PostgresContainer

        container = stack.enter_context(PostgresContainer("postgres:16", driver=None))
        server_url, kind = container.get_connection_url(), "testcontainers"
    elif server_url is None:
        embedded_pg = EmbeddedPostgres().start()
        stack.callback(embedded_pg.stop)
        server_url, kind = embedded_pg.url, "embedded"
    if bootstrap is None and docker:
        from testcontainers.kafka import KafkaContainer

        kafka = stack.enter_context(KafkaContainer().with_kraft())
        bootstrap = kafka.get_bootstrap_server()
    elif bootstrap is None:
        broker = EmbeddedBroker().start()
        stack.callback(broker.stop)
        bootstrap = broker.bootstrap_servers
    asyncio.run(ensure_topics(bootstrap))
    return Infrastructure(server_url=server_url, bootstrap_servers=bootstrap, kind=kind)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    with ExitStack() as stack:
        infrastructure = _start_infrastructure(stack)
        yield infrastructure
        infrastructure.drop_databases()


@pytest.fixture
def database_url(infra: Infrastructure) -> str:
    """A fresh, empty database for this test."""
    return infra.new_database()


@pytest.fixture
def kafka_bootstrap(infra: Infrastructure) -> str:
    return infra.bootstrap_servers


@pytest.fixture
def group_prefix() -> str:
    """A consumer-group prefix of this test's own, so its consumers start clean."""
    return f"test-{secrets.token_hex(4)}"


@dataclass
class ServiceProcess:
    """One Afflux service running as its own OS process, as in production."""

    module: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        port_key = f"AFFLUX_{self.module.removeprefix('afflux_').upper()}_PORT"
        env = {**os.environ, **self.env, port_key: str(self.port)}
        self.log_path = self.log_path or f"/tmp/{self.module}-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.process.returncode}:\n{self.logs()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        if self.log_path is None or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as log:
            return log.read()[-4000:]

    def kill9(self) -> None:
        """Crash it: no shutdown hooks, no flushing, like a power cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
