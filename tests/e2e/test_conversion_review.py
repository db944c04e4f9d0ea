"""The advertiser's review, through the public HTTP contract over real processes: a sale
approved then reversed (by conversion and by order) leaves nothing to pay, an adjusted
one pays its new amount, and the partner's balance follows each change exactly."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow


def review(api: AdminApi, path: str, body: dict[str, str]) -> httpx.Response:
    with api._client("attribution") as client:
        return client.post(path, json=body)


def test_reversed_sales_pay_nothing_and_an_adjusted_one_pays_its_new_amount(platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Reviewed")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)

    def sale(order_id: str) -> str:
        transaction_id = follow_tracking_link(link)
        response = httpx.post(f"{platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": "120.00", "currency": "USD",
            "order_id": order_id, "token": postback_token(transaction_id)})
        assert response.status_code == 200, response.text
        conversion_id = str(response.json()["conversion_id"])
        wait_for(lambda: "decided_at" in api.get("attribution", f"/v1/conversions/{conversion_id}").json())
        return conversion_id

    first = sale("order-1")
    wait_for(lambda: api.accrued(partner_id) == Decimal("9.60"))
    approved_again = review(api, f"/v1/conversions/{first}/status", {"status": "approved"})
    assert approved_again.status_code == 409
    assert "is approved" in approved_again.json()["error"]["message"]

    reversed_ = review(api, f"/v1/conversions/{first}/status", {"status": "reversed", "reason": "refund"})
    assert reversed_.status_code == 200, reversed_.text
    wait_for(lambda: api.balance(partner_id) == {"accrued": Decimal(0), "pending": Decimal(0),
                                                 "payable": Decimal(0), "paid": Decimal(0)})
    assert api.get("attribution", f"/v1/conversions/{first}").json()["status"] == "reversed"

    second = sale("order-2")
    wait_for(lambda: api.accrued(partner_id) == Decimal("9.60"))
    adjusted = review(api, f"/v1/conversions/{second}/adjust", {"payout": "4.25"})
    assert adjusted.status_code == 200, adjusted.text
    wait_for(lambda: api.accrued(partner_id) == Decimal("4.25"))

    sale("order-3")
    wait_for(lambda: api.accrued(partner_id) == Decimal("13.85"))
    by_order = review(api, f"/v1/offers/{offer_id}/orders/order-3/status", {"status": "reversed"})
    assert by_order.status_code == 200, by_order.text
    wait_for(lambda: api.accrued(partner_id) == Decimal("4.25"))

    listed = api.get("attribution", f"/v1/conversions?partner_id={partner_id}").json()["conversions"]
    assert sorted((c["status"], c["payout"]["amount"]) for c in listed) == \
        [("approved", "4.25"), ("reversed", "9.60"), ("reversed", "9.60")]
    commissions = api.get("payouts", f"/v1/partners/{partner_id}/commissions").json()["commissions"]
    assert sorted((c["status"], c["amount"]) for c in commissions) == \
        [("accrued", "4.25"), ("void", "9.60"), ("void", "9.60")]
