"""An acknowledged admin write is on the log; one the log cannot take in time is a 202,
kept and published later; a tracking link is handed out only once it is on the log."""

from __future__ import annotations

import httpx
from partners_fixtures import ADMIN_TOKEN, RunningPartners, offer_body, partner_body, read_partners_topic

from afflux_contracts import OfferCreated, RelationshipSet
from afflux_infra.testing import SessionInfrastructure
from afflux_partners.adapters.store import PartnersStore
from afflux_partners.entrypoints.http import partners_app
from afflux_plumbing.eventstore import open_store

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_an_acknowledged_write_is_already_on_the_log(
    admin: httpx.AsyncClient, partners_service: RunningPartners
) -> None:
    response = await admin.post("/v1/offers", json=offer_body())
    assert response.status_code == 201
    assert response.headers["X-Afflux-Log"] == "published"
    offer_id = response.json()["offer_id"]

    # read once, no waiting: it is there already
    on_log = await read_partners_topic(partners_service.settings.kafka_bootstrap_servers)
    assert any(isinstance(r.envelope.payload, OfferCreated) and r.envelope.payload.offer_id == offer_id
               for r in on_log)


async def test_a_tracking_link_is_handed_out_after_its_relationship_is_on_the_log(
    admin: httpx.AsyncClient, partners_service: RunningPartners
) -> None:
    partner = (await admin.post("/v1/partners", json=partner_body())).json()
    offer = (await admin.post("/v1/offers", json=offer_body())).json()
    path = f"/v1/offers/{offer['offer_id']}/partners/{partner['partner_id']}"
    await admin.put(path, json={"approved": True})

    link = await admin.get(f"{path}/tracking-link")

    assert link.status_code == 200
    on_log = await read_partners_topic(partners_service.settings.kafka_bootstrap_servers)
    assert any(isinstance(r.envelope.payload, RelationshipSet)
               and r.envelope.payload.partner_id == partner["partner_id"] and r.envelope.payload.approved
               for r in on_log)


async def test_a_write_the_log_cannot_take_in_time_is_202_kept_and_its_link_withheld(
    partners_service: RunningPartners, infra: SessionInfrastructure,
) -> None:
    """The service on a database of its own with no relay running: nothing reaches the log."""
    settings = partners_service.settings.model_copy(
        update={"publish_timeout": 0.2, "database_url": infra.new_database()})
    store = open_store(PartnersStore, settings.database_url, settings.db_schema)
    app = partners_app(store, settings, lambda: _ready())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p", headers=AUTH) as client:
            created = await client.post("/v1/offers", json=offer_body())
            partner = (await client.post("/v1/partners", json=partner_body())).json()
            offer_id = created.json()["offer_id"]
            link = await client.get(f"/v1/offers/{offer_id}/partners/{partner['partner_id']}/tracking-link")
            kept = await client.get(f"/v1/offers/{offer_id}")
    finally:
        store.close()

    assert (created.status_code, created.headers["X-Afflux-Log"]) == (202, "pending")
    assert kept.status_code == 200 and kept.json()["name"] == offer_body()["name"]
    assert link.status_code == 503 and link.json()["error"]["code"] == "not_yet_published"
    assert link.headers["Retry-After"] == "1"


async def _ready() -> bool:
    return True
