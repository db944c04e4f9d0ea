"""One running attribution service per test module (consumer-group joins are slow), on
a database and consumer groups of its own; or the bare store, for store-level tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from attribution_fixtures import ADMIN_TOKEN, RunningAttribution

from afflux_attribution.adapters.postgres import AttributionStore
from afflux_attribution.application.attribution import Attribution
from afflux_attribution.entrypoints.main import build
from afflux_attribution.settings import AttributionSettings
from afflux_infra.embedded import free_port
from afflux_infra.testing import SessionInfrastructure, broker_of_its_own, serving
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
    settings = AttributionSettings(
        database_url=infra.new_database(),
        kafka_bootstrap_servers=module_broker,
        group_prefix=f"test-{secrets.token_hex(4)}",
        admin_token=ADMIN_TOKEN,
        port=free_port(),
    )
    runtime, app, close = build(settings)
    store: Attribution = app.state.attribution
    publisher = Publisher(module_broker, client_id="attribution-tests")
    await publisher.start()
    try:
        async with serving(runtime, app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            yield RunningAttribution(client, store, publisher, module_broker)
    finally:
        await publisher.stop()
        close()


@pytest.fixture
def store(database_url: str) -> Iterator[Attribution]:
    """The service's store alone, on a fresh database: for what the consumers apply."""
    app = open_store(AttributionStore, database_url, "attribution")
    yield app
    app.close()
