"""A relationship's targeting on the running service: it narrows the offer's for that
partner's clicks only, never admits a visitor the offer refuses, and every place that asks
whether an offer takes a click obeys it (the link, an impression, a direct click, fail
traffic and smart links). Visitors come from addresses of known countries through the
trusted proxy header, with user agents of known devices, as in ``test_traffic_controls``."""

from __future__ import annotations

import httpx
from test_traffic_controls import (  # the module's fixtures and helpers, reused
    FALLBACK,
    IN_BR,
    IN_GB,
    IPHONE,
    WINDOWS,
    balancer,  # noqa: F401 (a fixture)
    clicks,
    failing_over_to,
    landed_on,
    new_partner,
    offers,
    smart_link,
    visit,
)
from tracking_fixtures import RunningTracking, approval, tracking_records

from afflux_contracts import (
    AllowDeny,
    ClickOutcome,
    ImpressionRecorded,
    OfferStatus,
    RoutedOffer,
    Targeting,
)

GB_OR_BR = Targeting(countries=AllowDeny(allow=("GB", "BR")))
GB_ONLY = Targeting(countries=AllowDeny(allow=("GB",)))


async def narrow(tracking: RunningTracking, offer_id: str, partner_id: str, targeting: Targeting) -> None:
    """The partner's relationship with the offer: approved, with its own targeting."""
    narrowed = approval(offer_id, partner_id).model_copy(update={"targeting": targeting})
    await tracking.partners.publish(narrowed)


async def test_a_relationship_narrows_the_offers_targeting_for_its_partner_only(
    tracking: RunningTracking, balancer: httpx.AsyncClient,  # noqa: F811
) -> None:
    narrowed, other = await new_partner(tracking), await new_partner(tracking)
    [offer_id] = await offers(tracking, narrowed, {"targeting": GB_OR_BR})
    await tracking.partners.publish(approval(offer_id, other))
    await narrow(tracking, offer_id, narrowed, GB_ONLY)

    from_gb = await visit(balancer, f"/c/{offer_id}/{narrowed}", IN_GB)
    from_br = await visit(balancer, f"/c/{offer_id}/{narrowed}", IN_BR)
    others_from_br = await visit(balancer, f"/c/{offer_id}/{other}", IN_BR)

    assert (landed_on(from_gb), from_br.headers["Location"], landed_on(others_from_br)) == (
        offer_id, FALLBACK, offer_id)
    gb, br, others = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"]
                                             for r in (from_gb, from_br, others_from_br)])
    assert [(c.outcome, c.reason, c.country) for c in (gb, br, others)] == [
        (ClickOutcome.VALID, None, "GB"), (ClickOutcome.TARGETING, "relationship_countries", "BR"),
        (ClickOutcome.VALID, None, "BR")]


async def test_a_relationship_never_admits_a_visitor_the_offer_refuses(
    tracking: RunningTracking, balancer: httpx.AsyncClient,  # noqa: F811
) -> None:
    partner_id = await new_partner(tracking)
    [offer_id] = await offers(tracking, partner_id, {"targeting": GB_ONLY})
    await narrow(tracking, offer_id, partner_id, Targeting(countries=AllowDeny(allow=("BR",))))

    from_br = await visit(balancer, f"/c/{offer_id}/{partner_id}", IN_BR)
    from_gb = await visit(balancer, f"/c/{offer_id}/{partner_id}", IN_GB)

    br, gb = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (from_br, from_gb)])
    assert (br.outcome, br.reason) == (ClickOutcome.TARGETING, "countries")  # the offer's refusal stands
    assert (gb.outcome, gb.reason) == (ClickOutcome.TARGETING, "relationship_countries")


async def test_a_relationships_device_rule_refuses_impressions_and_direct_clicks_too(
    tracking: RunningTracking, balancer: httpx.AsyncClient,  # noqa: F811
) -> None:
    partner_id = await new_partner(tracking)
    [offer_id] = await offers(tracking, partner_id, {})
    await narrow(tracking, offer_id, partner_id, Targeting(devices=AllowDeny(allow=("mobile",))))
    body = {"offer_id": offer_id, "partner_id": partner_id}
    from_gb = {"X-Forwarded-For": IN_GB}

    phone = await visit(balancer, f"/c/{offer_id}/{partner_id}", IN_GB, IPHONE)
    desktop = await visit(balancer, f"/c/{offer_id}/{partner_id}", IN_GB, WINDOWS)
    direct = await balancer.post("/v1/clicks", json=body, headers={"User-Agent": WINDOWS, **from_gb})
    for user_agent in (IPHONE, WINDOWS):
        await balancer.get(f"/i/{offer_id}/{partner_id}", headers={"User-Agent": user_agent, **from_gb})

    assert (landed_on(phone), desktop.headers["Location"]) == (offer_id, FALLBACK)
    assert direct.json()["outcome"] == "targeting"
    refused = await clicks(tracking, [desktop.headers["X-Afflux-Transaction-Id"],
                                      direct.json()["transaction_id"]])
    assert [(c.outcome, c.reason, c.device) for c in refused] == [
        (ClickOutcome.TARGETING, "relationship_devices", "desktop")] * 2
    records = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ImpressionRecorded) and p.offer_id == offer_id)
    assert sorted((r.payload.device, r.payload.outcome, r.payload.reason) for r in records) == [
        ("desktop", ClickOutcome.TARGETING, "relationship_devices"), ("mobile", ClickOutcome.VALID, None)]


async def test_fail_traffic_and_smart_links_skip_an_offer_the_relationship_narrows_away(
    tracking: RunningTracking, balancer: httpx.AsyncClient,  # noqa: F811
) -> None:
    """The first candidate takes everyone but this partner's relationship takes only the UK:
    a visitor from Brazil goes to the next one, on a paused offer's fail traffic as on a
    smart link."""
    partner_id = await new_partner(tracking)
    uk_for_partner, anyone = await offers(tracking, partner_id, {}, {})
    await narrow(tracking, uk_for_partner, partner_id, GB_ONLY)
    [paused] = await offers(tracking, partner_id, {"status": OfferStatus.PAUSED,
                                                   "fail_traffic": failing_over_to(uk_for_partner, anyone)})
    link_id = await smart_link(tracking, RoutedOffer(offer_id=uk_for_partner),
                               RoutedOffer(offer_id=anyone, priority=2))

    rerouted = [await visit(balancer, f"/c/{paused}/{partner_id}", address) for address in (IN_GB, IN_BR)]
    chosen = [await visit(balancer, f"/s/{link_id}/{partner_id}", address) for address in (IN_GB, IN_BR)]

    assert [landed_on(r) for r in rerouted] == [uk_for_partner, anyone]
    assert [landed_on(r) for r in chosen] == [uk_for_partner, anyone]
    recorded = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (*rerouted, *chosen)])
    assert [(c.offer_id, c.outcome, c.country) for c in recorded] == [
        (uk_for_partner, ClickOutcome.VALID, "GB"), (anyone, ClickOutcome.VALID, "BR")] * 2
