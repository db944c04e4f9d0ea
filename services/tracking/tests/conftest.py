"""One running tracking service per test module (consumer-group joins are slow), on a
database and consumer group of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest
from tracking_fixtures import PartnersLog, RunningTracking

from afflux_infra.embedded import free_port
from afflux_infra.testing import serving
from afflux_plumbing.publish import Publisher
from afflux_tracking.adapters.store import TrackingStore
from afflux_tracking.entrypoints.main import build
from afflux_tracking.settings import TrackingSettings


class SessionInfra(Protocol):
    """What this conftest uses of the infra plugin's session fixture."""

    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def tracking(infra: SessionInfra) -> AsyncIterator[RunningTracking]:
    settings = TrackingSettings(
        database_url=infra.new_database(),
        kafka_bootstrap_servers=infra.bootstrap_servers,
        group_prefix=f"test-{secrets.token_hex(4)}",
        port=free_port(),
    )
    runtime, app, close = build(settings)
    store: TrackingStore = app.state.tracking
    publisher = Publisher(infra.bootstrap_servers, client_id="tracking-tests")
    await publisher.start()
    try:
        async with serving(runtime, app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            yield RunningTracking(client, store, PartnersLog(publisher, store), infra.bootstrap_servers,
                                  app.state.routing)
    finally:
        await publisher.stop()
        close()
