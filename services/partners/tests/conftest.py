"""One running partners service (real PostgreSQL and broker) per test module."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest
from partners_fixtures import ADMIN_TOKEN, TRACKING_URL, RunningPartners

from afflux_infra.embedded import free_port
from afflux_infra.testing import serving
from afflux_partners.entrypoints.main import build
from afflux_partners.settings import PartnersSettings


class SessionInfra(Protocol):
    """What this module needs of the session's ``infra`` fixture."""

    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def partners_service(infra: SessionInfra) -> AsyncIterator[RunningPartners]:
    settings = PartnersSettings(
        DATABASE_URL=infra.new_database(),
        KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap_servers,
        AFFLUX_ADMIN_TOKEN=ADMIN_TOKEN,
        AFFLUX_CONSUMER_GROUP_PREFIX=f"test-{secrets.token_hex(4)}",
        AFFLUX_TRACKING_URL=f"{TRACKING_URL}/",
        port=free_port(),
    )
    runtime, app, close = build(settings)
    try:
        async with serving(runtime, app) as base_url:
            yield RunningPartners(base_url, settings)
    finally:
        close()


@pytest.fixture(scope="module")
async def admin(partners_service: RunningPartners) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with the admin bearer token."""
    async with httpx.AsyncClient(
        base_url=partners_service.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as client:
        yield client
