"""Terms in force at conversion time: the latest version at or before it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from attribution_rules_fixtures import CLICKED_AT, attribute, click, cpa, offer, relationship, report

from afflux_attribution.domain.rules import Attributed
from afflux_attribution.domain.terms import offer_terms_in_force, relationship_terms_in_force
from afflux_contracts import OfferStatus

CONVERTED_AT = CLICKED_AT + timedelta(hours=2)


def test_latest_version_at_or_before_the_conversion_is_in_force() -> None:
    first = offer(effective_from=CLICKED_AT - timedelta(days=5), payout=cpa("5.00"))
    second = offer(effective_from=CLICKED_AT - timedelta(days=1), payout=cpa("6.00"))
    exactly_then = offer(effective_from=CONVERTED_AT, payout=cpa("7.00"))
    later = offer(effective_from=CONVERTED_AT + timedelta(seconds=1), payout=cpa("8.00"))
    assert offer_terms_in_force([later, second, first], CONVERTED_AT) == second
    assert offer_terms_in_force([first, exactly_then, later], CONVERTED_AT) == exactly_then


def test_offer_known_only_from_after_the_conversion_uses_its_earliest_version() -> None:
    earliest = offer(effective_from=CONVERTED_AT + timedelta(minutes=1))
    latest = offer(effective_from=CONVERTED_AT + timedelta(minutes=2), status=OfferStatus.PAUSED)
    assert offer_terms_in_force([latest, earliest], CONVERTED_AT) == earliest


def test_offer_without_any_version_has_no_terms_in_force() -> None:
    assert offer_terms_in_force([], CONVERTED_AT) is None


def test_relationship_set_after_the_conversion_is_not_in_force() -> None:
    later = relationship(effective_from=CONVERTED_AT + timedelta(seconds=1))
    earlier = relationship(effective_from=CONVERTED_AT - timedelta(days=1))
    assert relationship_terms_in_force([later], CONVERTED_AT) is None
    assert relationship_terms_in_force([later, earlier], CONVERTED_AT) == earlier


def test_a_payout_change_after_the_conversion_does_not_reprice_it() -> None:
    versions = [offer(effective_from=CLICKED_AT - timedelta(days=5), payout=cpa("5.00")),
                offer(effective_from=CONVERTED_AT + timedelta(minutes=5), payout=cpa("50.00"))]
    custom = [relationship(effective_from=CONVERTED_AT + timedelta(minutes=5), payout=cpa("70.00"))]
    decision = attribute(report(converted_at=CONVERTED_AT), click(),
                         offer_terms_in_force(versions, CONVERTED_AT),
                         relationship_terms_in_force(custom, CONVERTED_AT), False)
    assert isinstance(decision, Attributed) and decision.payout == Decimal("5.00")


def test_an_offer_paused_after_the_conversion_still_credits_it() -> None:
    versions = [offer(effective_from=CLICKED_AT - timedelta(days=5)),
                offer(effective_from=CONVERTED_AT + timedelta(minutes=5), status=OfferStatus.PAUSED)]
    decision = attribute(report(converted_at=CONVERTED_AT), click(),
                         offer_terms_in_force(versions, CONVERTED_AT), None, False)
    assert isinstance(decision, Attributed)


def test_an_offer_paused_before_the_conversion_rejects_it() -> None:
    versions = [offer(effective_from=CLICKED_AT - timedelta(days=5)),
                offer(effective_from=CLICKED_AT + timedelta(minutes=5), status=OfferStatus.PAUSED)]
    decision = attribute(report(converted_at=CONVERTED_AT), click(),
                         offer_terms_in_force(versions, CONVERTED_AT), None, False)
    assert not isinstance(decision, Attributed)
