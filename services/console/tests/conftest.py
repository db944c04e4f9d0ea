"""One running console (real PostgreSQL and broker) per test module."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest
from console_fixtures import ADMIN_TOKEN, RunningConsole, bearer

from afflux_console.entrypoints.main import build
from afflux_console.settings import ConsoleSettings
from afflux_infra.embedded import free_port
from afflux_infra.testing import serving


class SessionInfra(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def console_service(infra: SessionInfra) -> AsyncIterator[RunningConsole]:
    settings = ConsoleSettings(
        DATABASE_URL=infra.new_database(),
        KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap_servers,
        AFFLUX_ADMIN_TOKEN=ADMIN_TOKEN,
        AFFLUX_CONSUMER_GROUP_PREFIX=f"test-{secrets.token_hex(4)}",
        AFFLUX_CONSOLE_SIGNIN_FAILURES=3,
        port=free_port(),
    )
    runtime, app, close = build(settings)
    try:
        async with serving(runtime, app) as base_url:
            yield RunningConsole(base_url, settings)
    finally:
        close()


@pytest.fixture(scope="module")
async def client(console_service: RunningConsole) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with httpx.AsyncClient(base_url=console_service.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def owner(console_service: RunningConsole) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the admin token: the bootstrap owner."""
    async with httpx.AsyncClient(
        base_url=console_service.base_url, headers=bearer(ADMIN_TOKEN), timeout=30
    ) as client:
        yield client
