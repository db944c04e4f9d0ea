"""Tracking at full strength on the running service: first clicks on fresh links, bots and
prefetches, unique clicks, impressions, direct linking, and what bad input gets."""

from __future__ import annotations

import asyncio

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
    ClickMethod,
    ClickOutcome,
    ClickRecorded,
    Envelope,
    ImpressionRecorded,
    OfferStatus,
    OfferStatusChanged,
    Visibility,
    derived_visitor_id,
)
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.http import TrustedProxies
from afflux_tracking.application.intake import Intake
from afflux_tracking.entrypoints.http import create_app

DESTINATION = "https://shop.example/land?tid={transaction_id}&s1={sub1}"
FALLBACK = "https://shop.example/more"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}


async def approved_link(tracking: RunningTracking, **offer: object) -> tuple[str, str]:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(
        offer_created(offer_id, DESTINATION, fallback_url=FALLBACK, **offer),  # type: ignore[arg-type]
        partner_created(partner_id), approval(offer_id, partner_id))
    return offer_id, partner_id


async def click_on_log(tracking: RunningTracking, transaction_id: str) -> ClickRecorded:
    [click] = await clicks_on_log(tracking, [transaction_id])
    return click


async def clicks_on_log(tracking: RunningTracking, transaction_ids: list[str]) -> list[ClickRecorded]:
    """The clicks of these transaction ids, in that order (one read of the topic)."""
    wanted = set(transaction_ids)
    records = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ClickRecorded) and p.transaction_id in wanted)
    by_id = {record.payload.transaction_id: record.payload for record in records}
    assert len(records) == len(wanted), "each click is on the log once"
    return [by_id[transaction_id] for transaction_id in transaction_ids]


async def test_clicks_on_a_link_approved_a_moment_ago_go_to_the_offer(tracking: RunningTracking) -> None:
    """The approval is on the log, but the view has not been told to wait for it: the
    tracker catches up with the partners log before it would refuse the link."""
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    events = [offer_created(offer_id, DESTINATION), partner_created(partner_id),
              approval(offer_id, partner_id)]
    for event in events:  # on the log (acks=all), but we do not wait for the view
        await tracking.partners.publisher.publish(Envelope.wrap(event, producer="test"))

    responses = await asyncio.gather(*(
        tracking.client.get(f"/c/{offer_id}/{partner_id}", headers=BROWSER) for _ in range(16)))

    assert [r.status_code for r in responses] == [302] * 16
    assert all(r.headers["Location"].startswith("https://shop.example/land?tid=") for r in responses)


async def test_a_link_unpaused_a_moment_ago_goes_to_the_offer(tracking: RunningTracking) -> None:
    offer_id, partner_id = await approved_link(tracking, status=OfferStatus.PAUSED)
    await tracking.partners.publisher.publish(Envelope.wrap(
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.ACTIVE), producer="test"))

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}", headers=BROWSER)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example/land")


@pytest.mark.parametrize(("headers", "method", "outcome"), [
    ({"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, "GET",
     ClickOutcome.BOT),
    ({"User-Agent": "facebookexternalhit/1.1"}, "GET", ClickOutcome.BOT),
    ({**BROWSER, "Sec-Purpose": "prefetch;prerender"}, "GET", ClickOutcome.PREFETCH),
    ({**BROWSER, "Purpose": "prefetch"}, "GET", ClickOutcome.PREFETCH),
    (BROWSER, "HEAD", ClickOutcome.PREFETCH),
])
async def test_bots_and_prefetches_are_recorded_with_their_reason_and_sent_to_the_fallback(
    tracking: RunningTracking, headers: dict[str, str], method: str, outcome: ClickOutcome,
) -> None:
    offer_id, partner_id = await approved_link(tracking)

    response = await tracking.client.request(method, f"/c/{offer_id}/{partner_id}", headers=headers)

    assert response.status_code == 302
    assert response.headers["Location"] == FALLBACK
    click = await click_on_log(tracking, response.headers["X-Afflux-Transaction-Id"])
    assert (click.outcome, click.unique, click.redirect_url) == (outcome, False, FALLBACK)


async def test_a_visitors_second_click_on_a_link_is_not_unique_but_still_goes_to_the_offer(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = await approved_link(tracking, visibility=Visibility.PUBLIC)
    other_offer, _ = await approved_link(tracking, visibility=Visibility.PUBLIC)
    path = f"/c/{offer_id}/{partner_id}"

    tracking.client.cookies.clear()
    first = await tracking.client.get(path, headers=BROWSER)
    again = await tracking.client.get(path, headers=BROWSER)  # the client sends the cookie back
    on_other_offer = await tracking.client.get(f"/c/{other_offer}/{partner_id}", headers=BROWSER)
    tracking.client.cookies.clear()
    other_visitor = await tracking.client.get(path, headers={**BROWSER, "User-Agent": "Mozilla/5.0 Other"})
    tracking.client.cookies.clear()
    cookieless_again = await tracking.client.get(path, headers=BROWSER)  # same IP and user agent
    tracking.client.cookies.clear()

    responses = (first, again, on_other_offer, other_visitor, cookieless_again)
    visitor = derived_visitor_id("127.0.0.1", BROWSER["User-Agent"])
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"afx_v={visitor};") and "HttpOnly" in cookie
    assert [r.status_code for r in responses] == [302] * 5
    clicks = await clicks_on_log(tracking, [r.headers["X-Afflux-Transaction-Id"] for r in responses])
    assert [c.unique for c in clicks] == [True, False, True, True, False]
    assert all(c.outcome is ClickOutcome.VALID for c in clicks)
    assert [c.visitor_id for c in clicks] == [visitor] * 3 + [clicks[3].visitor_id, visitor]
    assert clicks[3].visitor_id == derived_visitor_id("127.0.0.1", "Mozilla/5.0 Other")


async def test_a_loop_of_direct_clicks_from_one_client_is_one_visitor_counted_unique_once(
    tracking: RunningTracking,
) -> None:
    """POST /v1/clicks (CORS *) is a click like any other: a page calling it in a loop, or
    inventing visitor cookies, is one visitor (its IP and user agent), unique once."""
    offer_id, partner_id = await approved_link(tracking, visibility=Visibility.PUBLIC)
    body = {"offer_id": offer_id, "partner_id": partner_id}
    tracking.client.cookies.clear()
    answers = [await tracking.client.post("/v1/clicks", json=body, headers=BROWSER) for _ in range(4)]
    answers.append(await tracking.client.post("/v1/clicks", json=body,
                                              headers={**BROWSER, "Cookie": "afx_v=made-up-visitor"}))
    followed = await tracking.client.get(f"/c/{offer_id}/{partner_id}", headers=BROWSER)
    tracking.client.cookies.clear()

    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["unique"] for a in answers] == [True, False, False, False, False]
    ids = [a.json()["transaction_id"] for a in answers] + [followed.headers["X-Afflux-Transaction-Id"]]
    clicks = await clicks_on_log(tracking, ids)
    assert {c.visitor_id for c in clicks} == {derived_visitor_id("127.0.0.1", BROWSER["User-Agent"])}
    assert [c.unique for c in clicks] == [True] + [False] * 5
    assert {c.ip for c in clicks} == {"127.0.0.1"}


async def test_an_address_a_caller_forwards_is_believed_only_from_a_trusted_proxy(
    tracking: RunningTracking,
) -> None:
    """The service trusts no proxy: a caller's own X-Forwarded-For changes nothing. Behind
    a trusted balancer, each forwarded client is its own address and visitor."""
    offer_id, partner_id = await approved_link(tracking, visibility=Visibility.PUBLIC)
    path = f"/c/{offer_id}/{partner_id}"
    tracking.client.cookies.clear()
    spoofed = await tracking.client.get(path, headers={**BROWSER, "X-Forwarded-For": "203.0.113.9"})
    impression = await tracking.client.get(f"/i/{offer_id}/{partner_id}",
                                           headers={**BROWSER, "X-Forwarded-For": "203.0.113.9"})
    partners_log = LogCatchUp(tracking.store, "afflux.partners.v1", tracking.bootstrap)
    balancer = create_app(Intake(tracking.routing.view, tracking.partners.publisher, partners_log), _ready,
                          TrustedProxies.parse("127.0.0.0/8"))  # the in-memory transport's peer
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=balancer), base_url="http://t") as lb:
            behind: list[httpx.Response] = []
            for client in ("203.0.113.9", "198.51.100.4"):  # two browsers: no cookie shared
                lb.cookies.clear()
                forwarded = {**BROWSER, "X-Forwarded-For": f"1.1.1.1, {client}"}
                behind.append(await lb.get(path, headers=forwarded))
    finally:
        await partners_log.stop()

    assert impression.status_code == 200
    clicks = await clicks_on_log(tracking, [r.headers["X-Afflux-Transaction-Id"]
                                            for r in (spoofed, *behind)])
    assert [c.ip for c in clicks] == ["127.0.0.1", "203.0.113.9", "198.51.100.4"]
    assert [c.unique for c in clicks] == [True, True, True]  # three visitors, each its first click
    assert clicks[1].visitor_id == derived_visitor_id("203.0.113.9", BROWSER["User-Agent"])
    [shown] = await tracking_records(tracking.bootstrap, lambda p: isinstance(p, ImpressionRecorded)
                                     and p.offer_id == offer_id)
    assert (shown.payload.ip, shown.payload.visitor_id) == (
        "127.0.0.1", derived_visitor_id("127.0.0.1", BROWSER["User-Agent"]))


async def _ready() -> bool:
    return True


async def test_an_impression_is_a_gif_and_on_the_log(tracking: RunningTracking) -> None:
    offer_id, partner_id = await approved_link(tracking)

    response = await tracking.client.get(f"/i/{offer_id}/{partner_id}", params={"sub1": "banner"},
                                         headers=BROWSER)

    assert (response.status_code, response.headers["content-type"]) == (200, "image/gif")
    assert response.content.startswith(b"GIF89a")
    [record] = await tracking_records(tracking.bootstrap, lambda p: isinstance(p, ImpressionRecorded)
                                      and p.offer_id == offer_id)
    assert (record.payload.partner_id, record.payload.sub1, record.payload.outcome) == (
        partner_id, "banner", ClickOutcome.VALID)


async def test_direct_linking_records_a_click_and_answers_its_transaction_id_with_cors(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = await approved_link(tracking)
    origin = {"Origin": "https://shop.example"}

    preflight = await tracking.client.options("/v1/clicks", headers={
        **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    response = await tracking.client.post("/v1/clicks", headers={**BROWSER, **origin},
                                          json={"offer_id": offer_id, "partner_id": partner_id, "sub2": "x"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert (body["outcome"], body["unique"]) == ("valid", True)
    click = await click_on_log(tracking, body["transaction_id"])
    assert (click.method, click.sub2, click.redirect_url is not None) == (ClickMethod.DIRECT, "x", True)


async def test_direct_click_on_an_unknown_link_is_404(tracking: RunningTracking) -> None:
    response = await tracking.client.post("/v1/clicks", json={"offer_id": "nope", "partner_id": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "link_not_found"


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"sub1": "x" * 501}, 422, "sub1"),
    ({"sub2": "a\r\nSet-Cookie: evil=1"}, 422, "sub2"),
    ({"sub3": "nul\x00byte"}, 422, "sub3"),
    ({"q": "x" * 9000}, 414, None),
])
async def test_bad_subs_and_query_strings_are_refused_and_never_a_redirect(
    tracking: RunningTracking, params: dict[str, str], status: int, field: str | None,
) -> None:
    offer_id, partner_id = await approved_link(tracking)

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}", params=params, headers=BROWSER)

    assert response.status_code == status
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("sub", ["//evil.example/", "https://evil.example", "@evil.example", "%2F%2Fevil"])
async def test_a_sub_can_never_choose_the_host_the_visitor_goes_to(
    tracking: RunningTracking, sub: str
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(offer_created(offer_id, "https://shop.example/{sub1}?x={sub1}"),
                                    partner_created(partner_id), approval(offer_id, partner_id))

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}", params={"sub1": sub}, headers=BROWSER)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example/")
    assert "evil.example/" not in response.headers["Location"].split("?")[0].removeprefix("https://shop.example/")


async def test_unicode_and_odd_encodings_in_subs_are_percent_encoded(tracking: RunningTracking) -> None:
    offer_id, partner_id = await approved_link(tracking, visibility=Visibility.PUBLIC)

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}?sub1=%E2%9C%93%20%ff%22<>",
                                         headers=BROWSER)

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.isascii() and " " not in location and "<" not in location and '"' not in location
