"""A broker that stops answering (SIGSTOP) under click load: tracking answers 503 within its
publish timeout and never redirects a click that is not on the log; once the broker
resumes (SIGCONT), clicks redirect again, and every redirected click is on the log.

The design's choice (ARCHITECTURE.md, Delivery): no local spool. A spool would have to
be replicated to be as durable as acks=all, and a visitor retries a 503 in a second.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tracking_fixtures import PartnersLog, approval, fresh_id, offer_created, partner_created

from afflux_contracts import TRACKING, ClickRecorded
from afflux_infra.embedded import EmbeddedBroker
from afflux_infra.provision import ensure_topics
from afflux_infra.testing import RunningService, SessionInfrastructure, read_envelopes
from afflux_plumbing.publish import Publisher
from afflux_tracking.entrypoints.main import build
from afflux_tracking.settings import TrackingSettings

pytestmark = pytest.mark.slow

PUBLISH_TIMEOUT = 1.0
WORKERS = 8
PAUSE_SECONDS = 5.0
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}


@dataclass(frozen=True)
class Answer:
    started: float
    seconds: float
    status: int
    transaction_id: str | None


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: pausing the session's would stall every other test."""
    running = EmbeddedBroker().start()
    try:
        asyncio.run(ensure_topics(running.bootstrap_servers, replication=running.replication_factor))
        yield running
    finally:
        if running.process is not None:
            os.kill(running.process.pid, signal.SIGCONT)
        running.stop()


async def click_until(client: httpx.AsyncClient, link: str, stop: asyncio.Event,
                      answers: list[Answer]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await client.get(link)
        except httpx.TransportError:
            continue
        answers.append(Answer(started, time.monotonic() - started, response.status_code,
                              response.headers.get("x-afflux-transaction-id")))


async def test_clicks_during_a_broker_pause_are_503_and_every_redirect_is_on_the_log(
    infra: SessionInfrastructure, broker: EmbeddedBroker,
) -> None:
    tracking = RunningService(TrackingSettings, build, infra.new_database(), broker.bootstrap_servers,
                              f"outage-{secrets.token_hex(4)}", publish_timeout=PUBLISH_TIMEOUT)
    publisher = Publisher(broker.bootstrap_servers, client_id="outage-test")
    await publisher.start()
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    answers: list[Answer] = []
    try:
        async with tracking, httpx.AsyncClient(timeout=30, headers=BROWSER) as client:
            await PartnersLog(publisher, tracking.app.state.tracking).publish(
                offer_created(offer_id, "https://shop.example/?t={transaction_id}"),
                partner_created(partner_id), approval(offer_id, partner_id))
            link = f"{tracking.base_url}/c/{offer_id}/{partner_id}"
            stop = asyncio.Event()
            load = [asyncio.create_task(click_until(client, link, stop, answers)) for _ in range(WORKERS)]
            await asyncio.sleep(2.0)
            assert broker.process is not None
            os.kill(broker.process.pid, signal.SIGSTOP)
            paused_at = time.monotonic()
            await asyncio.sleep(PAUSE_SECONDS)
            os.kill(broker.process.pid, signal.SIGCONT)
            resumed_at = time.monotonic()
            await asyncio.sleep(6.0)
            stop.set()
            await asyncio.gather(*load)
    finally:
        await publisher.stop()

    redirected = [a for a in answers if a.status == 302]
    refused = [a for a in answers if a.status == 503]
    assert {a.status for a in answers} <= {302, 503}, {a.status for a in answers}
    assert refused, "no click was refused while the broker was paused"
    # bounded by the publish timeout, not the client's 30 s (slack for a machine busy with other tests)
    assert all(a.seconds < PUBLISH_TIMEOUT + 4.0 for a in refused), max(a.seconds for a in refused)
    assert any(a.started > resumed_at + 1.0 for a in redirected), "clicks did not recover after SIGCONT"
    assert not any(paused_at + 0.5 < a.started and a.started + a.seconds < resumed_at for a in redirected)

    records = await read_envelopes(broker.bootstrap_servers, TRACKING.name, TRACKING.partitions)
    on_log = {e.payload.transaction_id for _, e in records if isinstance(e.payload, ClickRecorded)}
    missing = {a.transaction_id for a in redirected} - on_log
    assert not missing, f"{len(missing)} redirected clicks are not on the log"
    print(f"\nbroker paused {PAUSE_SECONDS:.0f}s under {WORKERS} clicking workers: {len(redirected)} "
          f"redirected (all on the log), {len(refused)} answered 503 "
          f"(slowest {max(a.seconds for a in refused):.2f}s)")
