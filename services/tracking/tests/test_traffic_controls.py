"""Traffic controls on the running service: deep links only onto the offer's domains,
landing pages by ``url_id`` or by weight, each with the destination's macros filled and
the page recorded on the click; targeting by the visitor's country (its address through
a trusted proxy), device and system (its user agent), a failed rule recorded by name and
the visitor sent to the fallback."""

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
    ClickOutcome,
    ClickRecorded,
    ImpressionRecorded,
    LandingPage,
    Targeting,
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
