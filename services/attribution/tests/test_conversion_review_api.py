"""The review API of the running service (real broker and PostgreSQL): status changes
by conversion and by order, adjustments, their refusals, and the listing."""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal

from attribution_fixtures import ADMIN, RunningAttribution, cpa, fresh_id

from afflux_contracts import ConversionAttributed, ConversionStatusChanged, StatusChange


async def approved_conversion(attribution: RunningAttribution, payout: str = "5.00",
                              order_id: str | None = None) -> tuple[str, str, str]:
    """A decided, approved conversion: (conversion_id, offer_id, partner_id)."""
    offer_id, partner_id = await attribution.offer(payout=cpa(payout))
    reported = await attribution.report(await attribution.click(offer_id, partner_id),
                                        order_id=order_id or fresh_id("order"))
    conversion_id = reported.payload.conversion_id
    assert (await attribution.decided(conversion_id))["status"] == "approved"
    return conversion_id, offer_id, partner_id


async def test_a_reversal_is_answered_once_on_the_log_and_published_keyed_by_partner(
    attribution: RunningAttribution,
) -> None:
    conversion_id, offer_id, partner_id = await approved_conversion(attribution)

    response = await attribution.client.post(f"/v1/conversions/{conversion_id}/status", headers=ADMIN,
                                             json={"status": "reversed", "reason": "chargeback", "note": "n"})

    assert response.status_code == 200, response.text
    assert response.headers["X-Afflux-Log"] == "published"
    assert (response.json()["status"], response.json()["reason"], response.json()["note"]) == \
        ("reversed", "chargeback", "n")
    changes = [r for r in await attribution.published(conversion_id)
               if isinstance(r.envelope.payload, ConversionStatusChanged)]
    assert len(changes) == 1
    [change] = changes
    assert change.key == partner_id
    assert change.wire["payload"]["status"] == "reversed"
    assert change.wire["payload"]["previous_status"] == "approved"
    assert change.wire["payload"]["payout"] == {"amount": "5.00", "currency": "USD"}
    assert change.wire["payload"]["offer_id"] == offer_id
    got = (await attribution.client.get(f"/v1/conversions/{conversion_id}", headers=ADMIN)).json()
    assert (got["status"], got["reason"]) == ("reversed", "chargeback")


async def test_reversing_twice_is_409_naming_the_current_status_and_publishes_nothing_more(
    attribution: RunningAttribution,
) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    url = f"/v1/conversions/{conversion_id}/status"
    assert (await attribution.client.post(url, headers=ADMIN, json={"status": "reversed"})).status_code == 200

    again = await attribution.client.post(url, headers=ADMIN, json={"status": "reversed"})

    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "transition_refused" and error["current_status"] == "reversed"
    assert f"conversion {conversion_id} is reversed" in error["message"]
    await attribution.relayed()
    assert len([r for r in await attribution.published(conversion_id)
                if isinstance(r.envelope.payload, ConversionStatusChanged)]) == 1


async def test_approving_an_approved_conversion_is_409(attribution: RunningAttribution) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    response = await attribution.client.post(f"/v1/conversions/{conversion_id}/status", headers=ADMIN,
                                             json={"status": "approved"})
    assert response.status_code == 409
    assert "is approved: it cannot be approved" in response.json()["error"]["message"]


async def test_a_conversion_rejected_at_attribution_cannot_be_approved_409(
    attribution: RunningAttribution,
) -> None:
    reported = await attribution.report(fresh_id("tx-unknown"), amount=Decimal("50.00"))
    await attribution.decided(reported.payload.conversion_id)
    response = await attribution.client.post(f"/v1/conversions/{reported.payload.conversion_id}/status",
                                             headers=ADMIN, json={"status": "approved"})
    assert response.status_code == 409
    assert "click_not_found" in response.json()["error"]["message"]


async def test_an_adjustment_sets_the_exact_new_payout(attribution: RunningAttribution) -> None:
    conversion_id, _, _ = await approved_conversion(attribution, payout="12.00")

    response = await attribution.client.post(f"/v1/conversions/{conversion_id}/adjust", headers=ADMIN,
                                             json={"payout": "7.35"})

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["payout"]) == \
        ("approved", {"amount": "7.35", "currency": "USD"})
    [change] = [r for r in await attribution.published(conversion_id)
                if isinstance(r.envelope.payload, ConversionStatusChanged)]
    assert change.envelope.payload.status is StatusChange.ADJUSTED
    assert change.wire["payload"]["payout"] == {"amount": "7.35", "currency": "USD"}


async def test_an_adjustment_finer_than_a_cent_or_not_a_decimal_string_is_422(
    attribution: RunningAttribution,
) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    url = f"/v1/conversions/{conversion_id}/adjust"

    finer = await attribution.client.post(url, headers=ADMIN, json={"payout": "7.355"})
    as_number = await attribution.client.post(url, headers=ADMIN, json={"payout": 7.35})
    negative = await attribution.client.post(url, headers=ADMIN, json={"payout": "-1.00"})

    assert finer.status_code == 422
    assert (finer.json()["error"]["code"], finer.json()["error"]["field"]) == ("invalid_payout", "payout")
    assert as_number.status_code == 422 and negative.status_code == 422
    assert "error" in as_number.json() and "error" in negative.json()
    got = (await attribution.client.get(f"/v1/conversions/{conversion_id}", headers=ADMIN)).json()
    assert got["payout"] == {"amount": "5.00", "currency": "USD"} and "changed_at" not in got


async def test_an_unknown_status_is_422_and_an_unknown_conversion_404(
    attribution: RunningAttribution,
) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    bad = await attribution.client.post(f"/v1/conversions/{conversion_id}/status", headers=ADMIN,
                                        json={"status": "adjusted"})
    unknown = await attribution.client.post(f"/v1/conversions/{fresh_id('conv')}/status", headers=ADMIN,
                                            json={"status": "reversed"})
    unknown_adjust = await attribution.client.post(f"/v1/conversions/{fresh_id('conv')}/adjust",
                                                   headers=ADMIN, json={"payout": "1.00"})
    assert bad.status_code == 422 and "error" in bad.json()
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "conversion_not_found"
    assert unknown_adjust.status_code == 404


async def test_a_status_change_by_order_reverses_the_conversion_that_credited_it(
    attribution: RunningAttribution,
) -> None:
    order_id = fresh_id("order")
    conversion_id, offer_id, _ = await approved_conversion(attribution, order_id=order_id)

    response = await attribution.client.post(f"/v1/offers/{offer_id}/orders/{order_id}/status",
                                             headers=ADMIN, json={"status": "reversed", "reason": "refund"})
    unknown = await attribution.client.post(f"/v1/offers/{offer_id}/orders/{fresh_id('order')}/status",
                                            headers=ADMIN, json={"status": "reversed"})

    assert response.status_code == 200, response.text
    assert (response.json()["conversion_id"], response.json()["status"]) == (conversion_id, "reversed")
    assert unknown.status_code == 404


async def test_review_routes_are_admin_only(attribution: RunningAttribution) -> None:
    conversion_id, offer_id, _ = await approved_conversion(attribution)
    for url, body in ((f"/v1/conversions/{conversion_id}/status", {"status": "reversed"}),
                      (f"/v1/conversions/{conversion_id}/adjust", {"payout": "1.00"}),
                      (f"/v1/offers/{offer_id}/orders/o/status", {"status": "reversed"})):
        assert (await attribution.client.post(url, json=body)).status_code == 401
    assert (await attribution.client.get("/v1/conversions")).status_code == 401
    got = (await attribution.client.get(f"/v1/conversions/{conversion_id}", headers=ADMIN)).json()
    assert got["status"] == "approved"


async def test_the_listing_filters_and_pages_with_a_cursor(attribution: RunningAttribution) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("2.00"))
    ids = []
    for _ in range(3):
        reported = await attribution.report(await attribution.click(offer_id, partner_id),
                                            order_id=fresh_id("order"))
        ids.append(reported.payload.conversion_id)
        await attribution.decided(ids[-1])
    await attribution.client.post(f"/v1/conversions/{ids[1]}/status", headers=ADMIN,
                                  json={"status": "reversed"})

    first = (await attribution.client.get("/v1/conversions", headers=ADMIN,
                                          params={"partner_id": partner_id, "limit": 2})).json()
    second = (await attribution.client.get("/v1/conversions", headers=ADMIN,
                                           params={"partner_id": partner_id, "limit": 2,
                                                   "after": first["next"]})).json()
    reversed_only = (await attribution.client.get("/v1/conversions", headers=ADMIN,
                                                  params={"offer_id": offer_id, "status": "reversed"})).json()
    bad_cursor = await attribution.client.get("/v1/conversions", headers=ADMIN, params={"after": "nope"})
    # deeper than a recursive JSON parser goes
    nested = base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode().rstrip("=")
    deep_cursor = await attribution.client.get("/v1/conversions", headers=ADMIN, params={"after": nested})
    naive_from = await attribution.client.get("/v1/conversions", headers=ADMIN,
                                              params={"from": "2026-01-01T00:00:00"})

    listed = [c["conversion_id"] for c in first["conversions"] + second["conversions"]]
    assert sorted(listed) == sorted(ids) and len(first["conversions"]) == 2
    assert "next" not in second or second["next"] is None
    assert [c["conversion_id"] for c in reversed_only["conversions"]] == [ids[1]]
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "after"
    assert deep_cursor.status_code == 422 and deep_cursor.json()["error"]["field"] == "after"
    assert naive_from.status_code == 422
    converted = [c["converted_at"] for c in first["conversions"]]
    window = (await attribution.client.get("/v1/conversions", headers=ADMIN, params={
        "partner_id": partner_id, "from": converted[1], "to": "2999-01-01T00:00:00Z"})).json()
    assert [c["conversion_id"] for c in window["conversions"]] == listed[1:]


async def test_two_reversals_racing_each_other_reverse_once(attribution: RunningAttribution) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    url = f"/v1/conversions/{conversion_id}/status"

    answers = await asyncio.gather(*(attribution.client.post(url, headers=ADMIN, json={"status": "reversed"})
                                     for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    await attribution.relayed()
    assert len([r for r in await attribution.published(conversion_id)
                if isinstance(r.envelope.payload, ConversionStatusChanged)]) == 1


async def test_a_reason_with_a_nul_character_is_422(attribution: RunningAttribution) -> None:
    conversion_id, _, _ = await approved_conversion(attribution)
    response = await attribution.client.post(f"/v1/conversions/{conversion_id}/status", headers=ADMIN,
                                             json={"status": "reversed", "reason": "re\u0000fund"})
    assert response.status_code == 422 and response.json()["error"]["field"] is not None


async def test_a_conversion_rejected_by_a_rule_is_credited_on_appeal_naming_who_approved_it(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("4.00"))
    transaction_id, order_id = await attribution.click(offer_id, partner_id), fresh_id("order")
    first = await attribution.report(transaction_id, order_id=order_id)
    await attribution.decided(first.payload.conversion_id)
    duplicate = (await attribution.report(transaction_id, order_id=order_id)).payload
    assert (await attribution.decided(duplicate.conversion_id))["reason"] == "duplicate"

    response = await attribution.client.post(f"/v1/conversions/{duplicate.conversion_id}/status",
                                             headers=ADMIN, json={"status": "approved",
                                                                  "reason": "a second order after all"})

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["payout"]) == \
        ("approved", {"amount": "4.00", "currency": "USD"})
    [appeal] = [r for r in await attribution.published(duplicate.conversion_id)
                if isinstance(r.envelope.payload, ConversionAttributed)]
    assert appeal.wire["payload"]["appeal"] == {"rejected_reason": "duplicate", "by": "admin",
                                                "reason": "a second order after all"}
    assert appeal.key == partner_id


async def test_a_pixel_conversion_answers_pending_saying_why(attribution: RunningAttribution) -> None:
    offer_id, partner_id = await attribution.offer(payout=cpa("4.00"))
    reported = await attribution.report(await attribution.click(offer_id, partner_id), method="pixel")

    held = await attribution.decided(reported.payload.conversion_id)

    assert (held["status"], held["reason"], held["payout"]["amount"]) == ("pending", "pixel_review", "4.00")
