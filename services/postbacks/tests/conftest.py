"""One running postbacks service per test module (consumer-group joins are slow), on a
database and consumer groups of its own, with a partner's receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from postbacks_fixtures import Receiver, RunningPostbacks, SessionInfra

from afflux_plumbing.publish import Publisher


@pytest.fixture(scope="module")
async def postbacks(infra: SessionInfra) -> AsyncIterator[RunningPostbacks]:
    """Loopback receivers allowed, quick retries (0.1 s doubling), two calls per host.
    Nothing is given up within a module's run: the fresh service also reads the shared
    broker's history, whose postbacks to earlier modules' (stopped) receivers on
    127.0.0.1 would, once given up, pause 127.0.0.1 for this module's receiver too (a
    slow machine made the module outlast a 20 s give-up)."""
    async with RunningPostbacks(
        infra.new_database(), infra.bootstrap_servers,
        AFFLUX_POSTBACKS_ALLOW_PRIVATE=True, AFFLUX_POSTBACKS_RETRY_FIRST=0.1,
        AFFLUX_POSTBACKS_RETRY_CAP=1.0, AFFLUX_POSTBACKS_GIVE_UP_AFTER=3600.0,
        AFFLUX_POSTBACKS_TIMEOUT=5.0, AFFLUX_POSTBACKS_PER_HOST=2,
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def log(infra: SessionInfra) -> AsyncIterator[Publisher]:
    """Publishes to the partners, tracking and attribution topics as those services would."""
    publisher = Publisher(infra.bootstrap_servers, client_id="postbacks-test")
    await publisher.start()
    yield publisher
    await publisher.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()
