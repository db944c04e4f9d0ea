"""Pricing one conversion: the arithmetic, and the one rounding rule (half-up to the
currency's minor unit, applied once to the whole amount)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from attribution_rules_fixtures import cpa, cpa_cps, cpc, cps

from afflux_attribution.domain.pricing import MissingSaleAmount, price


def test_cps_pays_eight_percent_of_120_as_9_60() -> None:
    assert price(cps("8"), Decimal("120.00"), "USD") == Decimal("9.60")


def test_cpa_pays_its_amount_in_the_currencys_minor_units() -> None:
    assert str(price(cpa("5"), None, "USD")) == "5.00"


def test_cpa_cps_adds_both_parts() -> None:
    assert price(cpa_cps("1.50", "10"), Decimal("45.00"), "USD") == Decimal("6.00")


def test_cpc_terms_pay_nothing_per_conversion() -> None:
    assert str(price(cpc("0.40"), Decimal("99.00"), "USD")) == "0.00"


def test_a_fraction_of_a_cent_below_one_half_rounds_down() -> None:
    # 8% of 10.05 = 0.804
    assert price(cps("8"), Decimal("10.05"), "USD") == Decimal("0.80")


def test_half_a_cent_rounds_up() -> None:
    # 8% of 10.0625 = 0.805
    assert price(cps("8"), Decimal("10.0625"), "USD") == Decimal("0.81")


def test_cpa_cps_is_rounded_once_as_a_whole() -> None:
    # 0.004 + 0.004 rounded apart would be 0.00; the whole 0.008 is 0.01
    assert price(cpa_cps("0.004", "8"), Decimal("0.05"), "USD") == Decimal("0.01")


def test_yen_has_no_minor_unit() -> None:
    assert str(price(cps("8"), Decimal("1256"), "JPY")) == "100"  # 100.48
    assert str(price(cps("8"), Decimal("1250.00"), "JPY")) == "100"
    assert str(price(cps("10"), Decimal("1255"), "JPY")) == "126"  # 125.5 rounds up


def test_three_decimal_currency_keeps_three_places() -> None:
    assert str(price(cps("8"), Decimal("12.3456"), "KWD")) == "0.988"  # 0.987648


def test_percentage_terms_without_a_sale_amount_cannot_be_priced() -> None:
    with pytest.raises(MissingSaleAmount):
        price(cps("8"), None, "USD")
    with pytest.raises(MissingSaleAmount):
        price(cpa_cps("1.00", "8"), None, "USD")
