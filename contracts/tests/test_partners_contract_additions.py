"""The partners contract's additions: old events still decode, new fields are validated."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from afflux_contracts import (
    DEFAULT_EVENT,
    BillingFrequency,
    Cap,
    CapMetric,
    CapPeriod,
    ClickRecorded,
    CouponPrecedence,
    Envelope,
    FraudAction,
    FraudSettings,
    ImpressionRecorded,
    OfferCreated,
    OfferEvent,
    OfferPostbackTokenRotated,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerCreated,
    PayoutType,
    PostbackMethod,
    RelationshipEvent,
    RelationshipSet,
    Terms,
    Tier,
    decode,
    derived_visitor_id,
    encode,
)

CPA_5 = Terms(type=PayoutType.CPA, amount=Decimal("5.00"))


def wire(event_type: str, payload: dict[str, Any]) -> bytes:
    """An envelope as a producer of the first contract version wrote it."""
    return json.dumps({
        "event_id": "01938a6e-7a00-7000-8000-000000000001", "event_type": event_type,
        "schema_version": 1, "occurred_at": "2026-11-01T10:00:00Z", "producer": "partners",
        "correlation_id": "c", "causation_id": None, "payload": payload,
    }).encode()


def test_a_partner_written_before_the_additions_decodes_with_their_defaults() -> None:
    payload = {"partner_id": "p1", "name": "Old", "email": "old@example.com",
               "billing": {"currency": "USD", "frequency": "biweekly", "minimum_payout": "0"}}
    partner = decode(wire("PartnerCreated", payload)).payload
    assert isinstance(partner, PartnerCreated)
    assert (partner.manager, partner.contacts, partner.postback) == (None, (), None)
    assert partner.billing is not None and partner.billing.frequency is BillingFrequency.BIWEEKLY
    assert partner.billing.method is None


def test_an_offer_written_before_events_existed_has_the_default_conversion_event() -> None:
    payload = {"offer_id": "o1", "name": "Old", "destination_url": "https://shop.example/",
               "currency": "USD", "payout": {"type": "cpa", "amount": "5.00"},
               "revenue": {"type": "cpa", "amount": "7.00"}}
    offer = decode(wire("OfferCreated", payload)).payload
    assert isinstance(offer, OfferCreated)
    assert offer.events == (OfferEvent(name=DEFAULT_EVENT, payout=CPA_5,
                                       revenue=Terms(type=PayoutType.CPA, amount=Decimal("7.00"))),)
    assert (offer.caps, offer.tiers, offer.fraud) == ((), (), None)
    assert offer.coupon_precedence is CouponPrecedence.CLICK_FIRST
    assert offer.event(DEFAULT_EVENT) is offer.events[0] and offer.event("sale") is None


def test_an_old_relationship_decodes_with_get_postbacks_and_no_custom_events() -> None:
    payload = {"offer_id": "o1", "partner_id": "p1", "approved": True}
    relationship = decode(wire("RelationshipSet", payload)).payload
    assert isinstance(relationship, RelationshipSet)
    assert relationship.postback_method is PostbackMethod.GET
    assert (relationship.events, relationship.caps, relationship.application) == ((), (), False)


def test_offer_events_given_replace_the_default_event() -> None:
    offer = OfferCreated(offer_id="o1", name="x", destination_url="https://s.example/", currency="USD",
                         payout=CPA_5, events=(OfferEvent(name="lead", payout=CPA_5),))
    assert [event.name for event in offer.events] == ["lead"]


def test_an_offer_update_round_trips_with_its_whole_state() -> None:
    offer = OfferUpdated(offer_id="o1", name="x", destination_url="https://s.example/", currency="usd",
                         payout=CPA_5, caps=(Cap(metric=CapMetric.REVENUE, period=CapPeriod.LIFETIME,
                                                 limit=Decimal("0.01")),), changed=("caps",))
    envelope = Envelope.wrap(offer, producer="t", correlation_id="c")
    assert decode(encode(envelope)).payload == offer


@pytest.mark.parametrize("limit", ["0", "-1", "NaN"])
def test_a_cap_limit_must_be_positive(limit: str) -> None:
    with pytest.raises(ValidationError, match="limit"):
        Cap(metric=CapMetric.PAYOUT, period=CapPeriod.DAY, limit=Decimal(limit))


def test_a_count_cap_limit_must_be_whole() -> None:
    with pytest.raises(ValidationError, match="whole number"):
        Cap(metric=CapMetric.CONVERSIONS, period=CapPeriod.DAY, limit=Decimal("2.5"))
    assert Cap(metric=CapMetric.PAYOUT, period=CapPeriod.DAY, limit=Decimal("2.5")).hard


def test_a_tier_needs_a_threshold_of_at_least_one() -> None:
    with pytest.raises(ValidationError, match="min_conversions"):
        Tier(min_conversions=0, payout=CPA_5)


def test_fraud_limits_are_positive() -> None:
    with pytest.raises(ValidationError, match="max_conversions_per_ip_per_day"):
        FraudSettings(max_conversions_per_ip_per_day=0)


def offer_with(**fields: Any) -> OfferCreated:
    return OfferCreated(offer_id="o1", name="x", destination_url="https://s.example/", currency="USD",
                        payout=CPA_5, **fields)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"events": (OfferEvent(name="sale", payout=CPA_5), OfferEvent(name="sale", payout=CPA_5))},
         "event names must be unique"),
        ({"caps": (Cap(metric=CapMetric.CLICKS, period=CapPeriod.DAY, limit=Decimal(5)),) * 2},
         "two caps share"),
        ({"tiers": (Tier(min_conversions=5, payout=CPA_5),) * 2}, "two tiers share"),
    ],
)
def test_an_offer_refuses_ambiguous_rules(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        offer_with(**fields)


def test_a_soft_and_a_hard_cap_may_share_a_metric_and_period() -> None:
    soft = Cap(metric=CapMetric.CLICKS, period=CapPeriod.DAY, limit=Decimal(80), hard=False)
    hard = Cap(metric=CapMetric.CLICKS, period=CapPeriod.DAY, limit=Decimal(100))
    assert offer_with(caps=(soft, hard)).caps == (soft, hard)


def test_a_relationship_refuses_an_event_named_twice() -> None:
    with pytest.raises(ValidationError, match="event names must be unique"):
        RelationshipSet(offer_id="o1", partner_id="p1", approved=True,
                        events=(RelationshipEvent(name="sale"), RelationshipEvent(name="sale")))


def test_an_api_key_event_carries_only_a_sha256_hex() -> None:
    with pytest.raises(ValidationError, match="key_sha256"):
        PartnerApiKeyIssued(partner_id="p1", key_id="key_1", key_sha256="afx_live_plaintext",
                            prefix="afx_live_ab", issued_at="2026-11-01T10:00:00Z")


def test_an_offer_written_before_its_bounds_existed_decodes_with_the_safe_defaults() -> None:
    payload = {"offer_id": "o1", "name": "Old", "destination_url": "https://shop.example/",
               "currency": "USD", "payout": {"type": "cpc", "amount": "0.25"},
               "conversion_security": {"token_required": True, "token_sha256": "e" * 64,
                                       "pixel_allowed": True},
               "fraud": {"blocked_ips": ["198.51.100.0/24"]}}
    offer = decode(wire("OfferCreated", payload)).payload
    assert isinstance(offer, OfferCreated)
    assert (offer.max_sale_amount, offer.max_payout) == (None, None)
    assert offer.over_limit_action is FraudAction.REVIEW
    assert offer.unique_click_hours == 24
    assert offer.conversion_security is not None and offer.conversion_security.pixel_review
    assert offer.fraud is not None and offer.fraud.blocked_subs == {}
    assert (offer.fraud.max_clicks_per_ip_per_day, offer.fraud.max_clicks_per_visitor_per_day,
            offer.fraud.max_impressions_per_ip_per_day) == (None, None, None)
    assert (offer.events[0].max_sale_amount, offer.events[0].max_payout) == (None, None)


def test_offer_bounds_travel_as_exact_decimal_strings() -> None:
    offer = offer_with(max_sale_amount=Decimal("1000.005"), max_payout=Decimal("50.00"),
                       events=(OfferEvent(name="sale", payout=CPA_5, max_payout=Decimal("7.50")),))
    wire_form = json.loads(encode(Envelope.wrap(offer, producer="t")))["payload"]
    assert (wire_form["max_sale_amount"], wire_form["max_payout"]) == ("1000.005", "50.00")
    assert wire_form["events"][0]["max_payout"] == "7.50"


@pytest.mark.parametrize("sub", ["sub1", "sub6", "utm_source"])
def test_blocked_subs_name_only_sub2_to_sub5(sub: str) -> None:
    with pytest.raises(ValidationError, match="blocked_subs"):
        FraudSettings(blocked_subs={sub: ("x",)})
    assert FraudSettings(blocked_subs={"sub5": ("x",)}).blocked_subs == {"sub5": ("x",)}


def test_the_unique_click_window_is_at_least_an_hour() -> None:
    with pytest.raises(ValidationError, match="unique_click_hours"):
        offer_with(unique_click_hours=0)


def test_a_token_rotation_carries_only_sha256_hexes() -> None:
    with pytest.raises(ValidationError, match="token_sha256"):
        OfferPostbackTokenRotated(offer_id="o1", token_sha256="the-token-itself")
    with pytest.raises(ValidationError, match="previous_token_sha256"):
        OfferPostbackTokenRotated(offer_id="o1", token_sha256="a" * 64, previous_token_sha256="old-token")


def test_clicks_and_impressions_recorded_before_visitor_ids_decode_without_one() -> None:
    click = {"transaction_id": "a" * 32, "offer_id": "o1", "partner_id": "p1",
             "clicked_at": "2026-11-01T10:00:00Z", "ip": "203.0.113.9"}
    impression = {"impression_id": "b" * 32, "offer_id": "o1", "partner_id": "p1",
                  "impressed_at": "2026-11-01T10:00:00Z"}
    decoded_click = decode(wire("ClickRecorded", click)).payload
    decoded_impression = decode(wire("ImpressionRecorded", impression)).payload
    assert isinstance(decoded_click, ClickRecorded) and decoded_click.visitor_id is None
    assert isinstance(decoded_impression, ImpressionRecorded) and decoded_impression.visitor_id is None


def test_the_derived_visitor_id_is_one_rule_of_ip_and_user_agent() -> None:
    one = derived_visitor_id("203.0.113.9", "Mozilla/5.0")
    assert len(one) == 32 and int(one, 16) >= 0
    assert derived_visitor_id("203.0.113.9", "Mozilla/5.0") == one
    assert derived_visitor_id("203.0.113.9", "curl/8.5") != one
    assert derived_visitor_id("203.0.113.10", "Mozilla/5.0") != one
    assert derived_visitor_id(None, None) == derived_visitor_id("", "")
