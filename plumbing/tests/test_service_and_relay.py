"""The service runtime (HTTP + workers on one loop) and the outbox relay, against the
real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar
from uuid import UUID

import httpx
import pytest
from psycopg import sql
from tally import Note, Tally, partner_created

from afflux_contracts import PARTNERS, Envelope, Event, PartnerCreated, Topic, derived_event_id
from afflux_infra.embedded import free_port
from afflux_infra.testing import eventually, read_envelopes, serving
from afflux_plumbing.http import service_app
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.relay import RELAY_TRACKING_NAME, OutboxRelay
from afflux_plumbing.service import ServiceRuntime
from afflux_plumbing.settings import ServiceSettings
from afflux_plumbing.store import Changes
from afflux_plumbing.wiring import Subscription, Wiring


class TallySettings(ServiceSettings):
    service_name: ClassVar[str] = "tally"
    port: int = 0
    db_schema: str = "tally"


def note_to_envelope(domain_event: Any) -> Envelope[PartnerCreated]:
    """Stored event → envelope, with an event_id derived from the stored event, so a
    re-send carries the same id."""
    event_id = derived_event_id(domain_event.timestamp, str(domain_event.originator_id),
                                str(domain_event.originator_version))
    return partner_created(domain_event.text, event_id=event_id)


async def read_events(bootstrap: str, wanted: set[UUID]) -> list[Envelope[Event]]:
    """Every envelope on the partners topic whose event_id is in ``wanted``."""
    envelopes = await read_envelopes(bootstrap, PARTNERS.name, PARTNERS.partitions)
    return [e for _, e in envelopes if e.event_id in wanted]


async def test_relay_publishes_committed_events_and_resends_them_with_the_same_ids_after_a_crash(
    tally: Tally, kafka_bootstrap: str, database_url: str, publisher: Publisher,
) -> None:
    tally.apply(Changes(aggregates=[Note("ann"), Note("bob")]), Position("seed", 0, 0), None)
    relay = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url)

    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0  # how far it got is recorded: nothing re-sent
    # A crash after the broker's ack but before the position was recorded:
    recorder = tally.tracked_recorder
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(
            sql.SQL("DELETE FROM {} WHERE application_name = %s").format(
                sql.Identifier(tally.schema, recorder.tracking_table_name.split(".")[-1])),
            (RELAY_TRACKING_NAME,),
        )
    assert await relay.relay_once() == 2

    stored = [note_to_envelope(tally.mapper.to_domain_event(n))
              for n in recorder.select_notifications(None, 10)]
    published = await read_events(kafka_bootstrap, {e.event_id for e in stored})
    assert sorted(e.payload.name for e in published) == ["ann", "ann", "bob", "bob"]  # type: ignore[attr-defined]
    assert {e.event_id for e in published} == {e.event_id for e in stored}


async def test_a_relay_idling_between_polls_wakes_on_a_commit_of_its_own_process(
    tally: Tally, kafka_bootstrap: str, database_url: str, publisher: Publisher,
) -> None:
    """Postback → balance crosses two outboxes: a relay must not sit out its poll interval
    when this process has just committed events (other instances are polled for)."""
    relay = OutboxRelay(tally, publisher, note_to_envelope, database_url=database_url, idle_delay=30.0)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.holds_lock)
        await asyncio.sleep(0.2)  # idle now: nothing to publish
        tally.apply(Changes(aggregates=[Note("woken")]), Position("seed", 0, 1), None)
        # published long before the 30 s poll would have looked
        await eventually(lambda: tally.tracked_recorder.max_tracking_id(RELAY_TRACKING_NAME) is not None,
                         timeout=5.0, interval=0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_service_answers_health_and_readiness_then_stops_on_request(
    tally: Tally, topic: str, kafka_bootstrap: str, database_url: str, group_prefix: str,
) -> None:
    settings = TallySettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                             AFFLUX_CONSUMER_GROUP_PREFIX=group_prefix, port=free_port())
    # A scratch topic no contract event lives on: the consumer declares no event of it.
    tallied = Subscription("tally", (Topic(topic, key_rule="test"),), frozenset())
    runtime = ServiceRuntime(settings, Wiring("tally", subscriptions=(tallied,)))
    runtime.consume(tally, tallied)
    app = service_app("Tally", runtime.ready)
    async with serving(runtime, app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        await runtime.publisher.send_raw(topic, b"not json", b"k", [])
        dead_lettered = f'afflux_dead_lettered_total{{topic="{topic}"}} 1.0'
        await eventually(lambda: dead_lettered in httpx.get(f"{base_url}/metrics").text)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/healthz")
