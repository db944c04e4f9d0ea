"""CPC clicks and CPM thousands priced by attribution become commissions, each once:
the pure rule, and the service over the real broker and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from payouts_fixtures import BASE_TIME, RunningPayouts, attributed, buckets, new_id, republished, usd

from afflux_contracts import ClickPriced, Envelope, ImpressionsPriced, Money
from afflux_infra.testing import eventually
from afflux_payouts.domain.ledger import Bucket, NotCommissionable, commission_for_traffic
from afflux_plumbing.publish import Publisher


def click(partner_id: str, amount: str = "0.35", transaction_id: str | None = None) -> ClickPriced:
    return ClickPriced(
        transaction_id=transaction_id or new_id("tx"), partner_id=partner_id, offer_id="offer-cpc",
        payout=Money(amount=Decimal(amount), currency="USD"),
        clicked_at=BASE_TIME, priced_at=BASE_TIME + timedelta(seconds=1),
    )


def thousand(partner_id: str, block: int, amount: str = "2.50") -> ImpressionsPriced:
    return ImpressionsPriced(
        partner_id=partner_id, offer_id="offer-cpm", block=block,
        payout=Money(amount=Decimal(amount), currency="USD"), last_impression_id=new_id("imp"),
        last_impressed_at=BASE_TIME, priced_at=BASE_TIME + timedelta(seconds=1),
    )


def test_priced_click_is_an_accrued_commission_keyed_by_its_transaction() -> None:
    priced = click("partner-1", "0.35", transaction_id="tx-9")
    entry = commission_for_traffic(priced, uuid4())
    assert (entry.conversion_id, entry.bucket) == ("click:tx-9", Bucket.ACCRUED)
    assert entry.amount == Decimal("0.35")
    assert entry.converted_at == BASE_TIME


def test_priced_thousand_is_keyed_by_offer_partner_and_block() -> None:
    entry = commission_for_traffic(thousand("partner-1", 3), uuid4())
    assert entry.conversion_id == "cpm:offer-cpm:partner-1:3"
    assert (entry.bucket, entry.amount) == (Bucket.ACCRUED, Decimal("2.50"))


def test_negative_traffic_price_is_not_a_commission() -> None:
    with pytest.raises(NotCommissionable, match="negative payout"):
        commission_for_traffic(click("partner-1", "-0.01"), uuid4())


async def test_priced_clicks_and_thousands_accrue_once_each(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    first_click = Envelope.wrap(click(partner, "0.35"), producer="test")
    await attribution_log.publish(first_click)
    await attribution_log.publish(first_click)  # redelivered
    await attribution_log.publish(republished(first_click))  # re-published under a new event_id
    await attribution_log.publish(Envelope.wrap(click(partner, "0.35"), producer="test"))
    await attribution_log.publish(Envelope.wrap(thousand(partner, 1), producer="test"))
    await attribution_log.publish(attributed(partner, "0.01"))  # sentinel: same partition, last

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("3.21")})
    commissions = (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json()["commissions"]
    refs = [c["conversion_id"] for c in commissions if not c["conversion_id"].startswith("conv-")]
    clicks = [ref for ref in refs if ref.startswith("click:")]
    assert len(clicks) == 2 and f"click:{first_click.payload.transaction_id}" in clicks
    assert [ref for ref in refs if ref.startswith("cpm:")] == [f"cpm:offer-cpm:{partner}:1"]


async def test_priced_traffic_is_stated_paid_and_reaches_every_bucket_of_the_balance(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    clicked = click(partner, "0.35")
    priced = [Envelope.wrap(clicked, producer="test"),
              Envelope.wrap(thousand(partner, 1, "2.50"), producer="test")]
    for envelope in (*priced, attributed(partner, "1.00")):
        await attribution_log.publish(envelope)
    await eventually(lambda: payouts.balances(partner) == {"USD": usd("3.85")})

    closed = await payouts.post("/v1/statements/close", {"period_end": "2026-03-02T00:00:00Z",
                                                         "partner_id": partner})
    [statement] = closed.json()["statements"]
    assert (statement["status"], statement["total"], statement["lines"]) == ("payable", "3.85", 3)
    await eventually(lambda: payouts.balances(partner) == {"USD": buckets(payable="3.85")})
    shown = (await payouts.fetch(f"/v1/statements/{statement['statement_id']}")).json()
    refs = {line["ref"] for line in shown["lines"]}
    assert {f"click:{clicked.transaction_id}", f"cpm:offer-cpm:{partner}:1"} < refs
    paid = await payouts.post(f"/v1/statements/{statement['statement_id']}/paid", {"reference": "wire-7"})
    assert paid.status_code == 200, paid.text
    await eventually(lambda: payouts.balances(partner) == {"USD": buckets(paid="3.85")})
