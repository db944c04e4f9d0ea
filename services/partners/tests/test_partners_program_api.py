"""The program over HTTP against the real service (PostgreSQL and the broker): offers with
events, caps, tiers and fraud settings; edits published whole; lists with filters and
cursors; API keys shown once and published as a hash; applications for offers."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from partners_fixtures import (
    RunningPartners,
    assert_error,
    offer_body,
    partner_body,
    published_until,
)

from afflux_contracts import (
    Envelope,
    Event,
    OfferCreated,
    OfferPostbackTokenRotated,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerUpdated,
    RelationshipSet,
)
from afflux_infra.testing import SessionInfrastructure
from afflux_partners.adapters.store import PartnersStore
from afflux_partners.application.partners import Listing
from afflux_partners.domain.values import PayoutType, Standing, Terms
from afflux_partners.entrypoints.http import partners_app
from afflux_plumbing.eventstore import open_store

TWO_EVENTS = [
    {"name": "lead", "payout": {"type": "cpa", "amount": "2.00"}, "requires_approval": True,
     "fires_partner_postback": False},
    {"name": "sale", "payout": {"type": "cps", "percent": "8"}, "revenue": {"type": "cps", "percent": "12"},
     "allow_duplicates": True},
]
DAILY_CAP = {"metric": "conversions", "period": "day", "limit": 100}


async def create(admin: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def about(key: str, kind: Any) -> Any:
    def mine(envelope: Envelope[Event]) -> bool:
        payload = envelope.payload
        return isinstance(payload, kind) and key in (getattr(payload, "partner_id", None),
                                                     getattr(payload, "offer_id", None))
    return mine


async def test_an_offer_with_two_events_a_cap_tiers_and_fraud_settings_is_kept_as_given(
    admin: httpx.AsyncClient,
) -> None:
    offer = await create(admin, "/v1/offers", offer_body(
        events=TWO_EVENTS, caps=[DAILY_CAP, {"metric": "payout", "period": "month", "limit": "5000.00",
                                             "per_partner": True, "hard": False}],
        tiers=[{"min_conversions": 50, "payout": {"type": "cpa", "amount": "15.00"}}],
        fraud={"min_seconds_to_convert": 5, "blocked_ips": ["198.51.100.0/24"], "action": "review"},
        coupon_precedence="coupon_first"))
    assert [e["name"] for e in offer["events"]] == ["lead", "sale"]
    assert offer["events"][1] == {
        "name": "sale", "payout": {"type": "cps", "amount": None, "percent": "8"},
        "revenue": {"type": "cps", "amount": None, "percent": "12"}, "allow_duplicates": True,
        "requires_approval": False, "fires_partner_postback": True, "max_sale_amount": None,
        "max_payout": None}
    assert offer["caps"] == [
        {"metric": "conversions", "period": "day", "limit": "100", "per_partner": False, "hard": True},
        {"metric": "payout", "period": "month", "limit": "5000.00", "per_partner": True, "hard": False}]
    assert offer["tiers"] == [{"min_conversions": 50, "payout": {"type": "cpa", "amount": "15.00",
                                                                 "percent": None}}]
    assert offer["fraud"] == {"min_seconds_to_convert": 5, "max_conversions_per_ip_per_day": None,
                              "blocked_ips": ["198.51.100.0/24"], "blocked_sub1": [], "action": "review",
                              "max_clicks_per_ip_per_day": None, "max_clicks_per_visitor_per_day": None,
                              "max_impressions_per_ip_per_day": None, "blocked_subs": {}}
    assert offer["coupon_precedence"] == "coupon_first"
    offer.pop("postback_token")
    assert (await admin.get(f"/v1/offers/{offer['offer_id']}")).json() == offer


async def test_an_amount_keeps_every_digit_sent_as_a_json_number(admin: httpx.AsyncClient) -> None:
    body = json.dumps(offer_body(payout={"type": "cpa", "amount": "AMOUNT"},
                                 caps=[{"metric": "revenue", "period": "lifetime", "limit": "LIMIT"}]))
    raw = body.replace('"AMOUNT"', "1234567890.12345678").replace('"LIMIT"', "99999999999.99999999")
    response = await admin.post("/v1/offers", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    offer = response.json()
    assert offer["payout"]["amount"] == "1234567890.12345678"
    assert offer["caps"][0]["limit"] == "99999999999.99999999"


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"caps": [{**DAILY_CAP, "limit": -5}]}, "invalid_amount", "caps.0.limit"),
        ({"caps": [{**DAILY_CAP, "limit": 0}]}, "invalid_cap", "caps.0.limit"),
        ({"caps": [{**DAILY_CAP, "limit": 1.5}]}, "invalid_cap", "caps.0.limit"),
        ({"caps": [{**DAILY_CAP, "period": "hour"}]}, "invalid_request", "caps.0.period"),
        ({"caps": [DAILY_CAP, DAILY_CAP]}, "duplicate_cap", "caps.1"),
        ({"tiers": [{"payout": {"type": "cpa", "amount": "1"}}]}, "invalid_request",
         "tiers.0.min_conversions"),
        ({"tiers": [{"min_conversions": 0, "payout": {"type": "cpa", "amount": "1"}}]}, "invalid_tier",
         "tiers.0.min_conversions"),
        ({"tiers": [{"min_conversions": True, "payout": {"type": "cpa", "amount": "1"}}]}, "invalid_request",
         "tiers.0.min_conversions"),
        ({"fraud": {"min_seconds_to_convert": 0}}, "invalid_fraud", "fraud.min_seconds_to_convert"),
        ({"events": [TWO_EVENTS[0], TWO_EVENTS[0]]}, "duplicate_event", "events.1.name"),
        ({"events": [{"name": "click", "payout": {"type": "cpc", "amount": "0.1"}}]}, "invalid_terms",
         "events.0.payout.type"),
        ({"events": [{"name": "lead", "payout": {"type": "cpa", "amount": "1"}, "allow_duplicates": "yes"}]},
         "invalid_request", "events.0.allow_duplicates"),
        ({"fraud": {"blocked_ips": ["not-an-ip"]}}, "invalid_ip", "fraud.blocked_ips"),
        ({"fraud": {"action": "shrug"}}, "invalid_request", "fraud.action"),
        ({"fraud": {"max_clicks_per_ip_per_day": 0}}, "invalid_fraud", "fraud.max_clicks_per_ip_per_day"),
        ({"fraud": {"max_clicks_per_visitor_per_day": -1}}, "invalid_fraud",
         "fraud.max_clicks_per_visitor_per_day"),
        ({"fraud": {"max_impressions_per_ip_per_day": 1.5}}, "invalid_request",
         "fraud.max_impressions_per_ip_per_day"),
        ({"fraud": {"blocked_subs": {"sub1": ["x"]}}}, "invalid_fraud", "fraud.blocked_subs.sub1"),
        ({"fraud": {"blocked_subs": {"sub3": [""]}}}, "invalid_fraud", "fraud.blocked_subs.sub3"),
        ({"events": [{"name": "sale", "payout": {"type": "cpa", "amount": "1"}, "max_payout": "0"}]},
         "invalid_amount", "events.0.max_payout"),
        ({"events": [{"name": "sale", "payout": {"type": "cpa", "amount": "1"}, "max_sale_amount": -1}]},
         "invalid_amount", "events.0.max_sale_amount"),
        ({"coupon_precedence": "coupon_only"}, "invalid_request", "coupon_precedence"),
        ({"destination_url": "https://{sub1}.shop.example/"}, "invalid_url", "destination_url"),
        ({"payout": {"type": "cpm"}}, "invalid_terms", "payout.amount"),
    ],
)
async def test_invalid_program_rules_are_refused_naming_the_field(
    admin: httpx.AsyncClient, overrides: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await admin.post("/v1/offers", json=offer_body(**overrides)), 422, code, field)


async def test_a_relationship_gets_event_payouts_caps_and_postback_settings_validated(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body(events=TWO_EVENTS)))["offer_id"]
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    path = f"/v1/offers/{offer_id}/partners/{partner_id}"
    unknown = {"approved": True, "events": [{"name": "upsell", "payout": {"type": "cpa", "amount": "1"}}]}
    assert_error(await admin.put(path, json=unknown), 422, "unknown_event", "events.0.name")
    assert_error(await admin.put(path, json={"approved": True, "caps": [{**DAILY_CAP, "limit": -1}]}),
                 422, "invalid_amount", "caps.0.limit")
    assert_error(await admin.put(path, json={"approved": True, "postback_method": "put"}),
                 422, "invalid_request", "postback_method")

    body = {"approved": True, "events": [{"name": "sale", "payout": {"type": "cps", "percent": "10"}}],
            "caps": [DAILY_CAP], "postback_url": "https://p.example/pb?c={sub1}", "postback_method": "post",
            "postback_status_changes": True}
    response = await admin.put(path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["caps"] == [{**DAILY_CAP, "limit": "100", "per_partner": True, "hard": True}]
    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(partner_id, RelationshipSet), lambda found: len(found) == 1)
    published = records[0].envelope.payload
    assert isinstance(published, RelationshipSet) and records[0].key == f"{offer_id}:{partner_id}"
    assert published.events[0].name == "sale" and published.postback_method == "post"
    assert published.caps[0].limit == 100 and published.postback_status_changes


async def test_patching_a_partner_publishes_its_whole_state_and_what_changed(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    partner = await create(admin, "/v1/partners", partner_body(tags=["eu"], manager="dana"))
    patch = {"manager": None, "contacts": [{"name": "Bo Li", "email": "bo@deals.example", "role": "billing"}],
             "billing": {"currency": "eur", "frequency": "two_months", "minimum_payout": "75",
                         "method": "wire"},
             "postback": {"url": "https://deals.example/pb?c={sub1}", "status_changes": True}}
    response = await admin.patch(f"/v1/partners/{partner['partner_id']}", json=patch)
    assert response.status_code == 200, response.text
    edited = response.json()
    assert (edited["manager"], edited["tags"], edited["billing"]["frequency"]) == (None, ["eu"], "two_months")
    assert edited["postback"] == {"url": "https://deals.example/pb?c={sub1}", "method": "get",
                                  "status_changes": True}
    assert (await admin.get(f"/v1/partners/{partner['partner_id']}")).json() == edited

    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(partner["partner_id"], PartnerUpdated),
                                    lambda found: len(found) == 1)
    update = records[0].envelope.payload
    assert isinstance(update, PartnerUpdated)
    assert update.changed == ("billing", "manager", "contacts", "postback")
    assert (update.name, update.tags, update.status) == ("Ann's Deals", ("eu",), "active")
    assert_error(await admin.patch(f"/v1/partners/{partner['partner_id']}", json={"status": "inactive"}),
                 422, "invalid_request", "status")
    assert_error(await admin.patch(f"/v1/partners/{partner['partner_id']}", json={"email": None}),
                 422, "invalid_value", "email")
    assert_error(await admin.patch("/v1/partners/" + "0" * 32, json={}), 404, "partner_not_found")


async def test_patching_an_offer_publishes_offer_updated_and_keeps_the_currency(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer = await create(admin, "/v1/offers", offer_body())
    path = f"/v1/offers/{offer['offer_id']}"
    response = await admin.patch(path, json={"events": TWO_EVENTS, "caps": [DAILY_CAP]})
    assert response.status_code == 200, response.text
    assert [e["name"] for e in response.json()["events"]] == ["lead", "sale"]
    assert "postback_token" not in response.json()
    unchanged = await admin.patch(path, json={"name": offer["name"]})
    assert unchanged.json() == response.json()

    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(offer["offer_id"], OfferUpdated), lambda found: len(found) >= 1)
    assert len(records) == 1  # the edit that changed nothing published nothing
    update = records[0].envelope.payload
    assert isinstance(update, OfferUpdated) and update.changed == ("events", "caps")
    assert update.conversion_security is not None
    token_sha256 = hashlib.sha256(offer["postback_token"].encode()).hexdigest()
    assert update.conversion_security.token_sha256 == token_sha256
    assert_error(await admin.patch(path, json={"currency": "EUR"}), 422, "currency_locked", "currency")
    await admin.post(f"{path}/status", json={"status": "deleted"})
    assert_error(await admin.patch(path, json={"name": "Again"}), 409, "offer_deleted")


async def test_partners_are_listed_by_status_tag_and_text_a_page_at_a_time(admin: httpx.AsyncClient) -> None:
    tag = f"t{secrets.token_hex(4)}"
    ids = [(await create(admin, "/v1/partners", partner_body(name=f"Lister {n}", tags=[tag],
                                                             email=f"list{n}@{tag}.example")))["partner_id"]
           for n in range(5)]
    await admin.post(f"/v1/partners/{ids[4]}/status", json={"status": "inactive"})

    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"tag": tag, "status": "active", "limit": 2}
        if after:
            params["after"] = after
        page = (await admin.get("/v1/partners", params=params)).json()
        seen += [p["partner_id"] for p in page["partners"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ids[:4]
    found = (await admin.get("/v1/partners", params={"q": f"LIST3@{tag}"})).json()["partners"]
    assert [p["partner_id"] for p in found] == [ids[3]]
    assert (await admin.get("/v1/partners", params={"q": "%"})).status_code == 200
    for bad, field in (({"after": "garbage"}, "after"), ({"status": "asleep"}, "status")):
        assert_error(await admin.get("/v1/partners", params=bad), 422, "invalid_request", field)


async def test_offers_are_listed_by_status_a_page_at_a_time(admin: httpx.AsyncClient) -> None:
    name = f"Listed {secrets.token_hex(4)}"
    ids = [(await create(admin, "/v1/offers", offer_body(name=name)))["offer_id"] for _ in range(3)]
    await admin.post(f"/v1/offers/{ids[1]}/status", json={"status": "paused"})
    first = (await admin.get("/v1/offers", params={"q": name, "limit": 1})).json()
    second = (await admin.get("/v1/offers", params={"q": name, "limit": 5, "after": first["next"]})).json()
    assert [o["offer_id"] for o in first["offers"] + second["offers"]] == ids
    assert second["next"] is None
    paused = (await admin.get("/v1/offers", params={"q": name, "status": "paused"})).json()
    assert [o["offer_id"] for o in paused["offers"]] == [ids[1]]
    cursor_of_partners = (await admin.get("/v1/partners", params={"limit": 1})).json()["next"]
    assert_error(await admin.get("/v1/offers", params={"after": cursor_of_partners}), 422,
                 "invalid_request", "after")


async def test_an_api_key_is_shown_once_and_only_its_hash_is_published(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    issued = await create(admin, f"/v1/partners/{partner_id}/api-keys", {})
    api_key, key_id = issued["api_key"], issued["key_id"]
    assert api_key.startswith("afx_live_") and len(api_key) == len("afx_live_") + 43
    assert key_id.startswith("key_") and issued["prefix"] == api_key[:13] and issued["status"] == "active"

    listed = (await admin.get(f"/v1/partners/{partner_id}/api-keys")).json()["api_keys"]
    assert listed == [{k: v for k, v in issued.items() if k != "api_key"}]
    assert api_key not in (await admin.get(f"/v1/partners/{partner_id}/api-keys")).text

    revoked = await admin.delete(f"/v1/partners/{partner_id}/api-keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await admin.delete(f"/v1/partners/{partner_id}/api-keys/{key_id}")
    assert again.json() == revoked.json()
    assert_error(await admin.delete(f"/v1/partners/{partner_id}/api-keys/key_nope"), 404, "api_key_not_found")

    def both(found: list[Any]) -> bool:
        return len(found) >= 2

    records = await published_until(
        partners_service.settings.kafka_bootstrap_servers,
        lambda e: isinstance(e.payload, PartnerApiKeyIssued | PartnerApiKeyRevoked)
        and e.payload.partner_id == partner_id, both)
    issued_event, revoked_event = (r.envelope.payload for r in records)
    assert len(records) == 2  # revoking twice published once
    assert isinstance(issued_event, PartnerApiKeyIssued) and isinstance(revoked_event, PartnerApiKeyRevoked)
    assert issued_event.key_sha256 == hashlib.sha256(api_key.encode()).hexdigest()
    assert api_key not in records[0].envelope.model_dump_json()
    assert records[0].key == partner_id


async def test_a_partner_applies_for_offers_without_ever_being_downgraded(admin: httpx.AsyncClient) -> None:
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    gated = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    public = (await create(admin, "/v1/offers", offer_body(visibility="public")))["offer_id"]
    private = (await create(admin, "/v1/offers", offer_body(visibility="private")))["offer_id"]

    def apply(offer_id: str) -> Any:
        return admin.post(f"/v1/offers/{offer_id}/partners/{partner_id}/apply")

    first = await apply(gated)
    assert first.status_code == 201, first.text
    assert (first.json()["approved"], first.json()["application"]) == (False, True)
    assert (await apply(gated)).status_code == 200  # idempotent
    await admin.put(f"/v1/offers/{gated}/partners/{partner_id}", json={"approved": True, "coupon_codes": []})
    kept = await apply(gated)
    assert (kept.status_code, kept.json()["approved"], kept.json()["application"]) == (200, True, False)

    approved_at_once = await apply(public)
    assert approved_at_once.status_code == 201 and approved_at_once.json()["approved"] is True
    assert_error(await apply(private), 404, "offer_not_found")

    assert first.json()["standing"] == "pending" and kept.json()["standing"] == "approved"
    declined = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    await apply(declined)
    await admin.put(f"/v1/offers/{declined}/partners/{partner_id}", json={"approved": False})
    assert_error(await apply(declined), 409, "application_declined", "offer_id")

    inactive = (await create(admin, "/v1/partners", partner_body(status="inactive")))["partner_id"]
    response = await admin.post(f"/v1/offers/{gated}/partners/{inactive}/apply")
    assert_error(response, 409, "partner_not_active", "partner_id")


async def test_an_offers_partners_are_listed_by_standing_so_applications_can_be_decided(
    admin: httpx.AsyncClient,
) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    partners = [(await create(admin, "/v1/partners", partner_body(name=f"P{n}")))["partner_id"]
                for n in range(4)]
    for partner_id in partners[:3]:
        await admin.post(f"/v1/offers/{offer_id}/partners/{partner_id}/apply")
    await admin.put(f"/v1/offers/{offer_id}/partners/{partners[1]}", json={"approved": True})
    await admin.put(f"/v1/offers/{offer_id}/partners/{partners[2]}", json={"approved": False})
    await admin.put(f"/v1/offers/{offer_id}/partners/{partners[3]}", json={"approved": True})

    async def listed(**params: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        after = None
        while True:
            query = {**params, "limit": 2, **({"after": after} if after else {})}
            response = await admin.get(f"/v1/offers/{offer_id}/partners", params=query)
            assert response.status_code == 200, response.text
            found += [(r["partner_id"], r["standing"]) for r in response.json()["relationships"]]
            after = response.json()["next"]
            if after is None:
                return found

    assert await listed() == [(partners[0], "pending"), (partners[1], "approved"), (partners[2], "declined"),
                              (partners[3], "approved")]
    assert await listed(status="pending") == [(partners[0], "pending")]
    assert await listed(status="approved") == [(partners[1], "approved"), (partners[3], "approved")]
    assert_error(await admin.get("/v1/offers/" + "0" * 32 + "/partners"), 404, "offer_not_found")
    assert_error(await admin.get(f"/v1/offers/{offer_id}/partners", params={"status": "maybe"}), 422,
                 "invalid_request", "status")


async def test_a_partners_relationships_with_every_offer_are_listed_in_one_read_by_standing(
    admin: httpx.AsyncClient,
) -> None:
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    other = (await create(admin, "/v1/partners", partner_body(name="Other")))["partner_id"]
    offers = [(await create(admin, "/v1/offers", offer_body()))["offer_id"] for _ in range(4)]
    await admin.put(f"/v1/offers/{offers[0]}/partners/{partner_id}", json={"approved": True})
    await admin.put(f"/v1/offers/{offers[1]}/partners/{partner_id}", json={"approved": False})
    await admin.put(f"/v1/offers/{offers[2]}/partners/{other}", json={"approved": True})
    await admin.put(f"/v1/offers/{offers[3]}/partners/{partner_id}",
                    json={"approved": True, "payout": {"type": "cpa", "amount": "9.50"}})

    async def listed(**params: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        after = None
        while True:
            query = {**params, "limit": 2, **({"after": after} if after else {})}
            response = await admin.get(f"/v1/partners/{partner_id}/relationships", params=query)
            assert response.status_code == 200, response.text
            rows = response.json()["relationships"]
            assert {r["partner_id"] for r in rows} <= {partner_id}
            found += [(r["offer_id"], r["standing"]) for r in rows]
            after = response.json()["next"]
            if after is None:
                return found

    assert await listed() == [(offers[0], "approved"), (offers[1], "declined"), (offers[3], "approved")]
    assert await listed(status="approved") == [(offers[0], "approved"), (offers[3], "approved")]
    approved = {"status": "approved"}
    custom = (await admin.get(f"/v1/partners/{partner_id}/relationships", params=approved)).json()
    assert custom["relationships"][1]["payout"]["amount"] == "9.50"
    assert_error(await admin.get("/v1/partners/" + "0" * 32 + "/relationships"), 404, "partner_not_found")
    assert_error(await admin.get(f"/v1/partners/{partner_id}/relationships", params={"after": "x"}), 422,
                 "invalid_request", "after")


async def test_a_nul_in_a_name_tag_or_filter_is_a_422_not_a_crash(admin: httpx.AsyncClient) -> None:
    cases = [("/v1/partners", partner_body(name="Ann\x00"), "invalid_name", "name"),
             ("/v1/partners", partner_body(tags=["eu\x00"]), "invalid_tag", "tags"),
             ("/v1/offers", offer_body(name="Shoes\x00"), "invalid_name", "name")]
    for path, body, code, field in cases:
        assert_error(await admin.post(path, json=body), 422, code, field)
    for param in ("q", "tag"):
        assert_error(await admin.get("/v1/partners", params={param: "a\x00"}), 422, "invalid_request", param)


def test_partners_and_offers_recorded_before_the_list_indexes_are_indexed_at_start(
    infra: SessionInfrastructure,
) -> None:
    url = infra.new_database()
    store = open_store(PartnersStore, url, "partners")
    try:
        partner = store.create_partner(name="Old", email="old@example.com")
        offer = store.create_offer(name="Old offer", destination_url="https://shop.example/", currency="USD",
                                   payout=Terms(PayoutType.CPA, Decimal("1"))).offer
        store.set_relationship(offer.offer_id, partner.partner_id, True)
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as connection:  # as a store from before the indexes
        connection.execute("DELETE FROM partners.partner_index")
        connection.execute("DELETE FROM partners.offer_index")
        connection.execute("DELETE FROM partners.relationship_index")

    reopened = open_store(PartnersStore, url, "partners")
    try:
        partners = reopened.list_partners(Listing("partners", q="old@"), None, 10).items
        offers = reopened.list_offers(Listing("offers", status="active"), None, 10).items
        relationships = reopened.list_relationships(offer.offer_id, Standing.APPROVED, None, 10).items
    finally:
        reopened.close()
    assert [p.partner_id for p in partners] == [partner.partner_id]
    assert [o.offer_id for o in offers] == [offer.offer_id]
    assert [r.partner_id for r in relationships] == [partner.partner_id]


async def test_a_key_issued_while_the_log_is_away_is_still_shown_once_with_a_202(
    partners_service: RunningPartners, infra: SessionInfrastructure,
) -> None:
    """No relay runs on this store: the key's event stays in the outbox (published later),
    and the answer, a 202, still carries the key: it is never shown again."""
    settings = partners_service.settings.model_copy(
        update={"publish_timeout": 0.2, "database_url": infra.new_database()})
    store = open_store(PartnersStore, settings.database_url, settings.db_schema)
    app = partners_app(store, settings, _ready)
    try:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {settings.admin_token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://p", headers=headers) as client:
            partner_id = (await client.post("/v1/partners", json=partner_body())).json()["partner_id"]
            issued = await client.post(f"/v1/partners/{partner_id}/api-keys")
            listed = await client.get(f"/v1/partners/{partner_id}/api-keys")
    finally:
        store.close()
    assert (issued.status_code, issued.headers["X-Afflux-Log"]) == (202, "pending")
    assert issued.json()["api_key"].startswith("afx_live_")
    assert [key["key_id"] for key in listed.json()["api_keys"]] == [issued.json()["key_id"]]


async def test_an_offer_keeps_its_money_and_traffic_bounds_and_publishes_them(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer = await create(admin, "/v1/offers", offer_body(
        max_sale_amount="2500.00", max_payout="150", over_limit_action="reject", unique_click_hours=12,
        events=[{"name": "sale", "payout": {"type": "cps", "percent": "8"}, "max_sale_amount": "900.50"}],
        conversion_security={"pixel_allowed": True, "pixel_review": False},
        fraud={"max_clicks_per_ip_per_day": 20, "max_clicks_per_visitor_per_day": 3,
               "max_impressions_per_ip_per_day": 500, "blocked_subs": {"sub4": ["incent", "incent"]}}))
    assert (offer["max_sale_amount"], offer["max_payout"]) == ("2500.00", "150")
    assert (offer["over_limit_action"], offer["unique_click_hours"]) == ("reject", 12)
    assert offer["events"][0]["max_sale_amount"] == "900.50" and offer["events"][0]["max_payout"] is None
    assert offer["conversion_security"]["pixel_review"] is False
    assert offer["fraud"]["blocked_subs"] == {"sub4": ["incent"]}
    assert (offer["fraud"]["max_clicks_per_ip_per_day"], offer["fraud"]["max_clicks_per_visitor_per_day"],
            offer["fraud"]["max_impressions_per_ip_per_day"]) == (20, 3, 500)
    patched = await admin.patch(f"/v1/offers/{offer['offer_id']}", json={"max_payout": None,
                                                                          "unique_click_hours": 48})
    assert (patched.json()["max_payout"], patched.json()["unique_click_hours"]) == (None, 48)

    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(offer["offer_id"], OfferCreated | OfferUpdated),
                                    lambda found: len(found) >= 2)
    created, updated = (record.envelope.payload for record in records)
    assert isinstance(created, OfferCreated) and isinstance(updated, OfferUpdated)
    assert (created.max_sale_amount, created.max_payout) == (Decimal("2500.00"), Decimal("150"))
    assert (created.over_limit_action.value, created.unique_click_hours) == ("reject", 12)
    assert created.events[0].max_sale_amount == Decimal("900.50")
    assert created.conversion_security is not None and not created.conversion_security.pixel_review
    assert created.fraud is not None and created.fraud.blocked_subs == {"sub4": ("incent",)}
    assert (updated.max_payout, updated.unique_click_hours, updated.changed) == (
        None, 48, ("max_payout", "unique_click_hours"))


async def test_a_rotated_postback_token_is_shown_once_and_only_hashes_are_published(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    offer = await create(admin, "/v1/offers", offer_body())
    path = f"/v1/offers/{offer['offer_id']}"
    rotated = await admin.post(f"{path}/postback-token/rotate", json={"overlap_hours": 2})
    assert rotated.status_code == 200, rotated.text
    token, until = rotated.json()["postback_token"], rotated.json()["previous_token_valid_until"]
    assert len(token) >= 40 and token != offer["postback_token"]
    left = datetime.fromisoformat(until) - datetime.now(UTC)
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)
    read = await admin.get(path)
    assert token not in read.text and offer["postback_token"] not in read.text
    assert read.json()["conversion_security"]["previous_token_valid_until"] == until
    again = await admin.post(f"{path}/postback-token/rotate")  # no body: the default overlap
    assert again.status_code == 200 and again.json()["postback_token"] not in (token, offer["postback_token"])
    assert_error(await admin.post(f"{path}/postback-token/rotate", json={"overlap_hours": 721}),
                 422, "invalid_overlap", "overlap_hours")
    assert_error(await admin.post(f"{path}/postback-token/rotate", json={"overlap_hours": "2"}),
                 422, "invalid_request", "overlap_hours")
    assert_error(await admin.post(f"/v1/offers/{'0' * 32}/postback-token/rotate"), 404, "offer_not_found")

    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(offer["offer_id"], OfferPostbackTokenRotated),
                                    lambda found: len(found) >= 2)
    first = records[0].envelope.payload
    assert isinstance(first, OfferPostbackTokenRotated) and records[0].key == offer["offer_id"]
    assert first.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert first.previous_token_sha256 == hashlib.sha256(offer["postback_token"].encode()).hexdigest()
    assert first.previous_valid_until == datetime.fromisoformat(until)
    assert all(secret not in record.envelope.model_dump_json()
               for record in records for secret in (token, offer["postback_token"]))
    await admin.post(f"{path}/status", json={"status": "deleted"})
    assert_error(await admin.post(f"{path}/postback-token/rotate"), 409, "offer_deleted")


async def _ready() -> bool:
    return True
