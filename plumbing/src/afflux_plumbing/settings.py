"""Service configuration, read once from the environment at process start."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from afflux_plumbing.http_proxies import TrustedProxies

GROUP_SESSION_MS = 4000
"""How long the group coordinator waits for a member's heartbeat (sent every quarter of
it) before it gives the member's partitions to the others. It also sets how long a
joining member waits: Tansu holds a JoinGroup for half the session (measured: 10 s, the
client's default, made every consumer wait 5 s for its first partitions, 4 s waits 2 s),
so it bounds both a service's start and the recovery after a kill -9 of an instance.
Heartbeats run on the event loop, whose blocking work (the database) is on threads."""


class ServiceSettings(BaseSettings):
    """What every Afflux service needs: where PostgreSQL and Kafka are, who is admin,
    and where to listen.

    A subclass names the service and declares ``port`` and ``db_schema`` with its own
    ``AFFLUX_<SERVICE>_PORT`` / ``AFFLUX_<SERVICE>_SCHEMA`` aliases.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: ClassVar[str]

    database_url: str = Field(validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    admin_token: str = Field(default="", validation_alias="AFFLUX_ADMIN_TOKEN")
    service_tokens: str = Field(default="", validation_alias="AFFLUX_SERVICE_TOKENS")
    """Other services' tokens this one accepts on its admin routes, each limited to named
    scopes: ``name:sha256:scope,scope ...`` (see ``afflux_plumbing.auth``)."""
    host: str = Field(default="127.0.0.1", validation_alias="AFFLUX_HOST")
    group_prefix: str = Field(default="afflux", validation_alias="AFFLUX_CONSUMER_GROUP_PREFIX")
    retry_later_limit: float = Field(default=300.0, validation_alias="AFFLUX_RETRY_LATER_LIMIT")
    """Seconds a record may wait for a fact (``RetryLater``) before it goes to the DLQ."""
    group_session_ms: int = Field(default=GROUP_SESSION_MS, ge=1000,
                                  validation_alias="AFFLUX_GROUP_SESSION_MS")
    """The consumer groups' session (``GROUP_SESSION_MS``): lower moves a dead
    instance's partitions sooner; raise it where a member's heartbeats may stall longer."""
    trusted_proxies: str = Field(default="", validation_alias="AFFLUX_TRUSTED_PROXIES")
    """Load balancers and proxies (IPs or CIDRs) whose forwarding header names the client
    (``http_proxies``); empty: every client is its TCP peer."""
    trusted_proxy_header: str = Field(default="x-forwarded-for",
                                      validation_alias="AFFLUX_TRUSTED_PROXY_HEADER")
    """The one header those proxies write: ``x-forwarded-for`` or ``forwarded``."""
    port: int
    db_schema: str

    @model_validator(mode="after")
    def _proxies_parse(self) -> ServiceSettings:
        self.proxies  # noqa: B018 - a bad CIDR stops the service at start, naming it
        return self

    @property
    def proxies(self) -> TrustedProxies:
        """The trusted proxies, what ``http.client_address`` takes: parsed at each call, so
        take it once when wiring the service."""
        return TrustedProxies.parse(self.trusted_proxies, self.trusted_proxy_header)

    @property
    def consumer_group(self) -> str:
        return f"{self.group_prefix}-{self.service_name}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
