"""One running attribution service per test module (consumer-group joins are slow), on
a database and consumer groups of its own; or the bare store, for store-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from attribution_fixtures import ADMIN_TOKEN, RunningAttribution

from afflux_attribution.adapters.postgres import AttributionStore
from afflux_attribution.application.attribution import Attribution
from afflux_attribution.entrypoints.main import build
from afflux_attribution.settings import AttributionSettings
from afflux_infra.testing import RunningService, SessionInfrastructure, broker_of_its_own
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
def module_broker(infra: SessionInfrastructure) -> Iterator[str]:
    """A broker of the module's own: a new service reads every topic from offset 0, and on
    the session's broker it would wade through every earlier module's records first (a
    conversion of theirs waiting for its click holds a partition for minutes)."""
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
async def attribution(infra: SessionInfrastructure, module_broker: str) -> AsyncIterator[RunningAttribution]:
    service = RunningService(AttributionSettings, build, infra.new_database(), module_broker,
                             AFFLUX_ADMIN_TOKEN=ADMIN_TOKEN)
    publisher = Publisher(module_broker, client_id="attribution-tests")
    await publisher.start()
    try:
        async with service, service.client() as client:
            yield RunningAttribution(client, service.app.state.attribution, publisher, module_broker)
    finally:
        await publisher.stop()


@pytest.fixture
def store(database_url: str) -> Iterator[Attribution]:
    """The service's store alone, on a fresh database: for what the consumers apply."""
    app = open_store(AttributionStore, database_url, "attribution")
    yield app
    app.close()
