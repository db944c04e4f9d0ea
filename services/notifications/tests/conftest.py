"""The log's publisher for the notifications tests (each test module starts the service
it needs: consumer-group joins are slow, so a module shares one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from notifications_fixtures import SessionInfra

from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
async def log(infra: SessionInfra) -> AsyncIterator[Publisher]:
    """Publishes as the partners and payouts services would."""
    publisher = Publisher(infra.bootstrap_servers, client_id="notifications-test")
    await publisher.start()
    yield publisher
    await publisher.stop()
