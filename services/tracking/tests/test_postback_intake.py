"""Conversion postbacks on the running service: validated, on the log, then 200."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from tracking_fixtures import (
    POSTBACK_TOKEN,
    OnLog,
    RunningTracking,
    approval,
    fresh_id,
    offer_created,
    partner_created,
    tracking_records,
)

from afflux_contracts import ConversionReported
from afflux_tracking.domain.links import new_transaction_id


@pytest.fixture(scope="module")
async def offer_id(tracking: RunningTracking) -> str:
    """One offer (with a partner holding coupon code SUMMER10-<offer>) the module reports on."""
    offer, partner = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(offer_created(offer, "https://shop.example/?t={transaction_id}"),
                                    partner_created(partner),
                                    approval(offer, partner, coupon_codes=(f"SUMMER10-{offer}",)))
    return offer


async def reported(tracking: RunningTracking, response_body: dict[str, Any]) -> OnLog:
    """The one ConversionReported on the log with the conversion_id the service answered."""
    conversion_id = response_body["conversion_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", conversion_id)

    def matches(payload: object) -> bool:
        return isinstance(payload, ConversionReported) and payload.conversion_id == conversion_id

    [record] = await tracking_records(tracking.bootstrap, matches)
    return record


async def test_get_postback_is_recorded_with_the_amount_as_a_decimal_string(
    tracking: RunningTracking, offer_id: str,
) -> None:
    transaction_id = new_transaction_id(offer_id)
    response = await tracking.client.get("/postback", params={
        "transaction_id": transaction_id, "event": "sale", "amount": "12.50", "currency": "usd",
        "order_id": "ORD-1", "token": POSTBACK_TOKEN,
    })

    assert response.status_code == 200
    record = await reported(tracking, response.json())
    conversion: ConversionReported = record.payload
    assert record.key == transaction_id  # same partition as its click
    assert record.wire["payload"]["amount"] == "12.50"
    assert (conversion.transaction_id, conversion.event, conversion.amount, conversion.currency,
            conversion.order_id) == (transaction_id, "sale", Decimal("12.50"), "USD", "ORD-1")
    assert (conversion.method, conversion.ip, conversion.coupon_code) == ("postback", "127.0.0.1", None)
    assert conversion.offer_id == offer_id


async def test_post_postback_reads_a_form_body_and_the_query_string(
    tracking: RunningTracking, offer_id: str
) -> None:
    transaction_id = new_transaction_id(offer_id)
    response = await tracking.client.post(
        "/postback", params={"transaction_id": transaction_id},
        data={"amount": "99.9900", "currency": "EUR", "token": POSTBACK_TOKEN},
    )

    assert response.status_code == 200
    conversion: ConversionReported = (await reported(tracking, response.json())).payload
    assert (conversion.transaction_id, conversion.event) == (transaction_id, "conversion")
    assert (conversion.amount, conversion.currency) == (Decimal("99.9900"), "EUR")


async def test_post_postback_reads_json_numbers_as_exact_decimals(
    tracking: RunningTracking, offer_id: str
) -> None:
    coupon = f"summer10-{offer_id}"  # codes are matched whatever their case
    response = await tracking.client.post("/postback", json={
        "coupon_code": coupon, "amount": 19.99, "order_id": 12345, "unknown": {"nested": True},
    }, headers={"X-Afflux-Postback-Token": POSTBACK_TOKEN})

    assert response.status_code == 200, response.text
    record = await reported(tracking, response.json())
    assert record.key == coupon
    assert record.wire["payload"]["amount"] == "19.99"
    assert (record.payload.coupon_code, record.payload.order_id) == (coupon, "12345")
    assert record.payload.offer_id == offer_id


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "transaction_id"),
        ({"amount": "10"}, "transaction_id"),
        ({"transaction_id": "nothex"}, "transaction_id"),
        ({"transaction_id": "0" * 32, "amount": "abc"}, "amount"),
        ({"transaction_id": "0" * 32, "amount": "-1"}, "amount"),
        ({"transaction_id": "0" * 32, "amount": "NaN"}, "amount"),
        ({"transaction_id": "0" * 32, "currency": "dollars"}, "currency"),
        ({"transaction_id": "0" * 32}, "offer_id"),  # a bare id names no offer: offer_id is needed
        ({"transaction_id": "0" * 32 + "-no-such-offer"}, "transaction_id"),
        ({"transaction_id": "0" * 32 + "-a", "offer_id": "b"}, "offer_id"),
        ({"coupon_code": "NO-SUCH-CODE"}, "coupon_code"),
    ],
)
async def test_bad_get_postback_is_422_naming_the_parameter(
    tracking: RunningTracking, params: dict[str, str], field: str
) -> None:
    response = await tracking.client.get("/postback", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transaction_id": "0" * 32, "amount": True}, "amount"),
        ({"transaction_id": ["0" * 32]}, "transaction_id"),
        ({"transaction_id": "0" * 32, "amount": -1}, "amount"),
        ({"transaction_id": "0" * 32, "amount": 1.23456}, "amount"),
    ],
)
async def test_bad_json_postback_is_422_naming_the_parameter(
    tracking: RunningTracking, body: dict[str, Any], field: str
) -> None:
    response = await tracking.client.post("/postback", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"transaction_id": ', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"amount": NaN}', "application/json"),
        (b"[" * 50_000, "application/json"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
async def test_unreadable_postback_body_is_a_4xx_never_a_5xx(
    tracking: RunningTracking, content: bytes, content_type: str
) -> None:
    response = await tracking.client.post(
        "/postback", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_oversized_postback_body_is_refused(tracking: RunningTracking) -> None:
    response = await tracking.client.post("/postback", content=b"a=" + b"x" * 70_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
