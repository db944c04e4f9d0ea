"""Traffic controls on the running service: deep links only onto the offer's domains,
landing pages by ``url_id`` or by weight, each with the destination's macros filled and
the page recorded on the click; targeting by the visitor's country (its address through
a trusted proxy), device and system (its user agent), a failed rule recorded by name and
the visitor sent to the fallback; fail traffic (a refused click lands, once, on another
offer that takes it, never in a loop) and smart links (the first offer that takes the
visitor, recorded with the link)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tracking_fixtures import (
    RunningTracking,
    approval,
    fresh_id,
    offer_created,
    partner_created,
    tracking_records,
)

from afflux_contracts import (
    AllowDeny,
    Cap,
    CapMetric,
    CapPeriod,
    ClickOutcome,
    ClickRecorded,
    FailTraffic,
    ImpressionRecorded,
    LandingPage,
    OfferStatus,
    RoutedOffer,
    SmartLinkSet,
    Targeting,
    Visibility,
)
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.http import TrustedProxies
from afflux_tracking.adapters.visitor_profiles import VisitorProfiles
from afflux_tracking.application.intake import Intake
from afflux_tracking.entrypoints.http import create_app

DESTINATION = "https://shop.example/land?tid={transaction_id}&s1={sub1}"
FALLBACK = "https://shop.example/more"
SPRING = LandingPage(id="spring", name="Spring", url="https://shop.example/spring?tid={transaction_id}",
                     weight=3)
AUTUMN = LandingPage(id="autumn", name="Autumn", url="https://shop.example/autumn?tid={transaction_id}",
                     weight=1)
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
IN_GB, IN_BR = "81.2.69.160", "200.160.2.3"
HIDDEN = LandingPage(id="hidden", name="Hidden", url="https://m.shop.example/h?tid={transaction_id}",
                     weight=0)


async def link(tracking: RunningTracking, **offer: Any) -> str:
    """An approved link to a new offer with ``offer``'s extra fields."""
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    created = offer_created(offer_id, DESTINATION, fallback_url=FALLBACK).model_copy(update=offer)
    await tracking.partners.publish(created, partner_created(partner_id), approval(offer_id, partner_id))
    return f"/c/{offer_id}/{partner_id}"


async def clicks(tracking: RunningTracking, transaction_ids: list[str]) -> list[ClickRecorded]:
    wanted = set(transaction_ids)
    records = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ClickRecorded) and p.transaction_id in wanted)
    by_id = {record.payload.transaction_id: record.payload for record in records}
    return [by_id[transaction_id] for transaction_id in transaction_ids]


async def test_a_deep_link_onto_an_allowed_domain_gets_the_visitor_with_its_macros_filled(
    tracking: RunningTracking,
) -> None:
    path = await link(tracking, deep_link_domains=("shop.example",))
    deep = "https://blog.shop.example/review/42?tid={transaction_id}&s={sub1}"

    response = await tracking.client.get(path, params={"url": deep, "sub1": "a&b"})

    assert response.status_code == 302
    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    expected = f"https://blog.shop.example/review/42?tid={transaction_id}&s=a%26b"
    assert response.headers["Location"] == expected
    [click] = await clicks(tracking, [transaction_id])
    assert (click.outcome, click.redirect_url, click.deep_link, click.landing_page_id) == (
        ClickOutcome.VALID, expected, True, None)


async def test_no_url_sends_a_visitor_off_the_offers_domains(tracking: RunningTracking) -> None:
    """Another host, user information before the host, a scheme-relative or script URL,
    a look-alike host: each is ignored and the visitor lands on the offer's destination."""
    path = await link(tracking, deep_link_domains=("allowed.com",))
    attempts = ["https://evil.com/", "https://allowed.com@evil.com/", "https://allowed.com:443@evil.com/",
                "//evil.com/", "javascript:alert(1)//allowed.com", "https://evil-allowed.com/",
                "https://allowed.com.evil.com/", "https://evil.com\\@allowed.com/", "https:evil.com"]
    responses = [await tracking.client.get(path, params={"url": url, "sub1": "x"}) for url in attempts]

    for url, response in zip(attempts, responses, strict=True):
        transaction_id = response.headers["X-Afflux-Transaction-Id"]
        assert response.status_code == 302, url
        assert response.headers["Location"] == f"https://shop.example/land?tid={transaction_id}&s1=x", url
    recorded = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in responses])
    assert {(c.outcome, c.deep_link) for c in recorded} == {(ClickOutcome.VALID, False)}


async def test_the_landing_page_a_link_names_is_where_it_lands_and_is_recorded(
    tracking: RunningTracking,
) -> None:
    path = await link(tracking, landing_pages=(SPRING, AUTUMN, HIDDEN))

    response = await tracking.client.get(path, params={"url_id": "hidden"})

    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    assert response.headers["Location"] == f"https://m.shop.example/h?tid={transaction_id}"
    [click] = await clicks(tracking, [transaction_id])
    assert (click.landing_page_id, click.redirect_url) == ("hidden", response.headers["Location"])


async def test_landing_pages_are_rotated_by_weight_when_the_link_names_none(
    tracking: RunningTracking,
) -> None:
    path = await link(tracking, landing_pages=(SPRING, AUTUMN, HIDDEN))

    responses = [await tracking.client.get(path) for _ in range(200)]

    pages = Counter(r.headers["Location"].split("?")[0] for r in responses)
    assert set(pages) == {"https://shop.example/spring", "https://shop.example/autumn"}  # never weight 0
    assert 0.62 <= pages["https://shop.example/spring"] / 200 <= 0.88  # 3:1, more than 4 sd either side


@pytest.fixture(scope="module")
async def balancer(tracking: RunningTracking) -> AsyncIterator[httpx.AsyncClient]:
    """The service's view and log behind a trusted load balancer (the in-memory transport's
    peer), with the visitor profiles the process uses: each request's client address is
    the one the balancer forwards."""
    partners_log = LogCatchUp(tracking.store, "afflux.partners.v1", tracking.bootstrap)
    intake = Intake(tracking.routing.view, tracking.partners.publisher, partners_log,
                    profiles=VisitorProfiles())
    app = create_app(intake, _ready, TrustedProxies.parse("127.0.0.0/8"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client
    finally:
        await partners_log.stop()


async def _ready() -> bool:
    return True


async def visit(balancer: httpx.AsyncClient, path: str, address: str, user_agent: str = WINDOWS,
                **params: str) -> httpx.Response:
    return await balancer.get(path, params={"sub1": "x", **params},
                              headers={"User-Agent": user_agent, "X-Forwarded-For": address})


async def test_a_click_from_a_country_the_offer_does_not_take_goes_to_the_fallback_with_the_reason(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    path = await link(tracking, targeting=Targeting(countries=AllowDeny(allow=("GB",))))

    taken = await visit(balancer, path, IN_GB)
    refused = await visit(balancer, path, IN_BR)

    assert taken.headers["Location"].startswith("https://shop.example/land?tid=")
    assert (refused.status_code, refused.headers["Location"]) == (302, FALLBACK)
    gb, br = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (taken, refused)])
    assert (gb.outcome, gb.reason, gb.country, gb.ip) == (ClickOutcome.VALID, None, "GB", IN_GB)
    assert (br.outcome, br.reason, br.country, br.redirect_url) == (
        ClickOutcome.TARGETING, "countries", "BR", FALLBACK)


async def test_a_click_from_a_device_or_system_the_offer_does_not_take_is_refused_by_that_rule(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    path = await link(tracking, targeting=Targeting(devices=AllowDeny(deny=("tablet",)),
                                                    operating_systems=AllowDeny(allow=("ios", "android"))))

    phone = await visit(balancer, path, IN_GB, IPHONE)
    desktop = await visit(balancer, path, IN_GB, WINDOWS)

    assert phone.headers["Location"].startswith("https://shop.example/land?tid=")
    assert desktop.headers["Location"] == FALLBACK
    iphone, windows = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (phone, desktop)])
    assert (iphone.outcome, iphone.device, iphone.os, iphone.browser) == (
        ClickOutcome.VALID, "mobile", "ios", "safari")
    assert (windows.outcome, windows.reason, windows.device, windows.os, windows.browser) == (
        ClickOutcome.TARGETING, "operating_systems", "desktop", "windows", "chrome")


async def test_a_refused_visitor_of_an_offer_without_fallback_is_told_why_and_still_recorded(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    path = await link(tracking, fallback_url=None, targeting=Targeting(countries=AllowDeny(deny=("BR",))))

    response = await visit(balancer, path, IN_BR, url="https://shop.example/deep")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "targeting"
    [click] = await clicks(tracking, [response.headers["X-Afflux-Transaction-Id"]])
    assert (click.outcome, click.reason, click.redirect_url, click.deep_link) == (
        ClickOutcome.TARGETING, "countries", None, False)


async def test_an_impression_from_a_visitor_the_offer_does_not_take_is_recorded_as_refused(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    path = await link(tracking, targeting=Targeting(countries=AllowDeny(allow=("GB",))))
    offer_id = path.split("/")[2]

    shown = [await balancer.get(path.replace("/c/", "/i/"), headers={"User-Agent": IPHONE,
                                                                      "X-Forwarded-For": address})
             for address in (IN_GB, IN_BR)]

    assert [response.status_code for response in shown] == [200, 200]
    records = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ImpressionRecorded) and p.offer_id == offer_id)
    seen = sorted((r.payload.country, r.payload.outcome, r.payload.reason, r.payload.device) for r in records)
    assert seen == [("BR", ClickOutcome.TARGETING, "countries", "mobile"),
                    ("GB", ClickOutcome.VALID, None, "mobile")]


async def offers(tracking: RunningTracking, partner_id: str, *specs: dict[str, Any]) -> list[str]:
    """New offers, one per spec (``approved``: the partner's relationship, default true;
    any other key: a field of the offer), each landing on ``https://<its id>.example/``."""
    ids = [fresh_id("o") for _ in specs]
    events: list[Any] = []
    for offer_id, spec in zip(ids, specs, strict=True):
        fields = {key: value for key, value in spec.items() if key != "approved"}
        events.append(offer_created(offer_id, f"https://{offer_id}.example/?tid={{transaction_id}}",
                                    fallback_url=FALLBACK).model_copy(update=fields))
        if spec.get("approved", True) is not None:
            events.append(approval(offer_id, partner_id, spec.get("approved", True)))
    await tracking.partners.publish(*events)
    return ids


def only_from(country: str) -> Targeting:
    return Targeting(countries=AllowDeny(allow=(country,)))


def failing_over_to(*offer_ids: str) -> FailTraffic:
    return FailTraffic(offers=tuple(RoutedOffer(offer_id=offer_id) for offer_id in offer_ids))


async def new_partner(tracking: RunningTracking) -> str:
    partner_id = fresh_id("p")
    await tracking.partners.publish(partner_created(partner_id))
    return partner_id


def landed_on(response: httpx.Response) -> str:
    """The offer whose page the visitor was sent to (``https://<offer id>.example/``)."""
    return response.headers["Location"].split("//")[1].split(".example")[0]


async def test_a_paused_offers_click_lands_once_on_the_first_fail_traffic_offer_the_partner_may_run(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    unapproved, taking, second = await offers(tracking, partner_id, {"approved": False}, {}, {})
    rerouted = failing_over_to(unapproved, taking, second)
    [paused] = await offers(tracking, partner_id, {"status": OfferStatus.PAUSED, "fail_traffic": rerouted})

    response = await visit(balancer, f"/c/{paused}/{partner_id}", IN_GB)

    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    assert (response.status_code, landed_on(response)) == (302, taking)
    assert transaction_id.endswith(taking)  # a postback on it is checked against the offer it landed on
    [click] = await clicks(tracking, [transaction_id])
    assert (click.offer_id, click.outcome, click.rerouted_from, click.rerouted_outcome, click.unique) == (
        taking, ClickOutcome.VALID, paused, ClickOutcome.OFFER_PAUSED, True)
    on_paused = await tracking_records(tracking.bootstrap,
                                       lambda p: isinstance(p, ClickRecorded) and p.offer_id == paused)
    assert on_paused == []  # one click, on the offer it landed on


async def test_a_visitor_the_offer_does_not_target_goes_to_a_fail_traffic_offer_that_takes_it(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    [brazil] = await offers(tracking, partner_id, {"targeting": only_from("BR")})
    [uk_only] = await offers(tracking, partner_id, {"targeting": only_from("GB"),
                                                    "fail_traffic": failing_over_to(brazil)})

    from_gb = await visit(balancer, f"/c/{uk_only}/{partner_id}", IN_GB)
    from_br = await visit(balancer, f"/c/{uk_only}/{partner_id}", IN_BR, url_id="spring")

    assert (landed_on(from_gb), landed_on(from_br)) == (uk_only, brazil)
    gb, br = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (from_gb, from_br)])
    assert (gb.offer_id, gb.rerouted_from, gb.reason) == (uk_only, None, None)
    assert (br.offer_id, br.outcome, br.rerouted_from, br.rerouted_outcome, br.reason, br.country) == (
        brazil, ClickOutcome.VALID, uk_only, ClickOutcome.TARGETING, "countries", "BR")


async def test_an_unapproved_partner_or_a_click_over_the_cap_is_rerouted_by_weight(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    [other] = await offers(tracking, partner_id, {})
    weighted = FailTraffic(mode="weight", offers=(RoutedOffer(offer_id=other, weight=2),))
    cap = Cap(metric=CapMetric.CLICKS, period=CapPeriod.DAY, limit=1)
    refused, capped = await offers(tracking, partner_id, {"approved": False, "fail_traffic": weighted},
                                   {"caps": (cap,), "fail_traffic": weighted})

    not_approved = await visit(balancer, f"/c/{refused}/{partner_id}", IN_GB)
    first, over = [await visit(balancer, f"/c/{capped}/{partner_id}", IN_GB) for _ in range(2)]

    assert [landed_on(r) for r in (not_approved, first, over)] == [other, capped, other]
    recorded = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (not_approved, over)])
    assert [(c.offer_id, c.rerouted_from, c.rerouted_outcome) for c in recorded] == [
        (other, refused, ClickOutcome.PARTNER_NOT_APPROVED), (other, capped, ClickOutcome.OVER_CAP)]


async def test_fail_traffic_never_loops_and_a_listed_offers_own_fail_traffic_is_not_followed(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    a, b = fresh_id("o"), fresh_id("o")
    paused = {"status": OfferStatus.PAUSED}
    [spare] = await offers(tracking, partner_id, {})
    await tracking.partners.publish(
        offer_created(a, "https://a.example/", fallback_url=FALLBACK, **paused).model_copy(
            update={"fail_traffic": failing_over_to(b)}),
        offer_created(b, "https://b.example/", fallback_url="https://b.example/sorry", **paused).model_copy(
            update={"fail_traffic": failing_over_to(a, spare)}),
        approval(a, partner_id), approval(b, partner_id))

    response = await visit(balancer, f"/c/{a}/{partner_id}", IN_GB)

    assert (response.status_code, response.headers["Location"]) == (302, FALLBACK)  # a's own, never spare
    [click] = await clicks(tracking, [response.headers["X-Afflux-Transaction-Id"]])
    assert (click.offer_id, click.outcome, click.rerouted_from) == (a, ClickOutcome.OFFER_PAUSED, None)


async def test_a_bot_on_a_refusing_offer_is_not_rerouted(tracking: RunningTracking) -> None:
    partner_id = await new_partner(tracking)
    [spare] = await offers(tracking, partner_id, {})
    [paused] = await offers(tracking, partner_id, {"status": OfferStatus.PAUSED,
                                                   "fail_traffic": failing_over_to(spare)})

    crawler = {"User-Agent": "facebookexternalhit/1.1"}
    response = await tracking.client.get(f"/c/{paused}/{partner_id}", headers=crawler)

    assert response.headers["Location"] == FALLBACK
    [click] = await clicks(tracking, [response.headers["X-Afflux-Transaction-Id"]])
    assert (click.offer_id, click.outcome, click.rerouted_from) == (paused, ClickOutcome.OFFER_PAUSED, None)


async def smart_link(tracking: RunningTracking, *offers_: RoutedOffer,
                     fallback_url: str | None = None) -> str:
    smart_link_id = fresh_id("s")
    await tracking.partners.publish(SmartLinkSet(smart_link_id=smart_link_id, name="Mix", offers=offers_,
                                                 fallback_url=fallback_url))
    return smart_link_id


async def test_a_smart_link_sends_each_visitor_to_the_first_offer_whose_targeting_matches(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    uk_only, anyone = await offers(tracking, partner_id,
                                   {"targeting": only_from("GB")}, {})
    link_id = await smart_link(tracking, RoutedOffer(offer_id=uk_only),
                               RoutedOffer(offer_id=anyone, priority=2))

    from_gb = await visit(balancer, f"/s/{link_id}/{partner_id}", IN_GB)
    from_br = await visit(balancer, f"/s/{link_id}/{partner_id}", IN_BR)

    assert (landed_on(from_gb), landed_on(from_br)) == (uk_only, anyone)
    gb, br = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (from_gb, from_br)])
    assert [(c.offer_id, c.outcome, c.smart_link_id, c.country) for c in (gb, br)] == [
        (uk_only, ClickOutcome.VALID, link_id, "GB"), (anyone, ClickOutcome.VALID, link_id, "BR")]
    assert from_gb.headers["X-Afflux-Transaction-Id"].endswith(uk_only)


async def test_a_smart_links_offers_of_one_priority_share_its_clicks_by_weight(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    heavy, light, private = await offers(tracking, partner_id, {}, {},
                                         {"visibility": Visibility.PRIVATE, "approved": None})
    link_id = await smart_link(tracking, RoutedOffer(offer_id=heavy, weight=3), RoutedOffer(offer_id=light),
                               RoutedOffer(offer_id=private, weight=50))

    responses = [await visit(balancer, f"/s/{link_id}/{partner_id}", IN_GB) for _ in range(200)]

    landed = Counter(landed_on(r) for r in responses)
    assert set(landed) == {heavy, light}  # never the private offer the partner may not run
    assert 0.62 <= landed[heavy] / 200 <= 0.88  # 3:1, more than 4 sd either side


async def test_a_smart_link_no_offer_takes_records_the_first_offers_refusal_and_goes_to_its_fallback(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    uk_only, paused = await offers(tracking, partner_id,
                                   {"targeting": only_from("GB")},
                                   {"status": OfferStatus.PAUSED})
    with_fallback = await smart_link(tracking, RoutedOffer(offer_id=uk_only), RoutedOffer(offer_id=paused),
                                     fallback_url="https://mix.example/sorry")
    without = await smart_link(tracking, RoutedOffer(offer_id=paused))

    refused = await visit(balancer, f"/s/{with_fallback}/{partner_id}", IN_BR)
    nowhere = await visit(balancer, f"/s/{without}/{partner_id}", IN_GB)

    assert (refused.status_code, refused.headers["Location"]) == (302, "https://mix.example/sorry")
    assert (nowhere.status_code, nowhere.headers["Location"]) == (302, FALLBACK)  # its first offer's
    first, second = await clicks(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in (refused, nowhere)])
    assert (first.offer_id, first.outcome, first.reason, first.smart_link_id) == (
        uk_only, ClickOutcome.TARGETING, "countries", with_fallback)
    assert (second.offer_id, second.outcome, second.redirect_url) == (
        paused, ClickOutcome.OFFER_PAUSED, FALLBACK)


async def test_an_unknown_smart_link_or_partner_is_a_404_and_no_click(
    tracking: RunningTracking, balancer: httpx.AsyncClient,
) -> None:
    partner_id = await new_partner(tracking)
    [offer_id] = await offers(tracking, partner_id, {})
    link_id = await smart_link(tracking, RoutedOffer(offer_id=offer_id))

    unknown_link = await visit(balancer, f"/s/{fresh_id('s')}/{partner_id}", IN_GB)
    unknown_partner = await visit(balancer, f"/s/{link_id}/{fresh_id('p')}", IN_GB)

    assert (unknown_link.status_code, unknown_link.json()["error"]["message"]) == (
        404, "this smart link does not exist")
    assert (unknown_partner.status_code, unknown_partner.json()["error"]["message"]) == (
        404, "this tracking link's partner does not exist")


async def test_a_bot_on_a_smart_link_is_recorded_on_its_first_offer_and_sent_to_the_fallback(
    tracking: RunningTracking,
) -> None:
    partner_id = await new_partner(tracking)
    [offer_id] = await offers(tracking, partner_id, {})
    link_id = await smart_link(tracking, RoutedOffer(offer_id=offer_id), fallback_url="https://mix.example/")

    response = await tracking.client.get(f"/s/{link_id}/{partner_id}",
                                         headers={"User-Agent": "facebookexternalhit/1.1"})

    assert (response.status_code, response.headers["Location"]) == (302, "https://mix.example/")
    [click] = await clicks(tracking, [response.headers["X-Afflux-Transaction-Id"]])
    assert (click.offer_id, click.outcome, click.smart_link_id) == (offer_id, ClickOutcome.BOT, link_id)

