"""An offer's fail traffic and smart links: checked when set (a 422 naming the entry:
unknown or deleted offers, an offer failing over to itself, weights, priorities), kept as
given, and published whole (OfferCreated/Updated, SmartLinkSet) for tracking; smart links
listed a page at a time; a smart link's tracking link is handed out once it is on the log."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from partners_fixtures import TRACKING_URL, RunningPartners, assert_error, offer_body, published_until

from afflux_contracts import Envelope, Event, FailTrafficMode, OfferCreated, OfferUpdated, SmartLinkSet
from afflux_partners.domain.routed_offers import check_fail_traffic, check_routed_offers
from afflux_partners.domain.rules import RuleViolation
from afflux_partners.domain.values import FailTraffic, RoutedOffer
from afflux_partners.entrypoints.http import encode_cursor

B, C = "b" * 32, "c" * 32


@pytest.mark.parametrize(("offers", "field", "code"), [
    ((RoutedOffer("not-an-offer"),), "fail_traffic.offers.0.offer_id", "unknown_offer"),
    ((RoutedOffer(B), RoutedOffer(B)), "fail_traffic.offers.1.offer_id", "duplicate_offer"),
    ((RoutedOffer(B, weight=1001),), "fail_traffic.offers.0.weight", "invalid_weight"),
    ((RoutedOffer(B, weight=-1),), "fail_traffic.offers.0.weight", "invalid_weight"),
    ((RoutedOffer(B), RoutedOffer(C, priority=2)), "fail_traffic.offers.1.priority", "invalid_priority"),
])
def test_a_bad_fail_traffic_entry_is_refused_naming_it(offers: tuple[RoutedOffer, ...], field: str,
                                                       code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_fail_traffic(FailTraffic(offers=offers))
    assert (refused.value.field, refused.value.code) == (field, code)


@pytest.mark.parametrize(("offers", "field", "code"), [
    ((), "offers", "too_few"),
    ((RoutedOffer(B, weight=0),), "offers", "too_few"),
    ((RoutedOffer(B, priority=0),), "offers.0.priority", "invalid_priority"),
    ((RoutedOffer(B, priority=101),), "offers.0.priority", "invalid_priority"),
])
def test_a_smart_link_lists_an_offer_of_positive_weight_and_priorities_from_1_to_100(
    offers: tuple[RoutedOffer, ...], field: str, code: str,
) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_routed_offers(offers, "offers", required=True)
    assert (refused.value.field, refused.value.code) == (field, code)


def about(kind: type[Event], key: str, value: str) -> Any:
    return lambda envelope: isinstance(envelope.payload, kind) and getattr(envelope.payload, key) == value


async def offer(admin: httpx.AsyncClient, **fields: Any) -> str:
    created = await admin.post("/v1/offers", json=offer_body(**fields))
    assert created.status_code == 201, created.text
    return str(created.json()["offer_id"])


async def test_an_offers_fail_traffic_is_kept_and_published(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    b, c = await offer(admin), await offer(admin)
    fail_traffic = {"mode": "weight", "offers": [{"offer_id": b, "weight": 3}, {"offer_id": c}]}
    a = await offer(admin, fail_traffic=fail_traffic)

    answered = (await admin.get(f"/v1/offers/{a}")).json()["fail_traffic"]
    patched = await admin.patch(f"/v1/offers/{a}", json={"fail_traffic": {"offers": [{"offer_id": c}]}})

    assert answered == {"mode": "weight", "offers": [{"offer_id": b, "weight": 3, "priority": 1},
                                                     {"offer_id": c, "weight": 1, "priority": 1}]}
    assert patched.status_code == 200, patched.text
    bootstrap = partners_service.settings.kafka_bootstrap_servers
    [created] = await published_until(bootstrap, about(OfferCreated, "offer_id", a), bool)
    [updated] = await published_until(bootstrap, about(OfferUpdated, "offer_id", a), bool)
    first: Envelope[Any] = created.envelope
    assert first.payload.fail_traffic.mode is FailTrafficMode.WEIGHT
    assert [(o.offer_id, o.weight) for o in first.payload.fail_traffic.offers] == [(b, 3), (c, 1)]
    assert updated.envelope.payload.changed == ("fail_traffic",)
    assert updated.envelope.payload.fail_traffic.mode is FailTrafficMode.PRIORITY


async def test_fail_traffic_to_an_unknown_or_deleted_offer_or_to_itself_is_a_422_naming_it(
    admin: httpx.AsyncClient,
) -> None:
    b, gone = await offer(admin), await offer(admin)
    await admin.post(f"/v1/offers/{gone}/status", json={"status": "deleted"})
    a = await offer(admin)

    unknown = await admin.post("/v1/offers", json=offer_body(
        fail_traffic={"offers": [{"offer_id": b}, {"offer_id": "f" * 32}]}))
    deleted = await admin.patch(f"/v1/offers/{a}", json={"fail_traffic": {"offers": [{"offer_id": gone}]}})
    itself = await admin.patch(f"/v1/offers/{a}", json={"fail_traffic": {"offers": [{"offer_id": a}]}})
    bad_mode = await admin.patch(f"/v1/offers/{a}", json={"fail_traffic": {"mode": "random", "offers": []}})

    assert_error(unknown, 422, "unknown_offer", "fail_traffic.offers.1.offer_id")
    assert_error(deleted, 422, "offer_deleted", "fail_traffic.offers.0.offer_id")
    assert_error(itself, 422, "self_reference", "fail_traffic.offers.0.offer_id")
    assert_error(bad_mode, 422, "invalid_request", "fail_traffic.mode")
    assert (await admin.get(f"/v1/offers/{a}")).json()["fail_traffic"] is None


async def test_a_smart_link_is_created_published_edited_and_handed_out_as_a_tracking_link(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    b, c = await offer(admin), await offer(admin)
    partner = (await admin.post("/v1/partners", json={"name": "Mixer", "email": "mix@p.example"})).json()

    created = await admin.post("/v1/smart-links", json={
        "name": "Spring mix", "offers": [{"offer_id": b, "weight": 3}, {"offer_id": c, "priority": 2}]})
    assert created.status_code == 201, created.text
    smart_link_id = created.json()["smart_link_id"]
    patched = await admin.patch(f"/v1/smart-links/{smart_link_id}",
                                json={"fallback_url": "https://shop.example/more"})
    link = await admin.get(f"/v1/smart-links/{smart_link_id}/partners/{partner['partner_id']}/tracking-link")

    assert created.json()["offers"] == [{"offer_id": b, "weight": 3, "priority": 1},
                                        {"offer_id": c, "weight": 1, "priority": 2}]
    assert (patched.status_code, patched.json()["fallback_url"]) == (200, "https://shop.example/more")
    assert (await admin.get(f"/v1/smart-links/{smart_link_id}")).json() == patched.json()
    assert link.json() == {"url": f"{TRACKING_URL}/s/{smart_link_id}/{partner['partner_id']}"}
    records = await published_until(partners_service.settings.kafka_bootstrap_servers,
                                    about(SmartLinkSet, "smart_link_id", smart_link_id),
                                    lambda found: len(found) == 2)
    first, second = (record.envelope.payload for record in records)
    assert {record.key for record in records} == {smart_link_id}
    assert [(o.offer_id, o.weight, o.priority) for o in first.offers] == [(b, 3, 1), (c, 1, 2)]
    assert (first.fallback_url, second.fallback_url) == (None, "https://shop.example/more")


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"name": "Mix", "offers": []}, "too_few", "offers"),
    ({"name": "Mix", "offers": [{"offer_id": "f" * 32}]}, "unknown_offer", "offers.0.offer_id"),
    ({"name": " ", "offers": [{"offer_id": "OFFER"}]}, "invalid_name", "name"),
    ({"name": "Mix", "offers": [{"offer_id": "OFFER", "weight": "x"}]}, "invalid_request", "offers.0.weight"),
    ({"name": "Mix", "offers": [{"offer_id": "OFFER"}], "fallback_url": "javascript:x"}, "invalid_url",
     "fallback_url"),
    ({"offers": [{"offer_id": "OFFER"}]}, "invalid_request", "name"),
])
async def test_a_bad_smart_link_is_a_422_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], code: str, field: str,
) -> None:
    b = await offer(admin)
    offers = [{**entry, "offer_id": b if entry["offer_id"] == "OFFER" else entry["offer_id"]}
              for entry in body["offers"]]
    assert_error(await admin.post("/v1/smart-links", json={**body, "offers": offers}), 422, code, field)


async def test_an_unknown_smart_link_is_a_404(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get(f"/v1/smart-links/{'e' * 32}"), 404, "smart_link_not_found")
    assert_error(await admin.patch("/v1/smart-links/nope", json={"name": "x"}), 404, "smart_link_not_found")


async def test_smart_links_are_listed_a_page_at_a_time_and_found_by_name(admin: httpx.AsyncClient) -> None:
    b = await offer(admin)
    name = f"Listed mix {secrets.token_hex(4)}"
    ids = [(await admin.post("/v1/smart-links", json={"name": f"{name} {n}", "offers": [{"offer_id": b}]}))
           .json()["smart_link_id"] for n in range(3)]
    renamed = await admin.patch(f"/v1/smart-links/{ids[2]}", json={"name": "Renamed away"})

    first = (await admin.get("/v1/smart-links", params={"q": name, "limit": 1})).json()
    rest = (await admin.get("/v1/smart-links", params={"q": name, "after": first["next"]})).json()
    by_id = (await admin.get("/v1/smart-links", params={"q": ids[2]})).json()

    assert renamed.status_code == 200, renamed.text
    assert [s["smart_link_id"] for s in first["smart_links"] + rest["smart_links"]] == ids[:2]
    assert rest["next"] is None
    assert first["smart_links"][0] == (await admin.get(f"/v1/smart-links/{ids[0]}")).json()
    assert [s["name"] for s in by_id["smart_links"]] == ["Renamed away"]
    assert_error(await admin.get("/v1/smart-links", params={"after": encode_cursor("offers", 1)}), 422,
                 "invalid_request", "after")
