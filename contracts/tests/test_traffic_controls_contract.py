"""The traffic controls' contract additions: offers, clicks and impressions written before
them decode with their defaults (no deep links, no pages, no targeting, no profile), and
the new fields are validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from test_partners_contract_additions import wire

from afflux_contracts import (
    ClickOutcome,
    ClickRecorded,
    ImpressionRecorded,
    LandingPage,
    OfferCreated,
    PayoutType,
    RoutedOffer,
    SmartLinkSet,
    Targeting,
    Terms,
    decode,
)


def test_an_offer_written_before_traffic_controls_has_none() -> None:
    payload = {"offer_id": "o1", "name": "Old", "destination_url": "https://shop.example/",
               "currency": "USD", "payout": {"type": "cpa", "amount": "5"}}
    offer = decode(wire("OfferCreated", payload)).payload
    assert isinstance(offer, OfferCreated)
    assert (offer.deep_link_domains, offer.landing_pages, offer.targeting) == ((), (), None)


def test_clicks_and_impressions_written_before_traffic_controls_decode_without_a_profile() -> None:
    click = decode(wire("ClickRecorded", {"transaction_id": "a" * 32, "offer_id": "o1", "partner_id": "p1",
                                          "clicked_at": "2026-11-01T10:00:00Z"})).payload
    impression = decode(wire("ImpressionRecorded", {"impression_id": "b" * 32, "offer_id": "o1",
                                                    "partner_id": "p1",
                                                    "impressed_at": "2026-11-01T10:00:00Z"})).payload
    assert isinstance(click, ClickRecorded) and isinstance(impression, ImpressionRecorded)
    assert (click.landing_page_id, click.deep_link, click.reason) == (None, False, None)
    for recorded in (click, impression):
        assert (recorded.country, recorded.device, recorded.os, recorded.browser) == (None, None, None, None)


def test_a_targeting_refusal_travels_with_its_reason() -> None:
    click = decode(wire("ClickRecorded", {"transaction_id": "a" * 32, "offer_id": "o1", "partner_id": "p1",
                                          "clicked_at": "2026-11-01T10:00:00Z", "outcome": "targeting",
                                          "reason": "countries", "country": "BR"})).payload
    assert isinstance(click, ClickRecorded)
    assert (click.outcome, click.reason, click.country, click.valid) == (
        ClickOutcome.TARGETING, "countries", "BR", False)


def test_an_offers_landing_pages_have_unique_ids_and_no_negative_weight() -> None:
    page = LandingPage(id="a", name="A", url="https://shop.example/a")
    offer = {"offer_id": "o1", "name": "New", "destination_url": "https://shop.example/", "currency": "USD",
             "payout": Terms(type=PayoutType.CPA, amount="5")}
    with pytest.raises(ValidationError, match="share an id"):
        OfferCreated(**offer, landing_pages=(page, page))
    with pytest.raises(ValidationError, match="weight"):
        LandingPage(id="b", name="B", url="https://shop.example/b", weight=-1)
    assert OfferCreated(**offer, targeting=Targeting()).targeting == Targeting()


def test_offers_and_clicks_written_before_fail_traffic_and_smart_links_decode_without_them() -> None:
    offer = decode(wire("OfferCreated", {"offer_id": "o1", "name": "Old", "currency": "USD",
                                         "destination_url": "https://shop.example/",
                                         "payout": {"type": "cpa", "amount": "5"}})).payload
    click = decode(wire("ClickRecorded", {"transaction_id": "a" * 32, "offer_id": "o1", "partner_id": "p1",
                                          "clicked_at": "2026-11-01T10:00:00Z"})).payload
    assert isinstance(offer, OfferCreated) and isinstance(click, ClickRecorded)
    assert offer.fail_traffic is None
    assert (click.rerouted_from, click.rerouted_outcome, click.smart_link_id) == (None, None, None)


def test_a_routed_offer_has_no_negative_weight_and_a_priority_from_one() -> None:
    assert RoutedOffer(offer_id="o2") == RoutedOffer(offer_id="o2", weight=1, priority=1)
    with pytest.raises(ValidationError, match="weight"):
        RoutedOffer(offer_id="o2", weight=-1)
    with pytest.raises(ValidationError, match="priority"):
        RoutedOffer(offer_id="o2", priority=0)
    link = SmartLinkSet(smart_link_id="s1", name="Mix", offers=(RoutedOffer(offer_id="o2"),))
    assert (link.partition_key(), link.fallback_url) == ("s1", None)
