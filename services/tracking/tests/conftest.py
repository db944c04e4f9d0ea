"""One running tracking service per test module (consumer-group joins are slow), on a
database and consumer group of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import pytest
from tracking_fixtures import PartnersLog, RunningTracking

from afflux_infra.testing import RunningService
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
    service = RunningService(TrackingSettings, build, infra.new_database(), infra.bootstrap_servers)
    publisher = Publisher(infra.bootstrap_servers, client_id="tracking-tests")
    await publisher.start()
    try:
        async with service, service.client() as client:
            store: TrackingStore = service.app.state.tracking
            yield RunningTracking(client, store, PartnersLog(publisher, store), infra.bootstrap_servers,
                                  service.app.state.routing)
    finally:
        await publisher.stop()
