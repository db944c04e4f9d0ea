"""Where a click goes, decided from the link's offer, partner and relationship alone."""

from __future__ import annotations

import pytest

from afflux_contracts import ClickOutcome, OfferStatus, PartnerStatus, Visibility
from afflux_tracking.domain.routing import (
    ClickDecision,
    LinkState,
    OfferRoute,
    PartnerRoute,
    UnknownLink,
    decide_click,
)

DESTINATION = "https://shop.example/landing?tid={transaction_id}"
FALLBACK = "https://shop.example/other-offers?tid={transaction_id}"


def offer(
    status: OfferStatus = OfferStatus.ACTIVE,
    visibility: Visibility = Visibility.REQUIRE_APPROVAL,
    fallback_url: str | None = FALLBACK,
) -> OfferRoute:
    return OfferRoute("o-1", DESTINATION, status, visibility, fallback_url)


def partner(status: PartnerStatus = PartnerStatus.ACTIVE) -> PartnerRoute:
    return PartnerRoute("p-1", status)


def decided(link: LinkState) -> ClickDecision:
    decision = decide_click(link)
    assert isinstance(decision, ClickDecision)
    return decision


def test_approved_partner_on_active_offer_goes_to_the_destination() -> None:
    decision = decided(LinkState(offer(), partner(), approved=True))
    assert decision == ClickDecision(ClickOutcome.VALID, DESTINATION)
    assert decision.valid


def test_public_offer_without_relationship_is_valid() -> None:
    decision = decided(LinkState(offer(visibility=Visibility.PUBLIC), partner(), approved=None))
    assert decision.outcome is ClickOutcome.VALID
    assert decision.target == DESTINATION


def test_public_offer_explicitly_refused_to_the_partner_goes_to_the_fallback() -> None:
    decision = decided(LinkState(offer(visibility=Visibility.PUBLIC), partner(), approved=False))
    assert decision == ClickDecision(ClickOutcome.PARTNER_NOT_APPROVED, FALLBACK)


@pytest.mark.parametrize("visibility", [Visibility.REQUIRE_APPROVAL, Visibility.PRIVATE])
@pytest.mark.parametrize("approved", [None, False])
def test_offer_needing_approval_sends_unapproved_partner_to_the_fallback(
    visibility: Visibility, approved: bool | None
) -> None:
    decision = decided(LinkState(offer(visibility=visibility), partner(), approved=approved))
    assert decision == ClickDecision(ClickOutcome.PARTNER_NOT_APPROVED, FALLBACK)


def test_paused_offer_goes_to_the_fallback_even_for_an_approved_partner() -> None:
    decision = decided(LinkState(offer(status=OfferStatus.PAUSED), partner(), approved=True))
    assert decision == ClickDecision(ClickOutcome.OFFER_PAUSED, FALLBACK)


@pytest.mark.parametrize("status", [OfferStatus.PENDING, OfferStatus.DELETED])
def test_pending_or_deleted_offer_is_inactive(status: OfferStatus) -> None:
    decision = decided(LinkState(offer(status=status), partner(), approved=True))
    assert decision == ClickDecision(ClickOutcome.OFFER_INACTIVE, FALLBACK)


@pytest.mark.parametrize(
    "status",
    [PartnerStatus.PENDING, PartnerStatus.INACTIVE, PartnerStatus.SUSPENDED, PartnerStatus.REJECTED],
)
def test_partner_that_is_not_active_goes_to_the_fallback(status: PartnerStatus) -> None:
    decision = decided(LinkState(offer(), partner(status), approved=True))
    assert decision == ClickDecision(ClickOutcome.PARTNER_INACTIVE, FALLBACK)


def test_offer_state_is_reported_before_partner_state() -> None:
    link = LinkState(offer(status=OfferStatus.PAUSED), partner(PartnerStatus.SUSPENDED), approved=False)
    assert decided(link).outcome is ClickOutcome.OFFER_PAUSED


@pytest.mark.parametrize("fallback_url", [None, ""])
def test_invalid_click_without_fallback_goes_nowhere_never_to_the_destination(
    fallback_url: str | None,
) -> None:
    link = LinkState(offer(status=OfferStatus.PAUSED, fallback_url=fallback_url), partner(), approved=True)
    assert decided(link) == ClickDecision(ClickOutcome.OFFER_PAUSED, None)


@pytest.mark.parametrize(
    ("link", "offer_known", "partner_known"),
    [
        (LinkState(None, partner(), approved=True), False, True),
        (LinkState(offer(), None, approved=True), True, False),
        (LinkState(None, None), False, False),
    ],
)
def test_link_to_unknown_offer_or_partner_is_not_a_click(
    link: LinkState, offer_known: bool, partner_known: bool
) -> None:
    decision = decide_click(link)
    assert decision == UnknownLink(offer_known=offer_known, partner_known=partner_known)
    assert isinstance(decision, UnknownLink)
    assert ("offer" if not offer_known else "partner") in decision.message
