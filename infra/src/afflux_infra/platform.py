"""The whole platform in one place: infrastructure (from the environment, or embedded, or
containers in tests) plus the five services as processes. ``make run`` and the
end-to-end tests are built from these same pieces."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from afflux_infra.embedded import EmbeddedBroker, EmbeddedPostgres
from afflux_infra.processes import DEFAULT_PORTS, RestartPolicy, ServiceProcess, Supervisor, exit_status
from afflux_infra.provision import REPLICATION_ENV, ensure_topics
from afflux_infra.scale import instance_env, instance_port
from afflux_plumbing.auth import service_token_entry

GATEWAY_SCOPES = ("partners.apply", "payouts.balance.read", "partners.applications.create",
                  "partner_users.credentials", "partner_users.write", "notifications.send",
                  "partners.profiles.write", "invoices.read")
"""What the gateway's own credential may do: apply for offers, read a partner's balance,
record a verified sign-up, check and set partner users' passwords, invite and remove them
for an owner, send the sign-up's verification mail, record a partner's own tax profile
and payment method, read a partner's invoices."""
PARTNERS_SCOPES = ("notifications.send",)
"""What the partners service's own credential may do: send invitations and reset links."""


@dataclass(frozen=True)
class Infrastructure:
    """Where PostgreSQL and the Kafka-API broker are, and what provided them."""

    database_url: str
    bootstrap_servers: str
    kind: str
    broker: EmbeddedBroker | None = field(default=None, compare=False, repr=False)
    """The broker started here, if any: the launcher watches it (its log is in memory)."""

    def check_broker(self) -> None:
        """Raise if the embedded broker has died: the log it held is gone with it, and
        services restarted against an empty log would stop on their stored positions."""
        process = self.broker.process if self.broker is not None else None
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the embedded broker exited with {exit_status(process.returncode)}; "
                               "the log it held in memory is gone: stopping the platform")


def docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


def start_infrastructure(stack: ExitStack, *, containers: bool = False,
                         broker_port: int = 0) -> Infrastructure:
    """``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when set; else testcontainers when
    ``containers`` and a Docker engine answers; else the embedded servers. Whatever is
    started is stopped when ``stack`` closes. The topics exist on return."""
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    kind = "environment"
    use_docker = containers and (database_url is None or bootstrap is None) and docker_answers()
    if database_url is None and use_docker:
        from testcontainers.postgres import PostgresContainer

        database_url = stack.enter_context(PostgresContainer("postgres:16", driver=None)).get_connection_url()
        kind = "testcontainers"
    elif database_url is None:
        postgres = EmbeddedPostgres().start()
        stack.callback(postgres.stop)
        database_url, kind = postgres.url, "embedded"
    if bootstrap is None:
        # A single broker of our own (a container has one too) can keep one replica:
        # say so for every provisioning in this process and the services it starts.
        os.environ.setdefault(REPLICATION_ENV, str(EmbeddedBroker.replication_factor))
    embedded: EmbeddedBroker | None = None
    if bootstrap is None and use_docker:
        from testcontainers.kafka import KafkaContainer

        bootstrap = stack.enter_context(KafkaContainer().with_kraft()).get_bootstrap_server()
    elif bootstrap is None:
        embedded = EmbeddedBroker(port=broker_port).start()
        stack.callback(embedded.stop)
        bootstrap = embedded.bootstrap_servers
    asyncio.run(ensure_topics(bootstrap))
    return Infrastructure(database_url=database_url, bootstrap_servers=bootstrap, kind=kind,
                          broker=embedded)


def new_profile_key() -> str:
    """A Fernet key: 32 random bytes, url-safe base64 (what ``Fernet.generate_key`` makes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Platform:
    """The five services, started against one infrastructure with one admin token."""

    infrastructure: Infrastructure
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    gateway_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """The gateway's service token (``AFFLUX_SERVICE_TOKENS`` lists its hash and scopes)."""
    partners_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """The partners service's token towards notifications (invitations, reset links)."""
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Signs the portal's session cookies (the gateway refuses to start without one)."""
    profile_keys: str = field(default_factory=lambda: os.environ.get("AFFLUX_PROFILE_KEYS")
                              or new_profile_key())
    """Seal partners' tax and payment details (``AFFLUX_PROFILE_KEYS``: Fernet keys). The
    environment's when set (a deployment keeps its keys across restarts), else one that
    lives as long as the platform."""
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    """How many processes of a service to run (1 when not named): see ``scale``."""
    extra_instances: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.infrastructure.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.infrastructure.bootstrap_servers,
            "AFFLUX_ADMIN_TOKEN": self.admin_token,
            "AFFLUX_TRACKING_URL": f"http://127.0.0.1:{self.ports['tracking']}",
            "AFFLUX_PARTNERS_URL": f"http://127.0.0.1:{self.ports['partners']}",
            "AFFLUX_PAYOUTS_URL": f"http://127.0.0.1:{self.ports.get('payouts', DEFAULT_PORTS['payouts'])}",
            "AFFLUX_NOTIFICATIONS_URL": self._url_of("notifications"),
            "AFFLUX_CONSOLE_URL": f"http://127.0.0.1:{self.ports.get('console', DEFAULT_PORTS['console'])}",
            # The console's pages read every service's API:
            "AFFLUX_ATTRIBUTION_URL": self._url_of("attribution"),
            "AFFLUX_GATEWAY_URL": self._url_of("gateway"),
            "AFFLUX_POSTBACKS_URL": self._url_of("postbacks"),
            "AFFLUX_SERVICE_TOKENS": " ".join((
                service_token_entry("gateway", self.gateway_token, GATEWAY_SCOPES),
                service_token_entry("partners", self.partners_token, PARTNERS_SCOPES))),
            "AFFLUX_GATEWAY_SERVICE_TOKEN": self.gateway_token,
            "AFFLUX_PARTNERS_SERVICE_TOKEN": self.partners_token,
            "AFFLUX_PORTAL_URL": f"{self._url_of('gateway')}/portal",
            "AFFLUX_GATEWAY_SESSION_SECRET": self.session_secret,
            "AFFLUX_PROFILE_KEYS": self.profile_keys,
            **self.extra_env,
        }

    def _url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.get(name, DEFAULT_PORTS[name])}"

    def service(self, name: str) -> ServiceProcess:
        """The service's process (not started)."""
        if name not in self.services:
            log_path = None if self.log_dir is None else self.log_dir / f"{name}.log"
            env = {**self.env(), **instance_env(name, 1, self.instances.get(name, 1))}
            self.services[name] = ServiceProcess(name, env, self.ports[name], log_path)
        return self.services[name]

    def another_instance(self, name: str, port: int, *, label: str = "2",
                         env: dict[str, str] | None = None) -> ServiceProcess:
        """One more process of service ``name`` (not started) on ``port``: the same database,
        broker and settings unless ``env`` overrides some (say, a scratch schema for a
        replay). It is not in ``services``: whoever starts it stops it. Its log is
        ``<name>-<label>.log`` beside the others'."""
        log_path = None if self.log_dir is None else self.log_dir / f"{name}-{label}.log"
        return ServiceProcess(name, {**self.env(), **(env or {})}, port, log_path)

    def start(self, timeout: float = 90.0, path: str = "/readyz") -> Platform:
        """Start every service (and its extra instances) at once, then wait for each to
        answer ``path``."""
        for name in self.ports:
            self.service(name).start()
            for number in range(2, self.instances.get(name, 1) + 1):
                self.add_instance(name, number).start()
        for process in self.every_process():
            process.wait_until(path, timeout)
        return self

    def add_instance(self, name: str, number: int | None = None, port: int | None = None) -> ServiceProcess:
        """One more instance of ``name`` (not started), kept with the platform's: on ``port``
        (default ``scale.instance_port``), env ``scale.instance_env`` (tracking: a schema
        of its own)."""
        extra = self.extra_instances.setdefault(name, [])
        number = number or len(extra) + 2
        count = max(self.instances.get(name, 1), number)
        process = self.another_instance(name, port or instance_port(self.ports[name], number),
                                        label=str(number), env=instance_env(name, number, count))
        extra.append(process)
        return process

    def instances_of(self, name: str) -> list[ServiceProcess]:
        """Every process of service ``name``: the first, then the extra ones."""
        return [self.service(name), *self.extra_instances.get(name, [])]

    def every_process(self) -> list[ServiceProcess]:
        return [process for name in self.ports for process in self.instances_of(name)]

    def url(self, name: str) -> str:
        return self.service(name).url

    def supervisor(self, say: Callable[[str], None], policy: RestartPolicy | None = None) -> Supervisor:
        """Restarts any of the platform's processes that dies (see ``Supervisor``)."""
        return Supervisor(self.every_process(), say, policy or RestartPolicy())

    def stop(self) -> None:
        processes = [*self.services.values(), *(p for extra in self.extra_instances.values() for p in extra)]
        for service in processes:
            if service.running:
                assert service.process is not None
                service.process.terminate()
        for service in processes:
            service.stop()
