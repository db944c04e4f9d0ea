"""One running gateway per test module (consumer-group joins are slow), on a database and
consumer groups of its own, and a publisher standing in for the other services."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from gateway_fixtures import RunningGateway, SessionInfra

from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
async def gateway(infra: SessionInfra) -> AsyncIterator[RunningGateway]:
    """Failures are throttled only past 500 a minute here: the tests poll with keys not applied yet."""
    service = RunningGateway(
        infra.new_database(),
        infra.bootstrap_servers,
        f"test-{secrets.token_hex(4)}",
        AFFLUX_GATEWAY_FAILURE_LIMIT=500,
    )
    await service.start()
    yield service
    await service.stop()


@pytest.fixture(scope="module")
async def log(infra: SessionInfra) -> AsyncIterator[Publisher]:
    publisher = Publisher(infra.bootstrap_servers, client_id="gateway-test")
    await publisher.start()
    yield publisher
    await publisher.stop()
