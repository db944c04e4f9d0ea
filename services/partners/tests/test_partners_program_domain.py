"""The program's rules in the domain (pure, no I/O): offer events, caps, tiers, fraud
settings, custom relationship terms, edits, API keys and applications; and the new
stored events survive the store and are published with every field."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex
from test_partners_published import published

from afflux_contracts import (
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerUpdated,
    RelationshipSet,
)
from afflux_partners.application.transcodings import register_value_transcodings
from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import MAX_ACTIVE_API_KEYS, Partner
from afflux_partners.domain.relationship import Relationship
from afflux_partners.domain.rules import Conflict, RuleViolation
from afflux_partners.domain.values import (
    Billing,
    BillingFrequency,
    Cap,
    CapMetric,
    CapPeriod,
    Contact,
    FraudAction,
    FraudSettings,
    OfferEvent,
    OfferStatus,
    PartnerPostback,
    PartnerStatus,
    PayoutType,
    PostbackMethod,
    RelationshipEvent,
    Terms,
    Tier,
)

CPA_5 = Terms(PayoutType.CPA, amount=Decimal("5.00"))
CPS_8 = Terms(PayoutType.CPS, percent=Decimal("8"))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def offer(**overrides: Any) -> Offer:
    fields: dict[str, Any] = {"name": "Shoes", "destination_url": "https://shop.example/?t={transaction_id}",
                              "currency": "USD", "payout": CPA_5}
    return Offer.create(**{**fields, **overrides})


def refused(call: Any, **kwargs: Any) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call(**kwargs)
    return caught.value


def conversions_cap(limit: str, **kwargs: Any) -> Cap:
    return Cap(CapMetric.CONVERSIONS, CapPeriod.DAY, Decimal(limit), **kwargs)


# Offers: events, caps, tiers, fraud


def test_an_offer_without_events_has_the_default_conversion_event_priced_with_its_terms() -> None:
    plain = offer(revenue=CPS_8)
    assert plain.events == ()
    assert plain.priced_events == (OfferEvent("conversion", CPA_5, CPS_8),)
    assert plain.event_names == ("conversion",)


@pytest.mark.parametrize(
    ("events", "field", "code"),
    [
        ((OfferEvent("sale", CPS_8), OfferEvent("sale", CPA_5)), "events.1.name", "duplicate_event"),
        ((OfferEvent("a sale", CPS_8),), "events.0.name", "invalid_event"),
        ((OfferEvent("", CPS_8),), "events.0.name", "invalid_event"),
        ((OfferEvent("click", Terms(PayoutType.CPC, amount=Decimal("0.1"))),), "events.0.payout.type",
         "invalid_terms"),
        ((OfferEvent("lead", Terms(PayoutType.CPA)),), "events.0.payout.amount", "invalid_terms"),
        ((OfferEvent("lead", CPA_5, Terms(PayoutType.CPS, percent=Decimal("-1"))),),
         "events.0.revenue.percent", "invalid_amount"),
        (tuple(OfferEvent(f"e{i}", CPA_5) for i in range(21)), "events", "too_many"),
    ],
)
def test_offer_events_are_refused_naming_the_field(events: tuple[OfferEvent, ...], field: str,
                                                   code: str) -> None:
    violation = refused(offer, events=events)
    assert (violation.field, violation.code) == (field, code)


@pytest.mark.parametrize(
    ("caps", "field", "code"),
    [
        ((conversions_cap("-1"),), "caps.0.limit", "invalid_amount"),
        ((conversions_cap("0"),), "caps.0.limit", "invalid_cap"),
        ((conversions_cap("2.5"),), "caps.0.limit", "invalid_cap"),
        ((conversions_cap("10"), conversions_cap("20")), "caps.1", "duplicate_cap"),
    ],
)
def test_caps_are_refused_naming_the_field(caps: tuple[Cap, ...], field: str, code: str) -> None:
    violation = refused(offer, caps=caps)
    assert (violation.field, violation.code) == (field, code)


def test_caps_of_each_scope_and_hardness_may_sit_side_by_side() -> None:
    caps = (conversions_cap("10"), conversions_cap("8", hard=False), conversions_cap("3", per_partner=True),
            Cap(CapMetric.PAYOUT, CapPeriod.MONTH, Decimal("999.99")))
    assert offer(caps=caps).caps == caps


def test_tiers_need_a_threshold_of_one_or_more_each_once_and_are_kept_in_order() -> None:
    assert refused(offer, tiers=(Tier(0, CPA_5),)).field == "tiers.0.min_conversions"
    duplicate = refused(offer, tiers=(Tier(5, CPA_5), Tier(5, CPS_8)))
    assert (duplicate.field, duplicate.code) == ("tiers.1.min_conversions", "duplicate_tier")
    assert refused(offer, tiers=(Tier(5, Terms(PayoutType.CPC, amount=Decimal(1))),)).field == \
        "tiers.0.payout.type"
    tiers = offer(tiers=(Tier(50, CPS_8), Tier(10, CPA_5))).tiers
    assert [tier.min_conversions for tier in tiers] == [10, 50]


def test_fraud_settings_are_checked_and_kept_canonical() -> None:
    fraud = offer(fraud=FraudSettings(10, 3, ("203.0.113.9", "198.51.100.0/24", "203.0.113.9"),
                                      ("spam", "spam"), FraudAction.REVIEW)).fraud
    assert fraud == FraudSettings(10, 3, ("203.0.113.9/32", "198.51.100.0/24"), ("spam",), FraudAction.REVIEW)
    assert refused(offer, fraud=FraudSettings(min_seconds_to_convert=0)).field == \
        "fraud.min_seconds_to_convert"
    assert refused(offer, fraud=FraudSettings(max_conversions_per_ip_per_day=0)).field == \
        "fraud.max_conversions_per_ip_per_day"
    assert refused(offer, fraud=FraudSettings(blocked_ips=("10.0.0.300",))).field == "fraud.blocked_ips"
    assert refused(offer, fraud=FraudSettings(blocked_sub1=("",))).field == "fraud.blocked_sub1"


def test_a_macro_may_not_choose_the_host_of_an_offer_url() -> None:
    violation = refused(offer, destination_url="https://{sub1}.example/landing")
    assert (violation.field, violation.code) == ("destination_url", "invalid_url")


def test_a_cpm_offer_prices_a_thousand_impressions_with_an_amount() -> None:
    cpm = offer(payout=Terms(PayoutType.CPM, amount=Decimal("4.00")))
    assert cpm.payout.type is PayoutType.CPM
    assert refused(offer, payout=Terms(PayoutType.CPM)).field == "payout.amount"


# Offer edits


def test_an_offer_edit_records_the_whole_state_and_only_what_changed() -> None:
    edited = offer()
    edited.collect_events()
    changed = edited.edit({"payout": CPS_8, "name": "Shoes", "caps": (conversions_cap("5"),)})
    assert changed == ("payout", "caps")
    assert edited.priced_events == (OfferEvent("conversion", CPS_8, None),)
    (update,) = published(edited)
    assert isinstance(update.payload, OfferUpdated)
    assert update.payload.changed == ("payout", "caps")
    assert update.payload.events[0].payout.percent == Decimal("8")  # the default event follows the payout
    security = update.payload.conversion_security
    assert security is not None and security.token_sha256 is None  # created without a token here
    assert edited.edit({"payout": CPS_8}) == ()
    assert edited.collect_events() == []


def test_an_offer_keeps_its_currency_and_a_deleted_offer_is_not_edited() -> None:
    edited = offer()
    assert edited.edit({"currency": "usd"}) == ()  # the same currency, written differently
    assert refused(edited.edit, changes={"currency": "EUR"}).code == "currency_locked"
    assert refused(edited.edit, changes={"name": None}).field == "name"
    edited.change_status(OfferStatus.DELETED)
    with pytest.raises(Conflict) as caught:
        edited.edit({"name": "Back"})
    assert caught.value.code == "offer_deleted"


# Partners


def test_a_partner_edit_publishes_its_whole_state_and_what_changed() -> None:
    partner = Partner.create("Ann", "ann@example.com", status=PartnerStatus.PENDING)
    partner.collect_events()
    contact = Contact("Bo Li", "bo@ann.example", "billing")
    postback = PartnerPostback("https://ann.example/pb?c={sub1}", PostbackMethod.POST)
    billing = Billing("eur", BillingFrequency.QUARTERLY, Decimal("100"), "wire")
    changed = partner.edit({"manager": "dana@brand.example", "contacts": (contact,),
                            "email": "ann@example.com", "billing": billing,
                            "postback": postback})
    assert changed == ("billing", "manager", "contacts", "postback")
    (update,) = published(partner)
    payload = update.payload
    assert isinstance(payload, PartnerUpdated)
    assert (payload.status, payload.changed, payload.manager) == ("pending", changed, "dana@brand.example")
    assert payload.billing is not None
    assert (payload.billing.currency, payload.billing.method) == ("EUR", "wire")
    assert payload.contacts[0].role == "billing" and payload.postback is not None
    assert payload.postback.method == "post"


def test_a_partner_edit_is_checked_and_cannot_touch_the_status() -> None:
    partner = Partner.create("Ann", "ann@example.com")
    assert refused(partner.edit, changes={"contacts": (Contact("Bo", "not-an-email"),)}).field == \
        "contacts.0.email"
    assert refused(partner.edit, changes={"postback": PartnerPostback("https://{sub1}.evil/")}).field == \
        "postback.url"
    assert refused(partner.edit, changes={"status": "active"}).code == "not_editable"
    assert refused(partner.edit, changes={"email": None}).field == "email"
    assert partner.edit({"type": None, "tags": ()}) == ()


# API keys


def test_api_keys_are_remembered_by_hash_and_revoked_once() -> None:
    partner = Partner.create("Ann", "ann@example.com")
    partner.collect_events()
    key = partner.issue_api_key("key_1", "a" * 64, "afx_live_abcd", NOW)
    assert key.active and partner.api_keys == {"key_1": key}
    revoked = partner.revoke_api_key("key_1", NOW)
    assert revoked is not None and not revoked.active and revoked.revoked_at == NOW
    assert partner.revoke_api_key("key_1", NOW) == revoked  # again: no change, no event
    assert partner.revoke_api_key("key_unknown", NOW) is None
    issued, revoked_event = published(partner)
    assert isinstance(issued.payload, PartnerApiKeyIssued) and issued.key == partner.partner_id
    assert (issued.payload.key_sha256, issued.payload.prefix) == ("a" * 64, "afx_live_abcd")
    assert isinstance(revoked_event.payload, PartnerApiKeyRevoked)
    assert revoked_event.payload.key_id == "key_1"


def test_a_partner_has_a_bounded_number_of_active_keys_and_a_rejected_one_none() -> None:
    partner = Partner.create("Ann", "ann@example.com", status=PartnerStatus.PENDING)
    for n in range(MAX_ACTIVE_API_KEYS):
        partner.issue_api_key(f"key_{n}", "b" * 64, "afx_live_bbbb", NOW)
    with pytest.raises(Conflict) as caught:
        partner.issue_api_key("key_x", "b" * 64, "afx_live_bbbb", NOW)
    assert caught.value.code == "too_many_api_keys"
    partner.revoke_api_key("key_0", NOW)
    partner.issue_api_key("key_x", "b" * 64, "afx_live_bbbb", NOW)
    partner.change_status(PartnerStatus.REJECTED)
    with pytest.raises(Conflict) as caught:
        partner.issue_api_key("key_y", "b" * 64, "afx_live_bbbb", NOW)
    assert caught.value.code == "partner_rejected"


# Relationships


def custom_relationship(**custom: Any) -> Relationship:
    return Relationship.create("o1", "p1", True, offer_events=("lead", "sale"), **custom)


def test_a_relationship_customises_only_events_the_offer_has() -> None:
    violation = refused(custom_relationship, events=(RelationshipEvent("upsell", CPA_5),))
    assert (violation.field, violation.code) == ("events.0.name", "unknown_event")
    assert "lead, sale" in violation.message
    assert refused(custom_relationship, events=(RelationshipEvent("sale"),)).field == "events.0"
    twice = refused(custom_relationship,
                    events=(RelationshipEvent("sale", CPS_8), RelationshipEvent("sale", CPA_5)))
    assert twice.code == "duplicate_event"


def test_a_relationship_carries_event_payouts_its_own_caps_and_postback_settings() -> None:
    relationship = custom_relationship(events=(RelationshipEvent("sale", CPS_8),),
                                       caps=(conversions_cap("3"),),
                                       postback_url="https://p1.example/pb?c={sub1}",
                                       postback_method=PostbackMethod.POST, postback_status_changes=True)
    assert relationship.caps == (conversions_cap("3", per_partner=True),)  # a partner's cap is its own
    (created,) = [e.payload for e in published(relationship)]
    assert isinstance(created, RelationshipSet)
    assert created.events[0].payout is not None and created.events[0].payout.percent == Decimal("8")
    assert (created.caps[0].per_partner, created.postback_method, created.postback_status_changes) == (
        True, "post", True)


def test_an_application_is_pending_until_the_advertiser_decides() -> None:
    pending = Relationship.apply_for("o1", "p1", approved=False)
    assert (pending.approved, pending.application, pending.declined) == (False, True, False)
    assert Relationship.apply_for("o1", "p2", approved=True).application is False
    pending.update(False)  # the advertiser says no
    assert (pending.application, pending.declined) == (False, True)
    events = [e.payload for e in published(pending)]
    assert [(e.approved, e.application) for e in events if isinstance(e, RelationshipSet)] == [
        (False, True), (False, False)]


def a_mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_value_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


@pytest.mark.parametrize("aggregate", [
    lambda: Relationship.create("o1", "p1", True, coupon_codes=["OLD1"]),
    lambda: offer(),
    lambda: Partner.create("Ann", "ann@example.com", billing=Billing("USD")),
])
def test_events_stored_before_the_additions_still_load(aggregate: Any) -> None:
    """A Created event stored by the previous version lacks the new fields: the aggregate
    it rebuilds has their defaults."""
    mapper = a_mapper()
    (created,) = aggregate().collect_events()
    stored = mapper.to_stored_event(created)
    state = json.loads(stored.state)
    for added in ("events", "caps", "tiers", "fraud", "coupon_precedence", "postback_method",
                  "postback_status_changes", "application", "manager", "contacts", "postback"):
        state.pop(added, None)
    if isinstance(state.get("billing"), dict):
        state["billing"]["_data_"].pop("method")
    old = replace(stored, state=json.dumps(state).encode())
    rebuilt = mapper.to_domain_event(old).mutate(None)  # type: ignore[attr-defined]
    assert getattr(rebuilt, "events", ()) == () and getattr(rebuilt, "caps", ()) == ()
    assert getattr(rebuilt, "contacts", ()) == () and getattr(rebuilt, "manager", None) is None
    billing = getattr(rebuilt, "billing", None)
    assert billing is None or billing.method is None
