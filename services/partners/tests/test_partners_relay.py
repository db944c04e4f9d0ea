"""What reaches ``afflux.partners.v1``: every change made through the API, published by
the outbox relay as contract events, in order per key, once."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from partners_fixtures import (
    ADMIN_TOKEN,
    Published,
    RunningPartners,
    offer_body,
    partner_body,
    published_until,
)

from afflux_contracts import (
    Envelope,
    Event,
    OfferCreated,
    PartnerCreated,
    PartnerStatusChanged,
    RelationshipSet,
)


def about(*ids: str) -> Any:
    """Records whose payload names one of ``ids`` as its partner or offer."""
    def mine(envelope: Envelope[Event]) -> bool:
        payload = envelope.payload
        return getattr(payload, "partner_id", None) in ids or getattr(payload, "offer_id", None) in ids
    return mine


def of_key(records: list[Published], key: str) -> list[Published]:
    return [r for r in records if r.key == key]


async def test_every_change_is_published_with_contract_fields_in_order_per_key(
    admin: httpx.AsyncClient, kafka_bootstrap: str,
) -> None:
    partner = (await admin.post("/v1/partners", json=partner_body(
        type="coupon_site", tags=["deals"], billing={"currency": "USD", "minimum_payout": "25.00"},
    ))).json()
    offer = (await admin.post("/v1/offers", json=offer_body(
        revenue={"type": "cps", "percent": "10"}, attribution_window_days=14,
    ))).json()
    pid, oid = partner["partner_id"], offer["offer_id"]
    relationship = f"/v1/offers/{oid}/partners/{pid}"
    steps = [
        admin.post(f"/v1/partners/{pid}/status", json={"status": "inactive"}),
        admin.post(f"/v1/offers/{oid}/status", json={"status": "paused"}),
        admin.put(relationship, json={"approved": False, "coupon_codes": [f"D{pid[:8]}"]}),
        admin.put(relationship, json={"approved": False, "coupon_codes": [f"D{pid[:8]}"]}),  # no change
        admin.put(relationship, json={"approved": True, "payout": {"type": "cpa", "amount": "15"},
                                      "postback_url": "https://p.example/pb?c={sub1}"}),
        admin.post(f"/v1/partners/{pid}/status", json={"status": "active"}),
    ]
    for step in steps:
        assert (await step).status_code == 200

    def last_change_arrived(records: list[Published]) -> bool:
        return any(isinstance(r.envelope.payload, PartnerStatusChanged)
                   and r.envelope.payload.status == "active" for r in records)

    records = await published_until(kafka_bootstrap, about(pid, oid), last_change_arrived)

    assert all(r.envelope.producer == "partners" for r in records)
    assert len({r.envelope.event_id for r in records}) == len(records) == 7  # once each, no-op PUT: none
    assert all(r.envelope.event_id.version == 7 for r in records)

    partner_events = [r.envelope.payload for r in of_key(records, pid)]
    assert [type(e).__name__ for e in partner_events] == [
        "PartnerCreated", "PartnerStatusChanged", "PartnerStatusChanged"]
    created = partner_events[0]
    assert isinstance(created, PartnerCreated)
    assert created.model_dump(mode="json") == {
        "partner_id": pid, "name": "Ann's Deals", "email": "ann@deals.example", "type": "coupon_site",
        "status": "active", "tags": ["deals"], "manager": None, "contacts": [], "postback": None,
        "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "25.00", "method": None,
                    "conversion": "none"},
    }
    assert [e.status for e in partner_events[1:]] == ["inactive", "active"]

    offer_events = [r.envelope.payload for r in of_key(records, oid)]
    assert [type(e).__name__ for e in offer_events] == ["OfferCreated", "OfferStatusChanged"]
    assert isinstance(offer_events[0], OfferCreated)
    assert offer_events[0].model_dump(mode="json") == {
        "offer_id": oid, "name": "Running shoes", "destination_url": offer_body()["destination_url"],
        "status": "active", "visibility": "require_approval", "currency": "USD",
        "payout": {"type": "cpa", "amount": "12.50", "percent": None},
        "revenue": {"type": "cps", "amount": None, "percent": "10"},
        "attribution_window_days": 14, "fallback_url": None,
        "events": [{"name": "conversion", "payout": {"type": "cpa", "amount": "12.50", "percent": None},
                    "revenue": {"type": "cps", "amount": None, "percent": "10"}, "allow_duplicates": False,
                    "requires_approval": False, "fires_partner_postback": True, "max_sale_amount": None,
                    "max_payout": None}],
        "caps": [], "tiers": [], "fraud": None, "coupon_precedence": "click_first",
        "conversion_security": {  # the token itself never goes on the log: only its hash
            "token_required": True, "allowed_ips": [], "pixel_allowed": False, "pixel_review": True,
            "token_sha256": hashlib.sha256(offer["postback_token"].encode()).hexdigest(),
        },
        "max_sale_amount": None, "max_payout": None, "over_limit_action": "review", "unique_click_hours": 24,
        "deep_link_domains": [], "landing_pages": [], "targeting": None, "fail_traffic": None,
    }
    assert offer_events[1].status == "paused"

    relationship_events = [r.envelope.payload for r in of_key(records, f"{oid}:{pid}")]
    assert all(isinstance(e, RelationshipSet) for e in relationship_events)
    assert [e.model_dump(mode="json") for e in relationship_events] == [
        {"offer_id": oid, "partner_id": pid, "approved": False, "payout": None, "revenue": None,
         "coupon_codes": [f"D{pid[:8]}"], "postback_url": None, **NO_CUSTOM},
        {"offer_id": oid, "partner_id": pid, "approved": True,
         "payout": {"type": "cpa", "amount": "15", "percent": None}, "revenue": None,
         "coupon_codes": [], "postback_url": "https://p.example/pb?c={sub1}", **NO_CUSTOM},
    ]


NO_CUSTOM = {"events": [], "caps": [], "postback_method": "get", "postback_status_changes": False,
             "application": False, "targeting": None}


async def test_a_restarted_service_resumes_publishing_where_it_left_off(
    database_url: str, kafka_bootstrap: str, group_prefix: str,
) -> None:
    partner_ids: list[str] = []
    service = RunningPartners(database_url, kafka_bootstrap, group_prefix=group_prefix)
    for name in ("Before restart", "After restart"):
        async with service, service.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            response = await client.post("/v1/partners", json=partner_body(name=name))
            partner_ids.append(response.json()["partner_id"])
            await published_until(kafka_bootstrap, about(partner_ids[-1]), bool)
            # What the first run wrote is still readable after the restart.
            assert (await client.get(f"/v1/partners/{partner_ids[0]}")).status_code == 200

    records = await published_until(kafka_bootstrap, about(*partner_ids), lambda r: len(r) >= 2)
    assert sorted(r.envelope.payload.name for r in records) == ["After restart", "Before restart"]
