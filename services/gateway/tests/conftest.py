"""One running gateway per test module (consumer-group joins are slow), on a database,
consumer groups and broker of its own, beside the real payouts service (whose ledger is
the partner's balance), and a publisher standing in for the other services.

A broker of its own: the gateway reads every topic from offset 0, and on the session's
shared broker it would first wade through every other test's records (and conversions
whose clicks it never sees would wait for the tracking log each time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from gateway_fixtures import RunningGateway, RunningPayouts, SessionInfra

from afflux_infra.testing import broker_of_its_own
from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
def gateway_broker(infra: SessionInfra) -> Iterator[str]:
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
async def payouts(infra: SessionInfra, gateway_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), gateway_broker) as service:
        yield service


@pytest.fixture(scope="module")
async def gateway(
    infra: SessionInfra, gateway_broker: str, payouts: RunningPayouts
) -> AsyncIterator[RunningGateway]:
    """Failures are throttled only past 500 a minute here: the tests poll with keys not applied yet."""
    async with RunningGateway(
        infra.new_database(), gateway_broker,
        AFFLUX_GATEWAY_FAILURE_LIMIT=500, AFFLUX_PAYOUTS_URL=payouts.base_url,
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def log(gateway_broker: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(gateway_broker, client_id="gateway-test")
    await publisher.start()
    yield publisher
    await publisher.stop()
