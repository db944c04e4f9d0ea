"""The attribution decision, rule by rule (pure: no broker, no database)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from attribution_rules_fixtures import (
    CLICKED_AT,
    attribute,
    click,
    cpa,
    cpa_cps,
    cpc,
    cps,
    offer,
    relationship,
    report,
)

from afflux_attribution.domain.rules import (
    Attributed,
    Decision,
    OfferTermsUnknown,
    Rejected,
)
from afflux_contracts import ClickOutcome, OfferStatus, RejectionReason


def attributed(decision: Decision) -> Attributed:
    assert isinstance(decision, Attributed), decision
    return decision


def rejected(decision: Decision) -> Rejected:
    assert isinstance(decision, Rejected), decision
    return decision


def rejected_for(decision: Decision) -> RejectionReason:
    return rejected(decision).reason


def test_cpa_offer_pays_its_flat_amount_whatever_the_sale() -> None:
    decision = attribute(report(), click(), offer(payout=cpa("5.00")), None, False)
    assert attributed(decision).payout == Decimal("5.00")
    assert attributed(decision).currency == "USD"
    assert attributed(decision).click == click()


def test_cps_offer_pays_its_percent_of_the_sale_amount() -> None:
    decision = attribute(report(sale_amount=Decimal("120.00")), click(), offer(payout=cps("8")), None, False)
    assert attributed(decision).payout == Decimal("9.60")


def test_cpa_cps_offer_pays_the_flat_amount_plus_the_percent() -> None:
    terms = offer(payout=cpa_cps("2.00", "8"))
    decision = attribute(report(sale_amount=Decimal("120.00")), click(), terms, None, False)
    assert attributed(decision).payout == Decimal("11.60")


def test_revenue_is_priced_from_the_offers_revenue_terms() -> None:
    terms = offer(payout=cps("8"), revenue=cps("15"))
    decision = attribute(report(sale_amount=Decimal("120.00")), click(), terms, None, False)
    assert (attributed(decision).payout, attributed(decision).revenue) == (Decimal("9.60"), Decimal("18.00"))


def test_offer_without_revenue_terms_books_no_revenue() -> None:
    assert attributed(attribute(report(), click(), offer(revenue=None), None, False)).revenue is None


def test_partners_custom_payout_wins_over_the_offers_default() -> None:
    custom = relationship(payout=cps("8"))
    decision = attribute(report(sale_amount=Decimal("120.00")), click(), offer(payout=cpa("5.00")), custom,
                         False)
    assert attributed(decision).payout == Decimal("9.60")


def test_custom_payout_leaves_the_offers_revenue_in_place() -> None:
    terms = offer(payout=cpa("5.00"), revenue=cpa("7.00"))
    decision = attribute(report(), click(), terms, relationship(payout=cpa("6.00")), False)
    assert (attributed(decision).payout, attributed(decision).revenue) == (Decimal("6.00"), Decimal("7.00"))


def test_custom_revenue_wins_over_the_offers_revenue() -> None:
    terms = offer(revenue=cpa("7.00"))
    decision = attribute(report(), click(), terms, relationship(revenue=cpa("9.00")), False)
    assert attributed(decision).revenue == Decimal("9.00")


def test_relationship_without_custom_terms_keeps_the_offers_terms() -> None:
    decision = attribute(report(), click(), offer(payout=cpa("5.00")), relationship(), False)
    assert attributed(decision).payout == Decimal("5.00")


def test_conversion_on_a_cpc_offer_is_attributed_with_zero_payout() -> None:
    decision = attribute(report(), click(), offer(payout=cpc("0.40")), None, False)
    assert attributed(decision).payout == Decimal("0.00")
    assert str(attributed(decision).payout) == "0.00"


def test_coupon_no_partner_holds_on_the_offer_is_rejected_as_coupon_not_found() -> None:
    decision = attribute(report(transaction_id=None, coupon_code="SPRING"), None, None, None, False)
    assert rejected_for(decision) is RejectionReason.COUPON_NOT_FOUND


def test_conversion_whose_click_is_not_in_the_index_is_rejected_as_click_not_found() -> None:
    decision = attribute(report(), None, None, None, False)
    assert rejected_for(decision) is RejectionReason.CLICK_NOT_FOUND
    assert "tx-1" in rejected(decision).message


@pytest.mark.parametrize("outcome", [o for o in ClickOutcome if o is not ClickOutcome.VALID])
def test_conversion_of_an_invalid_click_is_rejected_as_click_invalid(outcome: ClickOutcome) -> None:
    decision = attribute(report(), click(outcome=outcome), offer(), None, False)
    assert rejected_for(decision) is RejectionReason.CLICK_INVALID
    assert isinstance(decision, Rejected) and decision.click == click(outcome=outcome)


def test_conversion_exactly_at_the_end_of_the_window_is_attributed() -> None:
    at_the_end = report(converted_at=CLICKED_AT + timedelta(days=30))
    assert attributed(attribute(at_the_end, click(), offer(attribution_window_days=30), None, False))


def test_conversion_just_after_the_window_is_rejected_as_outside_attribution_window() -> None:
    too_late = report(converted_at=CLICKED_AT + timedelta(days=30, microseconds=1))
    decision = attribute(too_late, click(), offer(attribution_window_days=30), None, False)
    assert rejected_for(decision) is RejectionReason.OUTSIDE_WINDOW


def test_window_is_the_offers_own_number_of_days() -> None:
    eight_days = report(converted_at=CLICKED_AT + timedelta(days=8))
    assert rejected_for(attribute(eight_days, click(), offer(attribution_window_days=7), None, False)) \
        is RejectionReason.OUTSIDE_WINDOW
    assert attributed(attribute(eight_days, click(), offer(attribution_window_days=9), None, False))


def test_conversion_reported_before_its_click_is_rejected_as_outside_attribution_window() -> None:
    too_early = report(converted_at=CLICKED_AT - timedelta(seconds=1))
    decision = attribute(too_early, click(), offer(), None, False)
    assert rejected_for(decision) is RejectionReason.OUTSIDE_WINDOW
    assert "before its click" in rejected(decision).message


@pytest.mark.parametrize("status", [OfferStatus.PAUSED, OfferStatus.PENDING, OfferStatus.DELETED])
def test_conversion_on_an_offer_not_active_then_is_rejected_as_inactive_offer(status: OfferStatus) -> None:
    decision = attribute(report(), click(), offer(status=status), None, False)
    assert rejected_for(decision) is RejectionReason.INACTIVE_OFFER


def test_sale_reported_in_another_currency_is_rejected_as_currency_mismatch() -> None:
    decision = attribute(report(currency="EUR"), click(), offer(currency="USD"), None, False)
    assert rejected_for(decision) is RejectionReason.CURRENCY_MISMATCH
    assert isinstance(decision, Rejected) and decision.currency == "EUR"


def test_sale_reported_without_currency_is_taken_in_the_offers_currency() -> None:
    decision = attribute(report(currency=None), click(), offer(currency="USD", payout=cps("8")), None, False)
    assert attributed(decision).payout == Decimal("9.60")


def test_order_already_credited_on_the_offer_is_rejected_as_duplicate() -> None:
    decision = attribute(report(order_id="order-1"), click(), offer(), None, True)
    assert rejected_for(decision) is RejectionReason.DUPLICATE


def test_conversion_without_order_id_is_never_a_duplicate() -> None:
    assert attributed(attribute(report(order_id=None), click(), offer(), None, True))


def test_cps_conversion_without_sale_amount_is_rejected_as_missing_sale_amount() -> None:
    decision = attribute(report(sale_amount=None), click(), offer(payout=cps("8")), None, False)
    assert rejected_for(decision) is RejectionReason.MISSING_SALE_AMOUNT


def test_cps_revenue_without_sale_amount_is_rejected_too_rather_than_booked_short() -> None:
    terms = offer(payout=cpa("5.00"), revenue=cps("10"))
    decision = attribute(report(sale_amount=None), click(), terms, None, False)
    assert rejected_for(decision) is RejectionReason.MISSING_SALE_AMOUNT


def test_cpa_conversion_without_sale_amount_is_attributed() -> None:
    assert attributed(attribute(report(sale_amount=None), click(), offer(payout=cpa("5.00")), None, False))


def test_click_whose_offer_has_no_known_terms_is_not_decided() -> None:
    with pytest.raises(OfferTermsUnknown):
        attribute(report(), click(), None, None, False)


def test_rules_are_checked_in_order_invalid_click_before_window_before_offer_status() -> None:
    everything_wrong = attribute(
        report(converted_at=CLICKED_AT + timedelta(days=90), currency="EUR"),
        click(outcome=ClickOutcome.OFFER_PAUSED), offer(status=OfferStatus.PAUSED), None, True,
    )
    assert rejected_for(everything_wrong) is RejectionReason.CLICK_INVALID
    late_on_paused = attribute(report(converted_at=CLICKED_AT + timedelta(days=90)), click(),
                               offer(status=OfferStatus.PAUSED), None, False)
    assert rejected_for(late_on_paused) is RejectionReason.OUTSIDE_WINDOW
