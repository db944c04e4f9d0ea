"""The actor of a request reaches the envelope of every event it causes: recorded with a
stored event by the store's mapper and put on the envelope by the relay's ``publishing``,
and put on a directly published envelope by the publisher; nothing acts outside a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eventsourcing.domain import Aggregate, event
from fastapi import APIRouter, FastAPI
from tally import Tally

from afflux_contracts import Actor, Envelope, PartnerCreated
from afflux_plumbing.actors import acting_as, actor_of, current_actor
from afflux_plumbing.auth import Credentials, ServiceTokens, needs, service_token_entry
from afflux_plumbing.http import admin_auth, service_app
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import _with_actor
from afflux_plumbing.relay import publishing
from afflux_plumbing.store import Changes

MANAGER = Actor(kind="staff", id="u" * 32, role="manager")
ADMIN_TOKEN = "actors-test-admin-token"
GATEWAY_TOKEN = "actors-test-gateway-token"

class Memo(Aggregate):
    """An aggregate with fixed stored topics, as the services' are."""

    TOPIC = "afflux_plumbing_tests:Memo"

    @event("Created", topic="afflux_plumbing_tests:Memo.Created")
    def __init__(self, text: str) -> None:
        self.text = text


def _partner(memo: Any) -> PartnerCreated:
    return PartnerCreated(partner_id="p1", name=memo.text, email="a@b.example")


to_envelope = publishing("test", {"afflux_plumbing_tests:Memo.Created": _partner})


def stored_envelopes(tally: Tally) -> list[Any]:
    notifications = tally.recorder.select_notifications(None, 100)
    return [to_envelope(tally.mapper.to_domain_event(n)) for n in notifications]


def test_an_event_stored_while_someone_acts_carries_them_to_its_envelope(tally: Tally) -> None:
    with acting_as(MANAGER):
        note = Memo("by the manager")
        tally.save(note)
    tally.save(Memo("by the system"))
    by_manager, by_system = stored_envelopes(tally)
    assert by_manager.actor == MANAGER and by_system.actor is None
    assert current_actor() is None, "the actor ends with its block"
    rebuilt = tally.repository.get(note.id)
    assert rebuilt.text == "by the manager", "the aggregate is rebuilt from its events as before"
    assert actor_of(tally.mapper.to_domain_event(tally.recorder.select_notifications(None, 1)[0])) == MANAGER


def test_events_a_consumer_records_outside_any_request_carry_no_actor(tally: Tally) -> None:
    tally.apply(Changes(aggregates=[Memo("from the log")]), Position("seed", 0, 0), None)
    [envelope] = stored_envelopes(tally)
    assert envelope.actor is None


def test_a_direct_publish_carries_the_current_actor_unless_its_envelope_names_one() -> None:
    plain = Envelope.wrap(PartnerCreated(partner_id="p1", name="n", email="a@b.example"), producer="t")
    service = Actor(kind="service", id="gateway")
    assert _with_actor(plain).actor is None
    with acting_as(MANAGER):
        assert _with_actor(plain).actor == MANAGER
        assert _with_actor(plain.model_copy(update={"actor": service})).actor == service


def actor_app() -> FastAPI:
    """Routes that report the actor they run under: a plain ``def`` (FastAPI's thread pool)
    and an ``async def``."""
    credentials = Credentials(ADMIN_TOKEN, (ServiceTokens.parse(
        service_token_entry("gateway", GATEWAY_TOKEN, ["partners.read"])),))
    app = service_app("actors test", _ready)
    router = APIRouter(dependencies=[admin_auth(credentials)])

    @router.get("/threaded", openapi_extra=needs("partners.read"))
    def threaded() -> dict[str, Any]:
        actor = current_actor()
        return {"actor": actor.model_dump() if actor else None}

    @router.get("/awaited", openapi_extra=needs("partners.read"))
    async def awaited() -> dict[str, Any]:
        actor = current_actor()
        return {"actor": actor.model_dump() if actor else None}

    app.include_router(router)

    @app.get("/public")
    def public() -> dict[str, Any]:
        actor = current_actor()
        return {"actor": actor.model_dump() if actor else None}

    return app


async def _ready() -> bool:
    return True


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=actor_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        yield client


async def test_the_authenticated_principal_is_the_actor_of_the_route_it_calls(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/threaded", "/awaited"):
        admin = await client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.json()["actor"] == {"kind": "admin", "id": "admin", "role": "owner"}, path
        gateway = await client.get(path, headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"})
        assert gateway.json()["actor"] == {"kind": "service", "id": "gateway", "role": None}, path
    assert (await client.get("/public")).json()["actor"] is None, "an actor never outlives its request"
