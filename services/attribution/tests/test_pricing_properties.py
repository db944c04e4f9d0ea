"""Properties of attribution's pure rules, over generated terms, amounts and times:
pricing (``domain/pricing.py``), the attribution window and the terms in force
(``domain/rules.py``, ``domain/terms.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from afflux_attribution.domain.pricing import price
from afflux_attribution.domain.rules import within_window
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, offer_terms_in_force
from afflux_contracts import OfferStatus, PayoutType, minor_units, round_money

# The sizes partners accepts (12 integer digits, 8 places) and a sale up to a billion.
amounts = st.decimals(min_value=0, max_value=Decimal("999999999999.99999999"), places=8)
percents = st.decimals(min_value=0, max_value=100, places=4)
sales = st.decimals(min_value=0, max_value=Decimal("1000000000"), places=4)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                        timezones=st.just(UTC))
windows = st.integers(min_value=0, max_value=365)


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


@given(amount=amounts, sale=st.none() | sales, currency=currencies)
def test_cpa_pays_its_amount_rounded_whatever_the_sale(amount: Decimal, sale: Decimal | None,
                                                       currency: str) -> None:
    assert price(PricingTerms(PayoutType.CPA, amount=amount), sale, currency) == round_money(amount, currency)


@given(percent=percents, sale=sales, currency=currencies)
def test_cps_pays_its_percent_of_the_sale_in_the_currency_minor_unit(
    percent: Decimal, sale: Decimal, currency: str
) -> None:
    paid = price(PricingTerms(PayoutType.CPS, percent=percent), sale, currency)
    assert paid == round_money(paid, currency)  # already in minor units
    assert abs(paid - percent * sale / 100) <= minor_unit(currency) / 2
    assert Decimal(0) <= paid <= round_money(sale, currency)


@given(amount=amounts, percent=percents, sale=sales, currency=currencies)
def test_cpa_cps_is_rounded_once_as_a_whole(amount: Decimal, percent: Decimal, sale: Decimal,
                                            currency: str) -> None:
    whole = price(PricingTerms(PayoutType.CPA_CPS, amount=amount, percent=percent), sale, currency)
    assert whole == round_money(amount + percent / 100 * sale, currency)
    by_parts = (price(PricingTerms(PayoutType.CPA, amount=amount), sale, currency)
                + price(PricingTerms(PayoutType.CPS, percent=percent), sale, currency))
    assert abs(whole - by_parts) <= minor_unit(currency)


@given(percent=percents, smaller=sales, more=sales, currency=currencies)
def test_a_bigger_sale_never_pays_less(percent: Decimal, smaller: Decimal, more: Decimal,
                                       currency: str) -> None:
    terms = PricingTerms(PayoutType.CPS, percent=percent)
    assert price(terms, smaller, currency) <= price(terms, smaller + more, currency)


@given(amount=amounts, sale=st.none() | sales, currency=currencies)
def test_cpc_terms_pay_nothing_per_conversion(amount: Decimal, sale: Decimal | None, currency: str) -> None:
    assert price(PricingTerms(PayoutType.CPC, amount=amount), sale, currency) == 0


@given(clicked_at=instants, window=windows, offset=st.timedeltas(min_value=timedelta(0),
                                                                  max_value=timedelta(days=400)))
def test_a_conversion_is_within_its_window_exactly_from_the_click_to_window_days_after(
    clicked_at: datetime, window: int, offset: timedelta
) -> None:
    assert within_window(clicked_at, clicked_at + offset, window) == (offset <= timedelta(days=window))
    assert not within_window(clicked_at, clicked_at - timedelta(microseconds=1) - offset, window)


@given(clicked_at=instants, converted_at=instants, window=windows, more=windows)
def test_a_longer_window_never_loses_a_conversion(clicked_at: datetime, converted_at: datetime,
                                                  window: int, more: int) -> None:
    if within_window(clicked_at, converted_at, window):
        assert within_window(clicked_at, converted_at, window + more)


def _offer_version(effective_from: datetime, window: int) -> OfferTerms:
    return OfferTerms(offer_id="o-1", effective_from=effective_from, currency="USD",
                      payout=PricingTerms(PayoutType.CPA, amount=Decimal(window)), revenue=None,
                      attribution_window_days=window, status=OfferStatus.ACTIVE)


@given(stamps=st.lists(instants, min_size=1, max_size=8, unique=True), at=instants, data=st.data())
def test_the_terms_in_force_do_not_depend_on_the_order_versions_arrived_in(
    stamps: list[datetime], at: datetime, data: st.DataObject
) -> None:
    versions = [_offer_version(stamp, index) for index, stamp in enumerate(stamps)]
    shuffled = data.draw(st.permutations(versions))
    chosen = offer_terms_in_force(shuffled, at)
    assert chosen == offer_terms_in_force(versions, at)
    assert chosen is not None
    earlier = [v.effective_from for v in versions if v.effective_from <= at]
    assert chosen.effective_from == (max(earlier) if earlier else min(stamps))
