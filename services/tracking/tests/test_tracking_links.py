"""Following tracking links on the running service: the click is on the log before the
302, and the visitor goes only where the offer allows."""

from __future__ import annotations

import re
from datetime import timedelta

from tracking_fixtures import (
    RunningTracking,
    approval,
    fresh_id,
    offer_created,
    partner_created,
    tracking_records,
)

from afflux_contracts import ClickOutcome, ClickRecorded, OfferStatus, OfferStatusChanged, Visibility, utc_now

DESTINATION = "https://shop.example/land?tid={transaction_id}&o={offer_id}&p={partner_id}&s1={sub1}&s2={sub2}"
FALLBACK = "https://shop.example/more?tid={transaction_id}&s1={sub1}"


async def clicks_with(tracking: RunningTracking, transaction_id: str) -> list[ClickRecorded]:
    def matches(payload: object) -> bool:
        return isinstance(payload, ClickRecorded) and payload.transaction_id == transaction_id

    records = await tracking_records(tracking.bootstrap, matches)
    assert all(record.key == transaction_id for record in records)  # conversions follow on its partition
    return [record.payload for record in records]


async def test_valid_click_redirects_to_the_filled_destination_and_is_on_the_log(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(
        offer_created(offer_id, DESTINATION, fallback_url=FALLBACK),
        partner_created(partner_id),
        approval(offer_id, partner_id),
    )

    response = await tracking.client.get(
        f"/c/{offer_id}/{partner_id}", params={"sub1": "summer sale", "sub2": "a&b=ü"},
        headers={"User-Agent": "test-browser/1.0", "Referer": "https://blog.example/post"},
    )

    assert response.status_code == 302
    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    assert re.fullmatch(rf"[0-9a-f]{{32}}-{offer_id}", transaction_id)
    expected = (f"https://shop.example/land?tid={transaction_id}&o={offer_id}&p={partner_id}"
                "&s1=summer%20sale&s2=a%26b%3D%C3%BC")
    assert response.headers["Location"] == expected
    assert response.headers["Cache-Control"] == "no-store"
    [click] = await clicks_with(tracking, transaction_id)
    assert (click.offer_id, click.partner_id, click.outcome) == (offer_id, partner_id, ClickOutcome.VALID)
    assert click.redirect_url == expected
    assert (click.sub1, click.sub2, click.sub3) == ("summer sale", "a&b=ü", None)
    assert (click.ip, click.user_agent, click.referer) == (
        "127.0.0.1", "test-browser/1.0", "https://blog.example/post")
    assert abs(utc_now() - click.clicked_at) < timedelta(minutes=1)


async def test_paused_offer_sends_the_click_to_the_fallback_and_records_why(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(
        offer_created(offer_id, DESTINATION, fallback_url=FALLBACK),
        partner_created(partner_id),
        approval(offer_id, partner_id),
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.PAUSED),
    )

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}", params={"sub1": "x"})

    assert response.status_code == 302
    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    assert response.headers["Location"] == f"https://shop.example/more?tid={transaction_id}&s1=x"
    [click] = await clicks_with(tracking, transaction_id)
    assert click.outcome is ClickOutcome.OFFER_PAUSED
    assert click.redirect_url == response.headers["Location"]


async def test_unapproved_partner_without_fallback_gets_a_clear_404_and_the_click_is_recorded(
    tracking: RunningTracking,
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(offer_created(offer_id, DESTINATION), partner_created(partner_id))

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "partner_not_approved"
    assert "Location" not in response.headers
    [click] = await clicks_with(tracking, response.headers["X-Afflux-Transaction-Id"])
    assert click.outcome is ClickOutcome.PARTNER_NOT_APPROVED
    assert click.redirect_url is None


async def test_unknown_link_is_404_and_not_recorded(tracking: RunningTracking) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(partner_created(partner_id))

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "link_not_found"
    assert await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ClickRecorded) and p.offer_id == offer_id) == []


async def test_relationship_set_before_its_offer_still_ends_approved(tracking: RunningTracking) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(approval(offer_id, partner_id), partner_created(partner_id))
    assert (await tracking.client.get(f"/c/{offer_id}/{partner_id}")).status_code == 404

    await tracking.partners.publish(offer_created(offer_id, "https://shop.example/?t={transaction_id}"))

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}")
    assert response.status_code == 302
    transaction_id = response.headers["X-Afflux-Transaction-Id"]
    assert response.headers["Location"] == f"https://shop.example/?t={transaction_id}"
    [click] = await clicks_with(tracking, transaction_id)
    assert click.outcome is ClickOutcome.VALID


async def test_status_change_seen_before_its_offer_is_not_lost(tracking: RunningTracking) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    created_at = utc_now() - timedelta(minutes=5)
    await tracking.partners.publish(OfferStatusChanged(offer_id=offer_id, status=OfferStatus.PAUSED),
                                    partner_created(partner_id))
    await tracking.partners.publish(
        offer_created(offer_id, DESTINATION, visibility=Visibility.PUBLIC, fallback_url=FALLBACK),
        occurred_at=created_at,
    )

    response = await tracking.client.get(f"/c/{offer_id}/{partner_id}")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example/more?")


async def test_sub_longer_than_500_characters_is_refused(tracking: RunningTracking) -> None:
    response = await tracking.client.get(f"/c/{fresh_id('o')}/{fresh_id('p')}", params={"sub3": "x" * 501})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "sub3"
