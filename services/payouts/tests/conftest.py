"""One payouts service per test module: consumer-group joins cost seconds, so the
integration tests share a running service and keep apart by random partner ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import pytest
from payouts_fixtures import RunningPayouts

from afflux_infra.testing import broker_of_its_own
from afflux_payouts.adapters.store import PayoutsStore
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.publish import Publisher


class SessionInfra(Protocol):
    """What these fixtures use of the session's ``infra`` fixture (afflux_infra.testing)."""

    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@pytest.fixture(scope="module")
async def payouts(infra: SessionInfra) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), infra.bootstrap_servers) as service:
        yield service


@pytest.fixture(scope="module")
async def attribution_log(infra: SessionInfra) -> AsyncIterator[Publisher]:
    """Publishes to ``afflux.attribution.v1`` as the attribution service would."""
    publisher = Publisher(infra.bootstrap_servers, client_id="payouts-test")
    await publisher.start()
    yield publisher
    await publisher.stop()


@pytest.fixture(scope="module")
def ledger(payouts: RunningPayouts) -> Iterator[PayoutsStore]:
    """The running service's store, opened a second time to read what HTTP does not show."""
    store = open_store(PayoutsStore, payouts.database_url, "payouts")
    yield store
    store.close()


@pytest.fixture(scope="module")
def own_broker(infra: SessionInfra) -> Iterator[str]:
    """A broker of the module's own, for a module whose payouts service issues statements:
    they reach no other module's service (each counts the statements it folded to know it
    caught up with what it issued)."""
    with broker_of_its_own(infra) as servers:  # type: ignore[arg-type]
        yield servers


@pytest.fixture(scope="module")
async def own_log(own_broker: str) -> AsyncIterator[Publisher]:
    """Publishes the partners' and attribution's events on the module's own broker."""
    publisher = Publisher(own_broker, client_id="payouts-finance-test")
    await publisher.start()
    yield publisher
    await publisher.stop()

