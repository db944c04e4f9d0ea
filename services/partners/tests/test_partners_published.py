"""Stored domain events -> public envelopes: total, faithful after a store round trip,
and with ids that survive a re-send (pure, no I/O)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex

import afflux_contracts as contracts
from afflux_contracts import Envelope, RelationshipSet
from afflux_partners.application.published import TRANSLATIONS, to_envelope
from afflux_partners.application.transcodings import register_value_transcodings
from afflux_partners.domain import values
from afflux_partners.domain.creative import Creative
from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.payout_profile import PayoutProfile, summary_of
from afflux_partners.domain.relationship import Relationship
from afflux_partners.domain.smart_link import SmartLink


def _mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_value_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


def stored_and_loaded(aggregate: Aggregate) -> list[Any]:
    """The aggregate's new events as the relay sees them: encoded to the store and back."""
    mapper = _mapper()
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in aggregate.collect_events()]


def published(aggregate: Aggregate) -> list[Envelope[Any]]:
    envelopes = [to_envelope(e) for e in stored_and_loaded(aggregate)]
    assert all(e is not None for e in envelopes)
    return [e for e in envelopes if e is not None]


def test_every_stored_event_type_is_published() -> None:
    stored_topics = {
        getattr(event_class, "TOPIC", None)
        for aggregate in (Partner, Offer, Relationship, SmartLink, PayoutProfile, Creative)
        for name, event_class in vars(aggregate).items()
        if isinstance(event_class, type) and issubclass(event_class, CanMutateAggregate) and name != "Event"
    }
    assert len(stored_topics) == 22
    assert stored_topics == set(TRANSLATIONS)


def test_domain_vocabulary_matches_the_contract() -> None:
    for ours, theirs in [
        (values.PartnerStatus, contracts.PartnerStatus),
        (values.OfferStatus, contracts.OfferStatus),
        (values.Visibility, contracts.Visibility),
        (values.PayoutType, contracts.PayoutType),
        (values.BillingFrequency, contracts.BillingFrequency),
        (values.FailTrafficMode, contracts.FailTrafficMode),
    ]:
        assert {m.value for m in ours} == {m.value for m in theirs}


def test_partner_events_keep_every_field_and_are_keyed_by_partner_id() -> None:
    partner = Partner.create("Ann", "ann@example.com", type="creator", tags=["vip"],
                             billing=values.Billing("USD", values.BillingFrequency.WEEKLY, Decimal("50.00")))
    partner.change_status(values.PartnerStatus.INACTIVE)
    created, changed = published(partner)
    assert created.event_type == "PartnerCreated" and created.producer == "partners"
    assert created.key == partner.partner_id
    assert json.loads(created.payload.model_dump_json()) == {
        "partner_id": partner.partner_id, "name": "Ann", "email": "ann@example.com", "type": "creator",
        "status": "active", "tags": ["vip"],
        "billing": {"currency": "USD", "frequency": "weekly", "minimum_payout": "50.00", "method": None,
                    "conversion": "none"},
        "manager": None, "contacts": [], "postback": None,
    }
    assert changed.event_type == "PartnerStatusChanged"
    assert changed.payload.model_dump(mode="json") == {"partner_id": partner.partner_id, "status": "inactive",
                                                       "previous_status": "active", "reason": None}


def test_offer_terms_survive_the_store_as_exact_decimal_strings() -> None:
    offer = Offer.create("Shoes", "https://shop.example/?t={transaction_id}", "eur",
                         values.Terms(values.PayoutType.CPA_CPS, Decimal("2.50"), Decimal("7.5")),
                         revenue=values.Terms(values.PayoutType.CPS, percent=Decimal("12.00")),
                         fallback_url="https://shop.example/sorry")
    (created,) = published(offer)
    payload = json.loads(created.payload.model_dump_json())
    assert payload["payout"] == {"type": "cpa_cps", "amount": "2.50", "percent": "7.5"}
    assert payload["revenue"] == {"type": "cps", "amount": None, "percent": "12.00"}
    assert (payload["currency"], payload["attribution_window_days"]) == ("EUR", 30)
    assert created.key == offer.offer_id


def test_relationship_created_and_updated_both_publish_the_whole_state_keyed_by_the_pair() -> None:
    relationship = Relationship.create("o1", "p1", approved=False, coupon_codes=["ANN10"])
    relationship.update(True, payout=values.Terms(values.PayoutType.CPA, Decimal("9")),
                        coupon_codes=["ANN10", "ANN20"], postback_url="https://ann.example/pb",
                        targeting=values.Targeting(countries=values.AllowDeny(("ca",))))
    first, second = published(relationship)
    assert isinstance(first.payload, RelationshipSet) and isinstance(second.payload, RelationshipSet)
    assert first.key == second.key == "o1:p1"
    assert (first.payload.approved, first.payload.coupon_codes) == (False, ("ANN10",))
    assert second.payload.model_dump(mode="json") == {
        "offer_id": "o1", "partner_id": "p1", "approved": True,
        "payout": {"type": "cpa", "amount": "9", "percent": None}, "revenue": None,
        "coupon_codes": ["ANN10", "ANN20"], "postback_url": "https://ann.example/pb",
        "events": [], "caps": [], "postback_method": "get", "postback_status_changes": False,
        "application": False,
        "targeting": {"countries": {"allow": ["CA"], "deny": []}, "day_parting": None, **{
            rule: {"allow": [], "deny": []}
            for rule in ("devices", "operating_systems", "browsers", "referrer_domains")}},
    }


def test_fail_traffic_and_smart_links_survive_the_store_and_publish_their_whole_state() -> None:
    routed = (values.RoutedOffer("b" * 32, weight=3), values.RoutedOffer("c" * 32, priority=2))
    offer = Offer.create("Shoes", "https://shop.example/", "USD", CPA_1,
                         fail_traffic=values.FailTraffic(values.FailTrafficMode.WEIGHT, routed[:1]))
    smart_link = SmartLink.create("Mix", routed)
    smart_link.edit({"fallback_url": "https://shop.example/more"})
    (created,) = published(offer)
    first, second = published(smart_link)
    assert created.payload.model_dump(mode="json")["fail_traffic"] == {
        "mode": "weight", "offers": [{"offer_id": "b" * 32, "weight": 3, "priority": 1}]}
    assert first.key == second.key == smart_link.smart_link_id
    assert second.payload.model_dump(mode="json") == {
        "smart_link_id": smart_link.smart_link_id, "name": "Mix", "fallback_url": "https://shop.example/more",
        "offers": [{"offer_id": "b" * 32, "weight": 3, "priority": 1},
                   {"offer_id": "c" * 32, "weight": 1, "priority": 2}]}


def test_event_ids_are_derived_from_the_stored_event_so_a_resend_keeps_them() -> None:
    partner = Partner.create("Ann", "ann@example.com")
    partner.change_status(values.PartnerStatus.SUSPENDED)
    events = stored_and_loaded(partner)
    once = [to_envelope(e) for e in events]
    again = [to_envelope(e) for e in events]
    assert [e.event_id for e in once if e] == [e.event_id for e in again if e]
    assert len({e.event_id for e in once if e}) == 2
    assert all(e is not None and e.event_id.version == 7 for e in once)
    assert [e.occurred_at for e in once if e] == [e.timestamp for e in events]


CPA_1 = values.Terms(values.PayoutType.CPA, Decimal(1))


def test_an_offer_keeps_and_publishes_its_postback_token_only_as_a_hash() -> None:
    offer = Offer.create("Shoes", "https://shop.example/", "USD", CPA_1, postback_token="first-token")
    until = offer.rotate_postback_token("second-token", 3, datetime(2026, 11, 1, 10, tzinfo=UTC))
    events = stored_and_loaded(offer)
    assert all("first-token" not in repr(vars(e)) and "second-token" not in repr(vars(e)) for e in events)
    created, rotated = (to_envelope(e) for e in events)
    assert created is not None and rotated is not None
    assert created.payload.conversion_security.token_sha256 == sha256(b"first-token").hexdigest()
    assert rotated.key == offer.offer_id
    assert rotated.payload.model_dump(mode="json") == {
        "offer_id": offer.offer_id, "token_sha256": sha256(b"second-token").hexdigest(),
        "previous_token_sha256": sha256(b"first-token").hexdigest(),
        "previous_valid_until": "2026-11-01T13:00:00Z"}
    assert until == datetime(2026, 11, 1, 13, tzinfo=UTC)


def test_an_offer_stored_with_its_token_in_clear_publishes_and_keeps_only_its_hash() -> None:
    """Offers created before tokens were kept hashed hold the token in their stored events."""
    mapper = _mapper()
    offer = Offer.create("Shoes", "https://shop.example/", "USD", CPA_1)
    stored = mapper.to_stored_event(offer.collect_events()[0])
    state = json.loads(stored.state)
    del state["postback_token_sha256"]
    old_style = mapper.to_domain_event(replace(stored, state=json.dumps({**state, "postback_token": "clear"})
                                               .encode()))
    envelope = to_envelope(old_style)
    assert envelope is not None and "clear" not in envelope.model_dump_json()
    assert envelope.payload.conversion_security.token_sha256 == sha256(b"clear").hexdigest()
    replayed = old_style.mutate(None)
    assert replayed is not None and replayed.postback_token_sha256 == sha256(b"clear").hexdigest()


def test_an_application_and_its_users_are_published_whole_after_a_store_round_trip() -> None:
    from afflux_partners.domain.people import Application, Role

    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    partner = Partner.apply("Trail Reviews", "lena@trail.example",
                            Application("Trail GmbH", "https://trail.example", ("website", "email"), "DE",
                                        at, at))
    partner.decide(True, "fits")
    partner.invite_user("usr_" + "1" * 32, "lena@trail.example", "Lena", Role.OWNER, None, at)
    partner.activate_user("usr_" + "1" * 32)
    partner.reset_password("usr_" + "1" * 32, at)
    partner.invite_user("usr_" + "2" * 32, "max@trail.example", None, Role.MEMBER, "usr_" + "1" * 32, at)
    partner.remove_user("usr_" + "2" * 32, "usr_" + "1" * 32)

    payloads = [envelope.payload for envelope in published(partner)]

    assert [type(p).__name__ for p in payloads] == [
        "PartnerCreated", "PartnerApplied", "PartnerStatusChanged", "PartnerUserInvited",
        "PartnerUserActivated", "PartnerUserPasswordReset", "PartnerUserInvited", "PartnerUserRemoved"]
    created, applied, verdict, invited, activated, _, _, removed = payloads
    assert created.status == contracts.PartnerStatus.PENDING
    assert (applied.name, applied.traffic_sources, applied.country, applied.email_verified_at) == (
        "Trail Reviews", ("website", "email"), "DE", at)
    assert (verdict.previous_status, verdict.status, verdict.reason) == ("pending", "active", "fits")
    assert (invited.role, invited.status, invited.expires_at) == ("owner", "invited", at)
    assert (activated.email, activated.name, activated.role, activated.status) == (
        "lena@trail.example", "Lena", "owner", "active")
    assert (removed.email, removed.status, removed.removed_by) == ("max@trail.example", "removed",
                                                                   "usr_" + "1" * 32)
    assert {p.partner_id for p in payloads} == {partner.partner_id}


def test_a_payout_profile_is_published_with_its_summary_and_its_details_sealed() -> None:
    at = datetime(2026, 12, 2, tzinfo=UTC)
    profile = PayoutProfile.record("p1", summary_of({"country": "DE"}, None), "sealed-1", ("tax_profile",),
                                   at)
    tax = {"country": "DE", "legal_name": "L", "address": {"line1": "x"}, "tax_form": "w8ben"}
    profile.change(summary_of(tax, {"type": "sepa"}), "sealed-2", ("payment_method",), at)
    first, second = (envelope.payload for envelope in published(profile))
    assert isinstance(first, contracts.PartnerPayoutProfileSet)
    assert (first.partner_id, first.complete, first.missing[-1], first.sealed) == \
        ("p1", False, "payment_method", "sealed-1")
    assert isinstance(second, contracts.PartnerPayoutProfileSet)
    assert (second.complete, second.missing, second.payment_method, second.changed, second.set_at) == \
        (True, (), contracts.PaymentMethodKind.SEPA, ("payment_method",), at)

