"""A commission's whole life over real processes, through the public HTTP contract:
sales, one held for review (pending) then approved, statements closed below the
partner's minimum (carried over), paid, a sale reversed after payment (a negative
total carried over as a deduction) and earned back; every balance and statement total
exact to the cent. Then the ledger is re-derived from the log by ``afflux replay``.

A second partner is billed in USD and paid in it (``conversion: earned_day``) for sales of
an offer in EUR: its statement waits for the day's EUR/USD rate (held, ``missing_rate``),
which finance uploads as the ECB's reference rates file; each line is then converted at
that rate, rounded once, and the statement pays the sum of its converted lines.

The partner is billed monthly in USD with a 20.00 minimum; the offer pays 8 % of each
sale (9.60 on 120.00), its ``reviewed`` event holds conversions for approval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, replay_verifies, wait_for

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow



def buckets(accrued: str = "0", pending: str = "0", payable: str = "0", paid: str = "0"
            ) -> dict[str, Decimal]:
    return {"accrued": Decimal(accrued), "pending": Decimal(pending), "payable": Decimal(payable),
            "paid": Decimal(paid)}


class Lifecycle:
    """The admin's moves on one partner of one offer."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.api = AdminApi(platform)
        self.partner_id = str(self.api.post("partners", "/v1/partners", {
            "name": "Statemented", "email": "statements@partners.example",
            "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "20.00"}})["partner_id"])
        self.offer_id = self.api.create_cps_offer(percent="8", events=[
            {"name": "conversion", "payout": {"type": "cps", "percent": "8"}},
            {"name": "reviewed", "payout": {"type": "cps", "percent": "8"}, "requires_approval": True}])
        self.api.approve(self.offer_id, self.partner_id)
        self.link = self.api.tracking_link(self.offer_id, self.partner_id)
        self.orders = 0

    def sale(self, amount: str, event: str = "conversion") -> str:
        self.orders += 1
        transaction_id = follow_tracking_link(self.link)
        response = httpx.post(f"{self.platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": amount, "currency": "USD", "event": event,
            "order_id": f"order-{self.orders}", "token": postback_token(transaction_id)})
        assert response.status_code == 200, response.text
        return str(response.json()["conversion_id"])

    def review(self, conversion_id: str, status: str) -> None:
        with self.api._client("attribution") as client:
            response = client.post(f"/v1/conversions/{conversion_id}/status", json={"status": status})
        assert response.status_code == 200, response.text

    def balance_becomes(self, expected: dict[str, Decimal]) -> None:
        wait_for(lambda: self.api.balance(self.partner_id) == expected, timeout=30)

    def close(self) -> dict[str, Any]:
        period_end = datetime.now(UTC).isoformat()
        body = self.api.post("payouts", "/v1/statements/close",
                             {"period_end": period_end, "partner_id": self.partner_id})
        [statement] = body["statements"]
        shown = self.api.get("payouts", f"/v1/statements/{statement['statement_id']}").json()
        assert sum(Decimal(line["amount"]) for line in shown["lines"]) == Decimal(shown["total"])
        return dict(shown)


def test_sales_review_statements_payment_and_a_claw_back_to_the_cent(platform: Platform) -> None:
    life = Lifecycle(platform)
    first = life.sale("120.00")
    held = life.sale("120.00", event="reviewed")
    life.balance_becomes(buckets(accrued="9.60", pending="9.60"))

    below = life.close()  # 9.60 < 20.00: nothing becomes payable
    assert (below["status"], below["total"], below["carried_over"]) == ("carried_over", "9.60", "0.00")
    life.balance_becomes(buckets(accrued="9.60", pending="9.60"))

    life.review(held, "approved")
    life.sale("120.00")
    life.balance_becomes(buckets(accrued="28.80"))
    payable = life.close()
    assert (payable["status"], payable["total"], payable["carried_over"]) == ("payable", "28.80", "9.60")
    life.balance_becomes(buckets(payable="28.80"))

    paid = life.api.post("payouts", f"/v1/statements/{payable['statement_id']}/paid", {"reference": "wire-7"})
    assert paid["amount"] == "28.80"
    life.balance_becomes(buckets(paid="28.80"))
    with life.api._client("payouts") as client:
        assert client.post(f"/v1/statements/{payable['statement_id']}/paid", json={}).status_code == 409

    life.review(first, "reversed")  # after payment: clawed back
    life.balance_becomes(buckets(accrued="-9.60", paid="28.80"))
    negative = life.close()
    assert (negative["status"], negative["total"]) == ("carried_over", "-9.60")

    life.sale("400.00")
    life.balance_becomes(buckets(accrued="22.40", paid="28.80"))
    net = life.close()
    assert (net["status"], net["total"], net["carried_over"]) == ("payable", "22.40", "-9.60")
    life.balance_becomes(buckets(payable="22.40", paid="28.80"))

    statements = life.api.get("payouts", f"/v1/statements?partner_id={life.partner_id}").json()["statements"]
    assert [(s["status"], s["total"]) for s in statements] == \
        [("carried_over", "9.60"), ("paid", "28.80"), ("carried_over", "-9.60"), ("payable", "22.40")]
    replay_verifies(platform)



def test_eur_sales_are_paid_to_a_usd_billed_partner_at_the_recorded_rate_to_the_cent(
        platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = str(api.post("partners", "/v1/partners", {
        "name": "Paid in dollars", "email": "dollars@partners.example",
        "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "0",
                    "conversion": "earned_day"}})["partner_id"])
    api_key = api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})["api_key"]
    offer_id = api.create_cps_offer(percent="10", currency="EUR")
    api.approve(offer_id, partner_id)
    api.sale(offer_id, partner_id, "120.00", "EUR", "fx-order-1")
    api.sale(offer_id, partner_id, "33.33", "EUR", "fx-order-2")
    wait_for(lambda: api.balance(partner_id, "EUR").get("accrued") == Decimal("15.33"), timeout=30)
    today = datetime.now(UTC).date()

    closed = api.post("payouts", "/v1/statements/close",
                      {"period_end": datetime.now(UTC).isoformat(), "partner_id": partner_id})
    statement_id = closed["statements"][0]["statement_id"]
    held = api.get("payouts", f"/v1/statements/{statement_id}").json()
    assert (held["status"], held["hold_reason"]) == ("on_hold", f"missing_rate EUR/USD {today.isoformat()}")

    ecb_file = f"Date, USD, JPY, \n{today.strftime('%d %B %Y')}, 1.0842, 163.25, \n"
    with api._client("payouts") as payouts:
        uploaded = payouts.post("/v1/fx-rates/ecb", content=ecb_file.encode(),
                                headers={"Content-Type": "text/csv"})
    assert uploaded.status_code == 201 and uploaded.json()["recorded"] == 2, uploaded.text

    shown = wait_for(lambda: (found := api.get("payouts", f"/v1/statements/{statement_id}").json())
                     ["status"] == "payable" and found, timeout=30)
    # 12.00 EUR x 1.0842 = 13.0104 -> 13.01 USD; 3.33 EUR x 1.0842 = 3.610386 -> 3.61 USD
    assert (shown["currency"], shown["total"], shown["paid_currency"], shown["paid_total"]) == \
        ("EUR", "15.33", "USD", "16.62")
    assert sorted((line["amount"], line["converted"]["amount"], line["converted"]["rate"],
                   line["converted"]["rate_day"]) for line in shown["lines"]) == \
        [("12.00", "13.01", "1.0842", today.isoformat()), ("3.33", "3.61", "1.0842", today.isoformat())]
    paid = api.post("payouts", f"/v1/statements/{statement_id}/paid", {"reference": "wire-usd-1"})
    assert (paid["amount"], paid["currency"]) == ("16.62", "USD")
    wait_for(lambda: api.balance(partner_id, "EUR").get("paid") == Decimal("15.33"), timeout=30)
    in_dollars = api.get("payouts", f"/v1/partners/{partner_id}/balance?currency=USD").json()["total"]
    assert (in_dollars["currency"], in_dollars["paid"]) == ("USD", "16.62")

    def partner_sees() -> list[tuple[str, str | None, str | None]]:  # through the gateway, its own view
        with httpx.Client(base_url=platform.url("gateway"), headers={"X-Api-Key": api_key}, timeout=10) as gw:
            listed = gw.get("/v1/me/statements").json()["statements"]
        return [(mine["status"], mine["paid_currency"], mine["paid_total"]) for mine in listed]

    wait_for(lambda: partner_sees() == [("paid", "USD", "16.62")], timeout=30)
    replay_verifies(platform)
