"""The running service against the real broker and PostgreSQL: partners and tracking
events in, decisions on the HTTP API and on ``afflux.attribution.v1``."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from attribution_fixtures import ADMIN, RunningAttribution, cpa, cps, dead_lettered, fresh_id

from afflux_attribution.domain.conversion import Conversion
from afflux_contracts import TRACKING, ConversionAttributed, ConversionRejected, Envelope
from afflux_infra.testing import eventually


async def test_sale_on_a_cps_offer_is_attributed_at_eight_percent_as_9_60_usd(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id = await attribution.offer(payout=cps("8"), revenue=cps("20"))
    transaction_id = await attribution.click(offer_id, partner_id)
    reported = await attribution.report(transaction_id, amount=Decimal("120.00"), currency="USD",
                                        order_id=fresh_id("order"))

    conversion = await attribution.decided(reported.payload.conversion_id)

    assert conversion["status"] == "approved"
    assert conversion["payout"] == {"amount": "9.60", "currency": "USD"}
    assert conversion["revenue"] == {"amount": "24.00", "currency": "USD"}
    assert (conversion["partner_id"], conversion["offer_id"], conversion["transaction_id"]) == \
        (partner_id, offer_id, transaction_id)
    assert (conversion["sale_amount"], conversion["currency"], conversion["event"]) == \
        ("120.00", "USD", "conversion")
    assert "reason" not in conversion


async def test_partners_custom_payout_wins_over_the_offers(attribution: RunningAttribution) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("5.00"), custom_payout=cps("8"))
    transaction_id = await attribution.click(offer_id, partner_id)
    reported = await attribution.report(transaction_id, amount=Decimal("120.00"))

    conversion = await attribution.decided(reported.payload.conversion_id)

    assert conversion["payout"] == {"amount": "9.60", "currency": "USD"}


async def test_conversion_on_an_unknown_click_is_rejected_as_click_not_found(
    attribution: RunningAttribution,
) -> None:
    reported = await attribution.report(fresh_id("tx-unknown"), amount=Decimal("50.00"))

    conversion = await attribution.decided(reported.payload.conversion_id)

    assert (conversion["status"], conversion["reason"]) == ("rejected", "click_not_found")
    assert "payout" not in conversion and "partner_id" not in conversion


async def test_second_conversion_with_the_same_order_id_is_rejected_as_duplicate(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("5.00"))
    transaction_id, order_id = await attribution.click(offer_id, partner_id), fresh_id("order")
    first = await attribution.report(transaction_id, order_id=order_id)
    second = await attribution.report(transaction_id, order_id=order_id)

    assert (await attribution.decided(first.payload.conversion_id))["status"] == "approved"
    duplicate = await attribution.decided(second.payload.conversion_id)
    assert (duplicate["status"], duplicate["reason"]) == ("rejected", "duplicate")
    assert duplicate["partner_id"] == partner_id


async def test_one_order_reported_on_two_clicks_is_credited_once(attribution: RunningAttribution) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("5.00"))
    order_id = fresh_id("order")
    reports = [await attribution.report(await attribution.click(offer_id, partner_id), order_id=order_id)
               for _ in range(2)]

    decided = [await attribution.decided(r.payload.conversion_id) for r in reports]

    # The clicks' keys may land on different partitions: which report is read first is
    # not ordered, but only one of them earns.
    assert sorted((d["status"], d.get("reason")) for d in decided) == \
        [("approved", None), ("rejected", "duplicate")]


async def test_conversion_whose_offer_arrives_later_answers_pending_while_parked_then_is_attributed(
    attribution: RunningAttribution, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="afflux_plumbing.consume")
    offer_id, partner_id = fresh_id("offer"), fresh_id("partner")
    transaction_id = await attribution.click(offer_id, partner_id)
    reported = await attribution.report(transaction_id, amount=Decimal("120.00"))

    def parked() -> bool:
        return any("parking ConversionReported" in r.getMessage() for r in caplog.records)
    await eventually(parked)
    waiting = await attribution.client.get(f"/v1/conversions/{reported.payload.conversion_id}",
                                           headers=ADMIN)
    assert waiting.status_code == 200, waiting.text
    assert (waiting.json()["status"], waiting.json()["reason"]) == ("pending", "awaiting_offer_terms")
    assert (waiting.json()["transaction_id"], waiting.json()["offer_id"]) == (transaction_id, offer_id)
    assert "decided_at" not in waiting.json() and "payout" not in waiting.json()
    # The parked report holds up its partition: an id not seen cannot be called never reported.
    unseen = await attribution.client.get(f"/v1/conversions/{fresh_id('conv')}", headers=ADMIN)
    assert (unseen.status_code, unseen.json()["error"]["code"]) == (503, "not_known_yet")
    assert unseen.headers["Retry-After"] == "1"

    await attribution.offer(payout=cps("8"), offer_id=offer_id, partner_id=partner_id)
    conversion = await attribution.decided(reported.payload.conversion_id)

    assert conversion["status"] == "approved"
    assert conversion["payout"] == {"amount": "9.60", "currency": "USD"}
    assert attribution.store.held(reported.payload.conversion_id) is None


async def test_the_same_report_delivered_twice_is_decided_and_published_once(
    attribution: RunningAttribution,
) -> None:
    dead_before = dead_lettered(TRACKING.name)
    offer_id, partner_id = await attribution.offer(payout=cpa("5.00"))
    transaction_id = await attribution.click(offer_id, partner_id)
    reported = await attribution.report(transaction_id, order_id=fresh_id("order"))
    conversion_id = reported.payload.conversion_id
    redelivered = await attribution.publish(reported)  # same envelope, same event_id
    reissued = await attribution.publish(Envelope.wrap(reported.payload, producer="test"))  # new event_id

    await attribution.applied(redelivered)
    await attribution.applied(reissued)
    await attribution.relayed()

    assert (await attribution.decided(conversion_id))["status"] == "approved"
    assert attribution.store.repository.get(Conversion.create_id(conversion_id)).version == 1
    assert len(await attribution.published(conversion_id)) == 1
    assert dead_lettered(TRACKING.name) == dead_before  # recognised as done, not failed for good


async def test_decisions_are_published_on_the_attribution_log_keyed_by_partner(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id = await attribution.offer(payout=cps("8"))
    order_id = fresh_id("order")
    transaction_id = await attribution.click(offer_id, partner_id)
    credited = await attribution.report(transaction_id, amount=Decimal("120.00"), order_id=order_id)
    repeated = await attribution.report(transaction_id, amount=Decimal("120.00"), order_id=order_id)
    await attribution.decided(repeated.payload.conversion_id)
    await attribution.relayed()

    [attributed] = await attribution.published(credited.payload.conversion_id)
    [rejected] = await attribution.published(repeated.payload.conversion_id)

    assert isinstance(attributed.envelope.payload, ConversionAttributed)
    assert attributed.wire["payload"]["payout"] == {"amount": "9.60", "currency": "USD"}
    assert attributed.wire["payload"]["status"] == "approved"
    assert isinstance(rejected.envelope.payload, ConversionRejected)
    assert rejected.wire["payload"]["reason"] == "duplicate"
    for record, reported in ((attributed, credited), (rejected, repeated)):
        assert record.key == partner_id
        assert record.envelope.producer == "attribution"
        assert record.envelope.causation_id == str(reported.event_id)
        assert record.envelope.correlation_id == transaction_id


async def test_unknown_conversion_is_answered_404_conversion_not_found(
    attribution: RunningAttribution,
) -> None:
    response = await attribution.client.get(f"/v1/conversions/{fresh_id('conv')}", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversion_not_found"


async def test_conversions_are_only_shown_to_the_admin(attribution: RunningAttribution) -> None:
    anonymous = await attribution.client.get("/v1/conversions/anything")
    wrong_token = await attribution.client.get("/v1/conversions/anything",
                                               headers={"Authorization": "Bearer nope"})

    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    assert (wrong_token.status_code, wrong_token.json()["error"]["code"]) == (401, "unauthorized")
