"""One running partners service (real PostgreSQL and broker) per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest
from partners_fixtures import ADMIN_TOKEN, TRACKING_URL, RunningPartners


class SessionInfra(Protocol):
    """What this module needs of the session's ``infra`` fixture."""

    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def partners_service(infra: SessionInfra) -> AsyncIterator[RunningPartners]:
    async with RunningPartners(
        infra.new_database(), infra.bootstrap_servers, AFFLUX_TRACKING_URL=f"{TRACKING_URL}/"
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def admin(partners_service: RunningPartners) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with the admin bearer token."""
    async with partners_service.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client
