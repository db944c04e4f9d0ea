"""The partners admin API over HTTP, against the real service on PostgreSQL and the broker."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from partners_fixtures import TRACKING_URL, RunningPartners, assert_error, offer_body, partner_body

HEX32 = re.compile(r"^[0-9a-f]{32}$")


async def create(admin: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_created_partner_is_answered_and_read_back_in_the_documented_shape(
    admin: httpx.AsyncClient,
) -> None:
    body = partner_body(type="creator", status="pending", tags=["vip", "video"],
                        billing={"currency": "usd", "frequency": "biweekly", "minimum_payout": 50})
    partner = await create(admin, "/v1/partners", body)

    assert HEX32.match(partner.pop("partner_id"))
    created_at = datetime.fromisoformat(partner.pop("created_at"))
    assert created_at.tzinfo is not None and abs(datetime.now(UTC) - created_at).total_seconds() < 60
    assert datetime.fromisoformat(partner.pop("updated_at")) == created_at
    assert partner == {
        "name": "Ann's Deals", "email": "ann@deals.example", "type": "creator", "status": "pending",
        "tags": ["vip", "video"], "manager": None, "contacts": [], "postback": None,
        "billing": {"currency": "USD", "frequency": "biweekly", "minimum_payout": "50", "method": None,
                    "conversion": "none"},
    }


async def test_a_partner_paid_in_its_billing_currency_says_at_which_days_rate(
    admin: httpx.AsyncClient,
) -> None:
    billing = {"currency": "usd", "frequency": "monthly", "minimum_payout": "0", "conversion": "earned_day"}
    partner = await create(admin, "/v1/partners", partner_body(billing=billing))
    assert (partner["billing"]["currency"], partner["billing"]["conversion"]) == ("USD", "earned_day")
    read = (await admin.get(f"/v1/partners/{partner['partner_id']}")).json()
    assert read["billing"] == partner["billing"]


async def test_a_partner_gets_defaults_and_its_status_changes_stick(admin: httpx.AsyncClient) -> None:
    partner = await create(admin, "/v1/partners", partner_body())
    defaults = (partner["status"], partner["type"], partner["tags"], partner["billing"])
    assert defaults == ("active", None, [], None)
    partner_id = partner["partner_id"]

    changed = await admin.post(f"/v1/partners/{partner_id}/status", json={"status": "suspended"})
    assert changed.status_code == 200 and changed.json()["status"] == "suspended"
    assert changed.json()["updated_at"] > partner["updated_at"]
    read = await admin.get(f"/v1/partners/{partner_id}")
    assert read.status_code == 200
    assert read.json() == changed.json()


async def test_rejecting_a_partner_that_is_not_pending_is_a_conflict(admin: httpx.AsyncClient) -> None:
    partner = await create(admin, "/v1/partners", partner_body())
    response = await admin.post(f"/v1/partners/{partner['partner_id']}/status", json={"status": "rejected"})
    assert_error(response, 409, "status_change_refused", "status")


async def test_a_created_offer_has_its_defaults_and_money_as_decimal_strings(
    admin: httpx.AsyncClient,
) -> None:
    offer = await create(admin, "/v1/offers", offer_body(
        currency="eur", revenue={"type": "cpa_cps", "amount": "20.00", "percent": 5},
        fallback_url="https://shop.example/sorry",
    ))

    offer_id = offer.pop("offer_id")
    assert HEX32.match(offer_id)
    assert datetime.fromisoformat(offer.pop("created_at")).tzinfo is not None
    assert datetime.fromisoformat(offer.pop("updated_at")).tzinfo is not None
    assert len(offer.pop("postback_token")) >= 40
    assert offer == {
        "events": [{"name": "conversion", "payout": {"type": "cpa", "amount": "12.50", "percent": None},
                    "revenue": {"type": "cpa_cps", "amount": "20.00", "percent": "5"},
                    "allow_duplicates": False, "requires_approval": False, "fires_partner_postback": True,
                    "max_sale_amount": None, "max_payout": None}],
        "caps": [], "tiers": [], "fraud": None, "coupon_precedence": "click_first",
        "conversion_security": {"token_required": True, "allowed_ips": [], "pixel_allowed": False,
                                "pixel_review": True, "previous_token_valid_until": None},
        "max_sale_amount": None, "max_payout": None, "over_limit_action": "review", "unique_click_hours": 24,
        "deep_link_domains": [], "landing_pages": [], "targeting": None, "fail_traffic": None,
        "name": "Running shoes", "destination_url": offer_body()["destination_url"], "status": "active",
        "visibility": "require_approval", "currency": "EUR",
        "payout": {"type": "cpa", "amount": "12.50", "percent": None},
        "revenue": {"type": "cpa_cps", "amount": "20.00", "percent": "5"},
        "attribution_window_days": 30, "fallback_url": "https://shop.example/sorry",
    }
    read = await admin.get(f"/v1/offers/{offer_id}")
    assert read.status_code == 200 and read.json()["payout"]["amount"] == "12.50"


async def test_an_offer_pauses_and_resumes_but_a_deleted_offer_cannot_come_back(
    admin: httpx.AsyncClient,
) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    for status in ("paused", "active", "deleted"):
        response = await admin.post(f"/v1/offers/{offer_id}/status", json={"status": status})
        assert response.status_code == 200 and response.json()["status"] == status
    assert_error(await admin.post(f"/v1/offers/{offer_id}/status", json={"status": "active"}),
                 409, "status_change_refused", "status")


async def test_put_relationship_creates_it_then_replaces_its_whole_state(admin: httpx.AsyncClient) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    path = f"/v1/offers/{offer_id}/partners/{partner_id}"

    first = await admin.put(path, json={
        "approved": True, "payout": {"type": "cps", "percent": "12.5"},
        "coupon_codes": ["ANN-RUN10"], "postback_url": "https://ann.example/pb?click={sub1}",
    })
    assert first.status_code == 200, first.text
    assert first.json() == {
        "offer_id": offer_id, "partner_id": partner_id, "standing": "approved", "approved": True,
        "application": False,
        "payout": {"type": "cps", "amount": None, "percent": "12.5"}, "revenue": None,
        "coupon_codes": ["ANN-RUN10"], "postback_url": "https://ann.example/pb?click={sub1}",
        "events": [], "caps": [], "postback_method": "get", "postback_status_changes": False,
        "targeting": None,
    }

    second = await admin.put(path, json={"approved": False})
    assert second.status_code == 200
    assert second.json() == {
        "offer_id": offer_id, "partner_id": partner_id, "standing": "declined", "approved": False,
        "application": False,
        "payout": None, "revenue": None, "coupon_codes": [], "postback_url": None,
        "events": [], "caps": [], "postback_method": "get", "postback_status_changes": False,
        "targeting": None,
    }
    assert (await admin.get(path)).json() == second.json()


async def test_a_coupon_code_belongs_to_one_partner_only(admin: httpx.AsyncClient) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    ann = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    bob = (await create(admin, "/v1/partners", partner_body(name="Bob")))["partner_id"]
    code = f"RUN{offer_id[:6]}"
    ok = await admin.put(f"/v1/offers/{offer_id}/partners/{ann}",
                         json={"approved": True, "coupon_codes": [code]})
    assert ok.status_code == 200

    taken = await admin.put(f"/v1/offers/{offer_id}/partners/{bob}",
                            json={"approved": True, "coupon_codes": [code.lower()]})
    assert_error(taken, 409, "coupon_code_taken", "coupon_codes")
    released = await admin.put(f"/v1/offers/{offer_id}/partners/{ann}", json={"approved": True})
    assert released.status_code == 200
    moved = await admin.put(f"/v1/offers/{offer_id}/partners/{bob}",
                            json={"approved": True, "coupon_codes": [code.lower()]})
    assert moved.status_code == 200 and moved.json()["coupon_codes"] == [code.lower()]


async def test_tracking_link_points_at_the_tracking_service_even_before_approval(
    admin: httpx.AsyncClient,
) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    response = await admin.get(f"/v1/offers/{offer_id}/partners/{partner_id}/tracking-link")
    assert response.status_code == 200
    assert response.json() == {"url": f"{TRACKING_URL}/c/{offer_id}/{partner_id}"}


async def test_unknown_offer_or_partner_is_not_found_naming_which(admin: httpx.AsyncClient) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    nobody = "0" * 32
    assert_error(await admin.put(f"/v1/offers/{nobody}/partners/{partner_id}", json={"approved": True}),
                 404, "offer_not_found")
    assert_error(await admin.put(f"/v1/offers/{offer_id}/partners/{nobody}", json={"approved": True}),
                 404, "partner_not_found")
    # An offer's id is not a partner's, and a malformed id is simply unknown.
    assert_error(await admin.put(f"/v1/offers/{offer_id}/partners/{offer_id}", json={"approved": True}),
                 404, "partner_not_found")
    assert_error(await admin.get(f"/v1/partners/{partner_id.upper()}"), 404, "partner_not_found")
    assert_error(await admin.get("/v1/offers/not-an-id"), 404, "offer_not_found")
    assert_error(await admin.get(f"/v1/partners/{partner_id}%0A"), 404, "partner_not_found")
    assert_error(await admin.get(f"/v1/offers/{nobody}/partners/{partner_id}/tracking-link"),
                 404, "offer_not_found")
    assert_error(await admin.get(f"/v1/offers/{offer_id}/partners/{partner_id}"),
                 404, "relationship_not_found")
    assert_error(await admin.post(f"/v1/partners/{nobody}/status", json={"status": "active"}),
                 404, "partner_not_found")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"email": "ann@deals.example"}, "invalid_request", "name"),
        (partner_body(name="  "), "invalid_name", "name"),
        (partner_body(email="ann-at-deals"), "invalid_email", "email"),
        (partner_body(status="suspended"), "invalid_status", "status"),
        (partner_body(status="asleep"), "invalid_request", "status"),
        (partner_body(billing={"currency": "USD", "frequency": "daily"}),
         "invalid_request", "billing.frequency"),
        (partner_body(billing={"currency": "US"}), "invalid_currency", "billing.currency"),
        (partner_body(billing={"currency": "USD", "conversion": "daily"}), "invalid_request",
         "billing.conversion"),
        (partner_body(nickname="ann"), "invalid_request", "nickname"),
    ],
)
async def test_invalid_partners_are_refused_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await admin.post("/v1/partners", json=body), 422, code, field)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (offer_body(destination_url="ftp://x"), "invalid_url", "destination_url"),
        (offer_body(fallback_url="/sorry"), "invalid_url", "fallback_url"),
        (offer_body(payout={"type": "cpa", "amount": "-1"}), "invalid_amount", "payout.amount"),
        (offer_body(payout={"type": "cps"}), "invalid_terms", "payout.percent"),
        (offer_body(payout={"type": "cps", "percent": "101"}), "invalid_amount", "payout.percent"),
        (offer_body(payout={"type": "cpl", "amount": "1"}), "invalid_request", "payout.type"),
        (offer_body(payout={"type": "cpa", "amount": "lots"}), "invalid_request", "payout.amount"),
        (offer_body(payout={"type": "cpa", "amount": "NaN"}), "invalid_request", "payout.amount"),
        (offer_body(revenue={"type": "cpa_cps", "amount": "1"}), "invalid_terms", "revenue.percent"),
        (offer_body(currency="dollars"), "invalid_currency", "currency"),
        (offer_body(attribution_window_days=0), "invalid_attribution_window", "attribution_window_days"),
        (offer_body(attribution_window_days=366), "invalid_attribution_window", "attribution_window_days"),
        (offer_body(status="deleted"), "invalid_status", "status"),
        (offer_body(visibility="secret"), "invalid_request", "visibility"),
        (offer_body(caps={"daily": 10}), "invalid_request", "caps"),
        (offer_body(max_sale_amount="0"), "invalid_amount", "max_sale_amount"),
        (offer_body(max_payout="-5"), "invalid_amount", "max_payout"),
        (offer_body(max_payout="lots"), "invalid_request", "max_payout"),
        (offer_body(over_limit_action="shrug"), "invalid_request", "over_limit_action"),
        (offer_body(unique_click_hours=0), "invalid_unique_click_hours", "unique_click_hours"),
        (offer_body(unique_click_hours=721), "invalid_unique_click_hours", "unique_click_hours"),
        (offer_body(unique_click_hours="24"), "invalid_request", "unique_click_hours"),
        (offer_body(conversion_security={"pixel_review": "no"}), "invalid_request",
         "conversion_security.pixel_review"),
        ({k: v for k, v in offer_body().items() if k != "payout"}, "invalid_request", "payout"),
    ],
)
async def test_invalid_offers_are_refused_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await admin.post("/v1/offers", json=body), 422, code, field)


async def test_invalid_relationships_are_refused_naming_the_field(admin: httpx.AsyncClient) -> None:
    offer_id = (await create(admin, "/v1/offers", offer_body()))["offer_id"]
    partner_id = (await create(admin, "/v1/partners", partner_body()))["partner_id"]
    path = f"/v1/offers/{offer_id}/partners/{partner_id}"
    cases = [
        ({}, "invalid_request", "approved"),
        ({"approved": "yes"}, "invalid_request", "approved"),
        ({"approved": True, "payout": {"type": "cpa"}}, "invalid_terms", "payout.amount"),
        ({"approved": True, "revenue": {"type": "cpc", "amount": "-0.10"}},
         "invalid_amount", "revenue.amount"),
        ({"approved": True, "coupon_codes": ["TWO WORDS"]}, "invalid_coupon_code", "coupon_codes"),
        ({"approved": True, "postback_url": "partner.example/pb"}, "invalid_url", "postback_url"),
    ]
    for body, code, field in cases:
        assert_error(await admin.put(path, json=body), 422, code, field)
    assert_error(await admin.get(path), 404, "relationship_not_found")


async def test_malformed_json_is_a_422_not_a_crash(admin: httpx.AsyncClient) -> None:
    for content in (b"{not json", b"[]", b""):
        response = await admin.post("/v1/offers", content=content,
                                    headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (content, response.text)
        assert response.json()["error"]["code"] == "invalid_request"


async def test_admin_routes_need_the_admin_bearer_token(partners_service: RunningPartners) -> None:
    async with httpx.AsyncClient(base_url=partners_service.base_url) as anonymous:
        assert_error(await anonymous.post("/v1/partners", json=partner_body()), 401, "unauthorized")
        assert_error(await anonymous.get("/v1/offers/" + "0" * 32), 401, "unauthorized")
        wrong = {"Authorization": "Bearer not-the-token"}
        refused = await anonymous.post("/v1/offers", json=offer_body(), headers=wrong)
        assert_error(refused, 401, "unauthorized")
        assert_error(await anonymous.get("/v1/partners/" + "0" * 32, headers=wrong), 401, "unauthorized")
        assert (await anonymous.get("/healthz")).status_code == 200


async def test_each_offer_gets_its_own_postback_token_shown_only_on_creation(
    admin: httpx.AsyncClient,
) -> None:
    first = await create(admin, "/v1/offers", offer_body())
    second = await create(admin, "/v1/offers", offer_body())
    assert first["postback_token"] != second["postback_token"]
    path = f"/v1/offers/{first['offer_id']}"
    reads = [await admin.get(path), await admin.get("/v1/offers", params={"q": first["offer_id"]}),
             await admin.patch(path, json={"name": "Renamed"}),
             await admin.post(f"{path}/status", json={"status": "paused"})]
    for read in reads:
        assert read.status_code == 200, read.text
        assert "postback_token" not in read.text and first["postback_token"] not in read.text


async def test_allowed_ips_are_kept_canonical_and_garbage_is_refused(admin: httpx.AsyncClient) -> None:
    security = {"allowed_ips": ["203.0.113.7", "198.51.100.0/24", "2001:db8::1"], "pixel_allowed": True}
    offer = await create(admin, "/v1/offers", offer_body(conversion_security=security))
    assert offer["conversion_security"] == {
        "token_required": True, "allowed_ips": ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::1/128"],
        "pixel_allowed": True, "pixel_review": True, "previous_token_valid_until": None,
    }
    garbage = offer_body(conversion_security={"allowed_ips": ["10.0.0.300"]})
    response = await admin.post("/v1/offers", json=garbage)
    assert_error(response, 422, "invalid_ip", "conversion_security.allowed_ips")


@pytest.mark.parametrize("destination", [
    "https://{sub1}.shop.example/", "https://shop.example{sub2}/x", "https://{transaction_id}/",
])
async def test_a_macro_in_the_destination_host_is_refused(admin: httpx.AsyncClient, destination: str) -> None:
    response = await admin.post("/v1/offers", json=offer_body(destination_url=destination))
    assert_error(response, 422, "invalid_url", "destination_url")
