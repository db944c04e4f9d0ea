"""The walking skeleton, through the public HTTP contract only: partner and offer,
approval, tracking link, click, postback, attribution, balance."""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

RUNS = 5


def test_an_8_percent_offer_pays_the_partner_9_60_usd_for_a_120_sale(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Creator")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)

    latencies = []
    for run in range(1, RUNS + 1):
        transaction_id = follow_tracking_link(link, sub1=f"run {run}")
        started = time.perf_counter()
        postback = httpx.post(f"{platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": "120.00", "currency": "USD",
            "order_id": f"order-{run}", "token": postback_token(transaction_id)})
        assert postback.status_code == 200, postback.text
        wait_for(lambda run=run: api.accrued(partner_id) == Decimal("9.60") * run, timeout=60, interval=0.01)
        latencies.append(time.perf_counter() - started)
        if run == 1:
            assert api.balance(partner_id) == {"accrued": Decimal("9.60"), "pending": Decimal(0),
                                               "payable": Decimal(0), "paid": Decimal(0)}
            conversion = api.get("attribution", f"/v1/conversions/{postback.json()['conversion_id']}").json()
            assert conversion["partner_id"] == partner_id
            assert conversion["offer_id"] == offer_id
            assert conversion["payout"] == {"amount": "9.60", "currency": "USD"}

    with capsys.disabled():
        print(f"\npostback → balance latency over {RUNS} runs: median "
              f"{statistics.median(latencies) * 1000:.0f} ms (min {min(latencies) * 1000:.0f}, "
              f"max {max(latencies) * 1000:.0f})")


def test_a_second_postback_for_the_same_order_is_rejected_and_pays_nothing(platform: Platform) -> None:
    """Two clicks, one order: the second report is another conversion, a duplicate order."""
    api = AdminApi(platform)
    partner_id = api.create_partner("Coupons")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)

    conversion_ids = []
    for _ in range(2):
        transaction_id = follow_tracking_link(link)
        response = httpx.get(f"{platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": "120.00", "order_id": "same-order",
            "token": postback_token(transaction_id)})
        assert response.status_code == 200, response.text
        conversion_ids.append(response.json()["conversion_id"])

    def decided(conversion_id: str) -> dict[str, str] | None:
        response = api.get("attribution", f"/v1/conversions/{conversion_id}")
        return response.json() if response.status_code == 200 and "decided_at" in response.json() else None

    first, second = (wait_for(lambda c=c: decided(c), timeout=60) for c in conversion_ids)
    assert first["payout"] == {"amount": "9.60", "currency": "USD"}
    assert second["status"] == "rejected" and second["reason"] == "duplicate"
    wait_for(lambda: api.accrued(partner_id) == Decimal("9.60"))
