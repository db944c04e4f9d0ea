"""One running console (real PostgreSQL and broker) per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest
from console_fixtures import ADMIN_TOKEN, RunningConsole, bearer


class SessionInfra(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def console_service(infra: SessionInfra) -> AsyncIterator[RunningConsole]:
    async with RunningConsole(
        infra.new_database(), infra.bootstrap_servers, AFFLUX_CONSOLE_SIGNIN_FAILURES=3
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def client(console_service: RunningConsole) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with console_service.client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def owner(console_service: RunningConsole) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the admin token: the bootstrap owner."""
    async with console_service.client(headers=bearer(ADMIN_TOKEN), timeout=30) as client:
        yield client
