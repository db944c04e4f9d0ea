"""Partner, Offer and Relationship aggregates: creation rules, status lifecycles and the
deterministic relationship id (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from afflux_partners.domain.offer import Offer
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.relationship import Relationship, relationship_id
from afflux_partners.domain.rules import RuleViolation, StatusChangeRefused
from afflux_partners.domain.values import (
    AllowDeny,
    Billing,
    OfferStatus,
    PartnerStatus,
    PayoutType,
    PostbackMethod,
    Targeting,
    Terms,
)

CPA_5 = Terms(PayoutType.CPA, amount=Decimal("5.00"))


def new_offer(**overrides: object) -> Offer:
    fields: dict[str, object] = {
        "name": "Running shoes",
        "destination_url": "https://shop.example/?tid={transaction_id}",
        "currency": "usd",
        "payout": CPA_5,
    }
    return Offer.create(**{**fields, **overrides})  # type: ignore[arg-type]


def test_partner_ids_are_32_lowercase_hex_characters() -> None:
    partner = Partner.create("Ann", "ann@example.com")
    assert len(partner.partner_id) == 32
    assert UUID(hex=partner.partner_id) == partner.id
    assert partner.partner_id == partner.partner_id.lower()


def test_a_new_partner_is_checked_and_normalised() -> None:
    partner = Partner.create(" Ann ", "ann@example.com", type=" ", tags=["a", "a"],
                             billing=Billing("eur", minimum_payout=Decimal("25")))
    assert (partner.name, partner.type, partner.tags) == ("Ann", None, ("a",))
    assert partner.billing == Billing("EUR", minimum_payout=Decimal("25"))
    with pytest.raises(RuleViolation) as refused:
        Partner.create("Ann", "ann@example.com", billing=Billing("EUR", minimum_payout=Decimal("-1")))
    assert refused.value.field == "billing.minimum_payout"


@pytest.mark.parametrize("status", [PartnerStatus.SUSPENDED, PartnerStatus.REJECTED])
def test_a_partner_cannot_start_suspended_or_rejected(status: PartnerStatus) -> None:
    with pytest.raises(RuleViolation) as refused:
        Partner.create("Ann", "ann@example.com", status=status)
    assert refused.value.field == "status"


def test_changing_a_partner_status_records_one_event_and_repeating_it_none() -> None:
    partner = Partner.create("Ann", "ann@example.com")
    partner.collect_events()
    assert partner.change_status(PartnerStatus.SUSPENDED) is True
    assert partner.change_status(PartnerStatus.SUSPENDED) is False
    events = partner.collect_events()
    assert [type(e).__name__ for e in events] == ["StatusChanged"]
    assert partner.status is PartnerStatus.SUSPENDED


def test_only_a_pending_partner_can_be_rejected() -> None:
    applicant = Partner.create("Ann", "ann@example.com", status=PartnerStatus.PENDING)
    assert applicant.change_status(PartnerStatus.REJECTED)
    active = Partner.create("Bob", "bob@example.com")
    with pytest.raises(StatusChangeRefused):
        active.change_status(PartnerStatus.REJECTED)
    assert active.status is PartnerStatus.ACTIVE


def test_a_new_offer_is_checked_field_by_field() -> None:
    assert new_offer().currency == "USD"
    cases: dict[str, dict[str, object]] = {
        "destination_url": {"destination_url": "ftp://x"},
        "fallback_url": {"fallback_url": "not a url"},
        "payout.percent": {"payout": Terms(PayoutType.CPS)},
        "revenue.amount": {"revenue": Terms(PayoutType.CPA, amount=Decimal(-1))},
        "currency": {"currency": "dollars"},
        "attribution_window_days": {"attribution_window_days": 0},
        "status": {"status": OfferStatus.DELETED},
    }
    for field, overrides in cases.items():
        with pytest.raises(RuleViolation) as refused:
            new_offer(**overrides)
        assert refused.value.field == field


def test_an_offer_can_pause_and_resume_but_a_deleted_offer_stays_deleted() -> None:
    offer = new_offer()
    assert offer.change_status(OfferStatus.PAUSED)
    assert offer.change_status(OfferStatus.ACTIVE)
    assert offer.change_status(OfferStatus.DELETED)
    with pytest.raises(StatusChangeRefused):
        offer.change_status(OfferStatus.ACTIVE)
    assert offer.status is OfferStatus.DELETED


def test_relationship_id_is_a_pure_function_of_offer_and_partner() -> None:
    first = Relationship.create("o1", "p1", approved=True)
    again = Relationship.create("o1", "p1", approved=False)
    assert first.id == again.id == relationship_id("o1", "p1")
    # Pinned: a changed namespace would orphan every stored relationship.
    assert relationship_id("o1", "p1") == UUID("15bd56f4-3195-59e7-ad9a-eade3c39856e")
    assert relationship_id("o1", "p2") != first.id
    assert relationship_id("p1", "o1") != first.id


def test_every_relationship_event_carries_the_whole_state() -> None:
    relationship = Relationship.create("o1", "p1", approved=False, coupon_codes=["ANN10"])
    assert relationship.update(True, payout=CPA_5, coupon_codes=["ANN10"],
                               postback_url="https://ann.example/pb?c={sub1}",
                               targeting=Targeting(devices=AllowDeny(deny=("Tablet",))))
    created, updated = relationship.collect_events()
    state = {"approved": True, "payout": CPA_5, "revenue": None, "coupon_codes": ("ANN10",),
             "postback_url": "https://ann.example/pb?c={sub1}", "events": (), "caps": (),
             "postback_method": PostbackMethod.GET, "postback_status_changes": False, "application": False,
             "targeting": Targeting(devices=AllowDeny(deny=("tablet",)))}
    assert {k: getattr(updated, k) for k in ("offer_id", "partner_id", *state)} == {
        "offer_id": "o1", "partner_id": "p1", **state}
    assert (created.offer_id, created.partner_id, created.approved) == ("o1", "p1", False)  # type: ignore[attr-defined]
    assert relationship.state == state


def test_setting_a_relationship_to_its_current_state_records_nothing() -> None:
    relationship = Relationship.create("o1", "p1", approved=True, coupon_codes=["ANN10"])
    relationship.collect_events()
    assert relationship.update(True, coupon_codes=["ANN10"]) is False
    assert relationship.collect_events() == []


def test_a_relationship_override_is_checked_like_the_offer_terms() -> None:
    with pytest.raises(RuleViolation) as refused:
        Relationship.create("o1", "p1", approved=True, payout=Terms(PayoutType.CPA_CPS, amount=Decimal(1)))
    assert refused.value.field == "payout.percent"
    relationship = Relationship.create("o1", "p1", approved=True)
    with pytest.raises(RuleViolation) as refused:
        relationship.update(True, postback_url="ftp://partner.example")
    assert refused.value.field == "postback_url"
