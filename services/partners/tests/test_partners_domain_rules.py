"""The rules offers, partners and relationships must pass (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from afflux_partners.domain.rules import (
    RuleViolation,
    check_attribution_window,
    check_coupon_codes,
    check_currency,
    check_email,
    check_http_url,
    check_name,
    check_partner_type,
    check_tags,
    check_terms,
)
from afflux_partners.domain.values import PayoutType, Terms

D = Decimal


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        (Terms(PayoutType.CPA), "payout.amount"),
        (Terms(PayoutType.CPC), "payout.amount"),
        (Terms(PayoutType.CPS), "payout.percent"),
        (Terms(PayoutType.CPA_CPS, amount=D(5)), "payout.percent"),
        (Terms(PayoutType.CPA_CPS, percent=D(5)), "payout.amount"),
        (Terms(PayoutType.CPA, amount=D(5), percent=D(5)), "payout.percent"),
        (Terms(PayoutType.CPS, amount=D(5), percent=D(5)), "payout.amount"),
        (Terms(PayoutType.CPA, amount=D("-0.01")), "payout.amount"),
        (Terms(PayoutType.CPS, percent=D("-1")), "payout.percent"),
        (Terms(PayoutType.CPS, percent=D("100.01")), "payout.percent"),
        (Terms(PayoutType.CPA, amount=D("NaN")), "payout.amount"),
        (Terms(PayoutType.CPA, amount=D("1e12")), "payout.amount"),
        (Terms(PayoutType.CPA, amount=D("0.123456789")), "payout.amount"),
    ],
)
def test_terms_that_do_not_price_by_their_type_are_refused_naming_the_field(terms: Terms, field: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_terms(terms, "payout")
    assert refused.value.field == field


@pytest.mark.parametrize(
    "terms",
    [
        Terms(PayoutType.CPA, amount=D("12.50")),
        Terms(PayoutType.CPC, amount=D("0.035")),
        Terms(PayoutType.CPS, percent=D("100")),
        Terms(PayoutType.CPA_CPS, amount=D("0"), percent=D("7.5")),
    ],
)
def test_complete_terms_pass_unchanged(terms: Terms) -> None:
    assert check_terms(terms, "payout") == terms


def test_a_negative_zero_amount_is_kept_as_plain_zero() -> None:
    checked = check_terms(Terms(PayoutType.CPA, amount=D("-0.00")), "revenue")
    assert str(checked.amount) == "0.00"


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/landing?click={transaction_id}&s1={sub1}",
        "http://127.0.0.1:8080/path",
        "HTTPS://Shop.Example/",
    ],
)
def test_absolute_http_urls_with_macros_are_accepted(url: str) -> None:
    assert check_http_url(url, "destination_url") == url


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "shop.example/landing", "/relative", "https://", "javascript:alert(1)",
     "https://shop.example/a b", "https://[::1", "https://x/" + "a" * 2050],
)
def test_urls_that_are_not_absolute_http_are_refused(url: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_http_url(url, "fallback_url")
    assert refused.value.field == "fallback_url"
    assert refused.value.code == "invalid_url"


def test_currency_is_three_letters_kept_upper_case() -> None:
    assert check_currency("eur") == "EUR"
    for bad in ("EU", "EURO", "E1R", ""):
        with pytest.raises(RuleViolation):
            check_currency(bad)


@pytest.mark.parametrize("days", [1, 30, 365])
def test_attribution_window_from_one_day_to_a_year_is_accepted(days: int) -> None:
    assert check_attribution_window(days) == days


@pytest.mark.parametrize("days", [0, -1, 366])
def test_attribution_window_outside_a_year_is_refused(days: int) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_attribution_window(days)
    assert refused.value.field == "attribution_window_days"


def test_email_needs_an_at_and_a_dotted_domain() -> None:
    assert check_email(" ann@mail.example.com ") == "ann@mail.example.com"
    for bad in ("ann", "ann@example", "@example.com", "ann@.com", "ann@example..com", "a b@example.com"):
        with pytest.raises(RuleViolation):
            check_email(bad)


def test_blank_names_are_refused_and_names_are_trimmed() -> None:
    assert check_name("  Ann's Deals ") == "Ann's Deals"
    with pytest.raises(RuleViolation) as refused:
        check_name("   ")
    assert refused.value.field == "name"


def test_tags_are_kept_once_in_order() -> None:
    assert check_tags(["vip", " creator", "vip"]) == ("vip", "creator")
    with pytest.raises(RuleViolation):
        check_tags(["ok", " "])


def test_coupon_codes_differing_only_in_case_are_one_code() -> None:
    assert check_coupon_codes(["SAVE10", "ann-20"]) == ("SAVE10", "ann-20")
    with pytest.raises(RuleViolation) as refused:
        check_coupon_codes(["SAVE10", "save10"])
    assert refused.value.field == "coupon_codes"
    for bad in ("", "HAS SPACE", "x" * 65):
        with pytest.raises(RuleViolation):
            check_coupon_codes([bad])


def test_a_partner_type_is_a_short_label_and_blank_means_none() -> None:
    assert check_partner_type(" creator ") == "creator"
    assert check_partner_type("  ") is None
    with pytest.raises(RuleViolation) as refused:
        check_partner_type("x" * 65)
    assert refused.value.field == "type"
