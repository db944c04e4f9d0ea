"""A partner program using its rules together, over real processes: a two-event offer
with a coupon creator, a conversion cap reached by 16 postbacks at once (exactly the cap
paid), a tier switching mid-month, a fraud hold, a CPC offer paying per click, a
relationship's new payout priced at once although attribution's partners consumer lags
(slowed down on purpose: ``AFFLUX_ATTRIBUTION_PARTNERS_DELAY``), and a smart link's and a
paused offer's fail traffic each sending a click, once, to an offer that converts it, past
offers whose targeting (the offer's, or the partner's relationship's) refuses the visitor."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from afflux_api import POSTBACK_TOKENS, AdminApi, follow_tracking_link, wait_for

from afflux_contracts import ATTRIBUTION, ClickPriced
from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure, read_envelopes

pytestmark = pytest.mark.slow

PARTNERS_DELAY = "0.4"
"""Seconds attribution's partners consumer waits before each partners event."""
CAP = 5
POSTBACKS_AT_ONCE = 16


@pytest.fixture(scope="module")
def platform(infra: SessionInfrastructure, bootstrap_for_platform: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The services as processes, attribution's partners view lagging its log."""
    infrastructure = Infrastructure(database_url=infra.new_database(),
                                    bootstrap_servers=bootstrap_for_platform, kind=infra.server.kind)
    running = Platform(
        infrastructure, ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=tmp_path_factory.mktemp("program-logs"),
        extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"e2e-{secrets.token_hex(4)}",
                   "AFFLUX_ATTRIBUTION_PARTNERS_DELAY": PARTNERS_DELAY},
    )
    try:
        yield running.start()
    finally:
        running.stop()


class Program:
    """The admin API and the advertiser's postbacks, as a user would call them."""

    def __init__(self, platform: Platform) -> None:
        self.platform, self.api = platform, AdminApi(platform)

    def partner(self, name: str) -> str:
        return str(self.api.create_partner(f"{name}{secrets.token_hex(3)}"))

    def offer(self, **fields: Any) -> str:
        offer = self.api.post("partners", "/v1/offers", {
            "name": "Program", "currency": "USD",
            "destination_url": "https://shop.example/landing?tid={transaction_id}&s1={sub1}", **fields})
        POSTBACK_TOKENS[offer["offer_id"]] = offer["postback_token"]
        return str(offer["offer_id"])

    def relationship(self, offer_id: str, partner_id: str, **custom: Any) -> None:
        self.api.put("partners", f"/v1/offers/{offer_id}/partners/{partner_id}", {"approved": True, **custom})

    def click(self, offer_id: str, partner_id: str) -> str:
        return str(follow_tracking_link(self.api.tracking_link(offer_id, partner_id)))

    def postback_params(self, offer_id: str, **params: Any) -> dict[str, Any]:
        return {"currency": "USD", "order_id": f"order-{secrets.token_hex(6)}",
                "token": POSTBACK_TOKENS[offer_id], **params}

    def postback(self, offer_id: str, **params: Any) -> str:
        response = httpx.get(f"{self.platform.url('tracking')}/postback",
                             params=self.postback_params(offer_id, **params))
        assert response.status_code == 200, response.text
        return str(response.json()["conversion_id"])

    def decided(self, conversion_id: str) -> dict[str, Any]:
        def answer() -> dict[str, Any] | None:
            response = self.api.get("attribution", f"/v1/conversions/{conversion_id}")
            body = response.json() if response.status_code == 200 else {}
            return body if "decided_at" in body else None
        return dict(wait_for(answer, timeout=60))


def payout(conversion: dict[str, Any]) -> Decimal | None:
    return Decimal(conversion["payout"]["amount"]) if "payout" in conversion else None


def rule(conversion: dict[str, Any], name: str) -> dict[str, Any]:
    return next(check for check in conversion["trace"] if check["rule"] == name)


@pytest.fixture(scope="module")
def program(platform: Platform) -> Program:
    return Program(platform)


def test_a_two_event_offer_prices_each_event_and_its_coupon_credits_the_creator(
    program: Program,
) -> None:
    site, creator = program.partner("Site"), program.partner("Creator")
    offer_id = program.offer(payout={"type": "cpa", "amount": "2.00"}, coupon_precedence="coupon_first",
                             events=[{"name": "conversion", "payout": {"type": "cpa", "amount": "2.00"}},
                                     {"name": "sale", "payout": {"type": "cps", "percent": "10"},
                                      "revenue": {"type": "cpa", "amount": "1.00"}}])
    program.relationship(offer_id, site)
    program.relationship(offer_id, creator, coupon_codes=["ANNA10"])
    transaction_id = program.click(offer_id, site)

    lead = program.decided(program.postback(offer_id, transaction_id=transaction_id))
    sale = program.decided(program.postback(offer_id, transaction_id=transaction_id, event="sale",
                                            amount="80.00"))
    coupon = program.decided(program.postback(offer_id, coupon_code="anna10", event="sale", amount="50.00"))
    unknown = program.decided(program.postback(offer_id, transaction_id=transaction_id, event="upsell"))

    assert (lead["status"], payout(lead), lead["partner_id"]) == ("approved", Decimal("2.00"), site)
    assert (payout(sale), sale["revenue"]["amount"]) == (Decimal("8.00"), "1.00")
    assert (coupon["partner_id"], payout(coupon)) == (creator, Decimal("5.00"))
    assert coupon["coupon_code"] == "anna10"
    assert (unknown["status"], unknown["reason"]) == ("rejected", "event_not_on_offer")
    assert lead["terms"]["offer_event_id"] and rule(lead, "event")["outcome"] == "passed"


async def test_sixteen_postbacks_at_once_on_a_capped_offer_pay_exactly_the_cap(program: Program) -> None:
    partner_id = program.partner("Capped")
    offer_id = program.offer(payout={"type": "cpa", "amount": "4.00"},
                             caps=[{"metric": "conversions", "period": "day", "limit": str(CAP)}])
    program.relationship(offer_id, partner_id)
    transaction_ids = [program.click(offer_id, partner_id) for _ in range(POSTBACKS_AT_ONCE)]

    async with httpx.AsyncClient(base_url=program.platform.url("tracking"), timeout=30) as client:
        answers = await asyncio.gather(*(
            client.get("/postback", params=program.postback_params(offer_id, transaction_id=tid))
            for tid in transaction_ids))
    assert [a.status_code for a in answers] == [200] * POSTBACKS_AT_ONCE
    decided = [program.decided(a.json()["conversion_id"]) for a in answers]

    paid = [c for c in decided if c["status"] == "approved"]
    over = [c for c in decided if c.get("reason") == "over_cap"]
    assert (len(paid), len(over)) == (CAP, POSTBACKS_AT_ONCE - CAP)
    assert rule(over[0], "cap conversions/day offer")["outcome"] == "failed"
    wait_for(lambda: program.api.accrued(partner_id) == Decimal("4.00") * CAP, timeout=60)


def test_the_tier_payout_applies_once_the_partner_reaches_its_threshold_this_month(
    program: Program,
) -> None:
    partner_id = program.partner("Tiered")
    offer_id = program.offer(payout={"type": "cpa", "amount": "5.00"},
                             tiers=[{"min_conversions": 2, "payout": {"type": "cpa", "amount": "7.50"}}])
    program.relationship(offer_id, partner_id)

    payouts = []
    for _ in range(3):  # one after the other: each sees the ones before it approved
        conversion_id = program.postback(offer_id, transaction_id=program.click(offer_id, partner_id))
        payouts.append(payout(program.decided(conversion_id)))

    assert payouts == [Decimal("5.00"), Decimal("5.00"), Decimal("7.50")]


def test_a_conversion_too_soon_after_its_click_is_held_for_review(program: Program) -> None:
    partner_id = program.partner("Hasty")
    offer_id = program.offer(payout={"type": "cpa", "amount": "3.00"},
                             fraud={"min_seconds_to_convert": 3600, "action": "review"})
    program.relationship(offer_id, partner_id)

    held = program.decided(program.postback(offer_id, transaction_id=program.click(offer_id, partner_id)))

    assert (held["status"], payout(held)) == ("pending", Decimal("3.00"))
    assert rule(held, "fraud_too_fast")["outcome"] == "held"


async def test_each_visitors_valid_click_on_a_cpc_offer_is_priced_on_the_attribution_log(
    program: Program,
) -> None:
    partner_id = program.partner("Clicks")
    offer_id = program.offer(payout={"type": "cpc", "amount": "0.25"})
    program.relationship(offer_id, partner_id)
    link = program.api.tracking_link(offer_id, partner_id)
    clicks = {follow_tracking_link(link, user_agent=f"Mozilla/5.0 visitor-{n}") for n in range(3)}

    async def priced() -> dict[str, ClickPriced]:
        records = await read_envelopes(program.platform.infrastructure.bootstrap_servers,
                                       ATTRIBUTION.name, ATTRIBUTION.partitions)
        return {e.payload.transaction_id: e.payload for _, e in records
                if isinstance(e.payload, ClickPriced) and e.payload.transaction_id in clicks}

    for _ in range(120):
        found = await priced()
        if len(found) == len(clicks):
            break
        await asyncio.sleep(0.5)
    assert set(found) == clicks
    assert {(p.partner_id, p.payout.amount, p.payout.currency) for p in found.values()} == {
        (partner_id, Decimal("0.25"), "USD")}


def test_a_new_relationship_payout_prices_the_next_conversion_although_the_view_lags(
    program: Program,
) -> None:
    partner_id = program.partner("Renegotiated")
    offer_id = program.offer(payout={"type": "cpa", "amount": "5.00"})
    program.relationship(offer_id, partner_id)
    transaction_id = program.click(offer_id, partner_id)

    program.relationship(offer_id, partner_id, payout={"type": "cpa", "amount": "6.25"})
    conversion = program.decided(program.postback(offer_id, transaction_id=transaction_id))

    assert payout(conversion) == Decimal("6.25")
    assert conversion["terms"]["payout_source"] == "relationship"
    assert conversion["terms"]["relationship_event_id"]


def test_a_smart_link_and_a_paused_offers_fail_traffic_land_each_click_on_an_offer_that_converts_it(
    program: Program,
) -> None:
    partner_id = program.partner("Router")
    uk_only = program.offer(payout={"type": "cpa", "amount": "2.00"},
                            targeting={"countries": {"allow": ["GB"]}})  # a loopback visitor has no country
    narrowed = program.offer(payout={"type": "cpa", "amount": "4.00"})  # takes anyone, but not from us
    anyone = program.offer(payout={"type": "cpa", "amount": "3.00"})
    paused = program.offer(payout={"type": "cpa", "amount": "9.00"}, fail_traffic={
        "offers": [{"offer_id": uk_only}, {"offer_id": narrowed}, {"offer_id": anyone}]})
    program.api.post("partners", f"/v1/offers/{paused}/status", {"status": "paused"})
    for offer_id in (uk_only, anyone, paused):
        program.relationship(offer_id, partner_id)
    program.relationship(narrowed, partner_id, targeting={"countries": {"allow": ["GB"]}})
    smart_link = program.api.post("partners", "/v1/smart-links", {
        "name": "Mix", "offers": [{"offer_id": uk_only}, {"offer_id": narrowed},
                                  {"offer_id": anyone, "priority": 2}]})
    response = program.api.get(
        "partners", f"/v1/smart-links/{smart_link['smart_link_id']}/partners/{partner_id}/tracking-link")

    by_smart_link = follow_tracking_link(response.json()["url"])
    rerouted = program.click(paused, partner_id)

    assert by_smart_link.endswith(anyone) and rerouted.endswith(anyone)
    for transaction_id in (by_smart_link, rerouted):
        conversion = program.decided(program.postback(anyone, transaction_id=transaction_id))
        decided = (conversion["status"], conversion["offer_id"], conversion["partner_id"], payout(conversion))
        assert decided == ("approved", anyone, partner_id, Decimal("3.00"))
