"""What a postback must carry to be recorded; tracking checks shape, never the click."""

from __future__ import annotations

from decimal import Decimal

import pytest

from afflux_tracking.domain.postbacks import ConversionReport, InvalidPostback, parse_postback

TID = "0123456789abcdef0123456789abcdef"


def test_full_postback_is_read_as_given() -> None:
    report = parse_postback({"transaction_id": TID, "event": "sale", "amount": "12.50",
                             "currency": "usd", "order_id": "A-1", "ignored_extra": "x"})
    assert report == ConversionReport(TID, None, "sale", Decimal("12.50"), "USD", "A-1")
    assert str(report.amount) == "12.50"


def test_event_defaults_to_conversion_and_empty_values_count_as_absent() -> None:
    report = parse_postback({"transaction_id": TID, "coupon_code": "", "amount": "", "event": ""})
    assert report == ConversionReport(TID, None, "conversion", None, None, None)


def test_coupon_code_alone_is_enough() -> None:
    assert parse_postback({"coupon_code": "SUMMER10"}).coupon_code == "SUMMER10"


def test_uppercase_transaction_id_is_normalised_to_the_clicks_lowercase() -> None:
    assert parse_postback({"transaction_id": TID.upper()}).transaction_id == TID


@pytest.mark.parametrize("amount", ["0", "0.0001", "12.3400000", "999999999999999.9999"])
def test_amounts_with_at_most_four_significant_places_are_accepted(amount: str) -> None:
    assert parse_postback({"transaction_id": TID, "amount": amount}).amount == Decimal(amount)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "transaction_id"),
        ({"amount": "10"}, "transaction_id"),
        ({"transaction_id": "nothex"}, "transaction_id"),
        ({"transaction_id": TID + "0"}, "transaction_id"),
        ({"transaction_id": "g" * 32}, "transaction_id"),
        ({"transaction_id": TID, "amount": "abc"}, "amount"),
        ({"transaction_id": TID, "amount": "-1"}, "amount"),
        ({"transaction_id": TID, "amount": "NaN"}, "amount"),
        ({"transaction_id": TID, "amount": "Infinity"}, "amount"),
        ({"transaction_id": TID, "amount": "1e3"}, "amount"),
        ({"transaction_id": TID, "amount": "1.23456"}, "amount"),
        ({"transaction_id": TID, "amount": "1" * 16}, "amount"),
        ({"transaction_id": TID, "amount": "١٢"}, "amount"),
        ({"transaction_id": TID, "currency": "US"}, "currency"),
        ({"transaction_id": TID, "currency": "U5D"}, "currency"),
        ({"transaction_id": TID, "order_id": "x" * 201}, "order_id"),
        ({"coupon_code": "c" * 201}, "coupon_code"),
        ({"transaction_id": TID, "event": "e" * 101}, "event"),
    ],
)
def test_invalid_postback_names_the_parameter_to_fix(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidPostback) as raised:
        parse_postback(params)
    assert raised.value.field == field
    assert raised.value.message
