"""Who may report a conversion: the offer's postback token, its allowed IPs and its pixel
switch; a refused report is 401/403 and leaves nothing on the log. A retried report is
the same conversion."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tracking_fixtures import (
    POSTBACK_TOKEN,
    RunningTracking,
    approval,
    fresh_id,
    offer_created,
    partner_created,
    security,
    tracking_records,
)

from afflux_contracts import ConversionReported, ConversionSecurity, OfferPostbackTokenRotated, utc_now
from afflux_infra.embedded import free_port
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.http import TrustedProxies
from afflux_plumbing.publish import Publisher
from afflux_tracking.application.intake import Intake, IntakeSettings
from afflux_tracking.domain.links import new_transaction_id
from afflux_tracking.domain.security import PostbackSecurity, Refusal
from afflux_tracking.entrypoints.http import create_app


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def offer_with(tracking: RunningTracking, conversion_security: ConversionSecurity) -> str:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    await tracking.partners.publish(
        offer_created(offer_id, "https://shop.example/?t={transaction_id}",
                      conversion_security=conversion_security),
        partner_created(partner_id), approval(offer_id, partner_id))
    return offer_id


async def reports_of_order(tracking: RunningTracking, order_id: str) -> list[ConversionReported]:
    records = await tracking_records(
        tracking.bootstrap, lambda p: isinstance(p, ConversionReported) and p.order_id == order_id)
    return [record.payload for record in records]


@pytest.mark.parametrize(("token", "code"), [(None, "token_missing"), ("not-the-token", "token_invalid"),
                                             ("", "token_missing")])
async def test_a_postback_without_its_offers_token_is_401_and_leaves_nothing_on_the_log(
    tracking: RunningTracking, token: str | None, code: str,
) -> None:
    offer_id = await offer_with(tracking, security())
    order_id = f"order-{secrets.token_hex(4)}"
    params = {"transaction_id": new_transaction_id(offer_id), "amount": "999999999", "order_id": order_id}
    if token is not None:
        params["token"] = token

    response = await tracking.client.get("/postback", params=params)

    assert response.status_code == 401
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (code, "token")
    # a later, good report of another order proves the log was read past the refused one
    good = {**params, "token": POSTBACK_TOKEN, "order_id": f"{order_id}-good"}
    assert (await tracking.client.get("/postback", params=good)).status_code == 200
    assert len(await reports_of_order(tracking, f"{order_id}-good")) == 1
    assert await reports_of_order(tracking, order_id) == []


async def test_the_token_may_come_in_a_header_and_a_post_body(tracking: RunningTracking) -> None:
    offer_id = await offer_with(tracking, security())
    tid = new_transaction_id(offer_id)

    by_header = await tracking.client.get("/postback", params={"transaction_id": tid, "order_id": "h"},
                                          headers={"X-Afflux-Postback-Token": POSTBACK_TOKEN})
    by_body = await tracking.client.post("/postback", json={"transaction_id": tid, "order_id": "b",
                                                            "token": POSTBACK_TOKEN})

    assert (by_header.status_code, by_body.status_code) == (200, 200)


async def test_an_offer_that_needs_no_token_takes_postbacks_without_one(tracking: RunningTracking) -> None:
    offer_id = await offer_with(tracking, security(token_required=False))
    response = await tracking.client.get("/postback", params={"transaction_id": new_transaction_id(offer_id)})
    assert response.status_code == 200


@pytest.mark.parametrize(("allowed", "status"), [(("203.0.113.0/24",), 403), (("127.0.0.0/8",), 200)])
async def test_postbacks_come_only_from_the_offers_allowed_ips(
    tracking: RunningTracking, allowed: tuple[str, ...], status: int,
) -> None:
    offer_id = await offer_with(tracking, security(allowed_ips=allowed))
    response = await tracking.client.get("/postback", params={
        "transaction_id": new_transaction_id(offer_id), "token": POSTBACK_TOKEN})
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "ip_not_allowed"


async def test_the_pixel_works_only_where_the_offer_allows_it(tracking: RunningTracking) -> None:
    closed = await offer_with(tracking, security())
    open_ = await offer_with(tracking, security(pixel_allowed=True))
    order_id = f"px-{secrets.token_hex(4)}"

    refused = await tracking.client.get("/pixel", params={"transaction_id": new_transaction_id(closed)})
    accepted = await tracking.client.get("/pixel", params={
        "transaction_id": new_transaction_id(open_), "order_id": order_id, "amount": "10"})

    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "pixel_not_allowed")
    assert (accepted.status_code, accepted.headers["content-type"]) == (200, "image/gif")
    [report] = await reports_of_order(tracking, order_id)
    assert (report.method, report.offer_id) == ("pixel", open_)


async def test_the_same_report_or_idempotency_key_is_answered_with_the_same_conversion_id(
    tracking: RunningTracking,
) -> None:
    offer_id = await offer_with(tracking, security())
    tid = new_transaction_id(offer_id)
    report = {"transaction_id": tid, "order_id": "A1", "amount": "10", "token": POSTBACK_TOKEN}

    async def conversion_id(params: dict[str, str], key: str | None = None) -> str:
        headers = {"Idempotency-Key": key} if key else {}
        response = await tracking.client.get("/postback", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["conversion_id"])

    same = {await conversion_id(report) for _ in range(3)}
    other_order = await conversion_id({**report, "order_id": "A2"})
    other_event = await conversion_id({**report, "event": "upsell"})
    keyed = {await conversion_id({**report, "order_id": f"K{n}"}, key="key-1") for n in range(2)}

    assert len(same) == 1
    assert len({*same, other_order, other_event, *keyed}) == 4


async def test_a_postback_retried_after_a_503_gets_the_same_conversion_id(tracking: RunningTracking) -> None:
    offer_id = await offer_with(tracking, security())
    order_id = f"retry-{secrets.token_hex(4)}"
    params = {"transaction_id": new_transaction_id(offer_id), "order_id": order_id, "token": POSTBACK_TOKEN}
    unreachable = Publisher(f"127.0.0.1:{free_port()}", client_id="tracking-tests-unreachable")
    partners_log = LogCatchUp(tracking.store, "afflux.partners.v1", tracking.bootstrap)
    broken = create_app(Intake(tracking.routing.view, unreachable, partners_log,
                               IntakeSettings(publish_timeout=0.3)), _ready)
    transport = httpx.ASGITransport(app=broken)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            failed = await client.get("/postback", params=params)
    finally:
        await partners_log.stop()

    retried = await tracking.client.get("/postback", params=params)
    again = await tracking.client.get("/postback", params=params)

    assert failed.status_code == 503
    assert retried.status_code == again.status_code == 200
    assert retried.json()["conversion_id"] == again.json()["conversion_id"]
    reports = await reports_of_order(tracking, order_id)
    assert {r.conversion_id for r in reports} == {retried.json()["conversion_id"]}


def test_a_replaced_token_works_until_its_overlap_ends_and_not_an_instant_longer() -> None:
    ends = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    rotated = PostbackSecurity(token_sha256=sha256("new"), previous_token_sha256=sha256("old"),
                               previous_valid_until=ends)
    just_before = ends - timedelta(microseconds=1)
    assert rotated.check_postback("old", None, just_before) is None
    assert rotated.check_postback("old", None, ends) is Refusal.TOKEN_INVALID
    assert rotated.check_postback("new", None, just_before) is None
    assert rotated.check_postback("new", None, ends + timedelta(days=400)) is None
    assert rotated.check_postback("other", None, just_before) is Refusal.TOKEN_INVALID


async def test_after_a_rotation_both_tokens_work_in_the_overlap_and_only_the_new_one_after(
    tracking: RunningTracking,
) -> None:
    offer_id = await offer_with(tracking, security())

    async def status(token: str) -> int:
        response = await tracking.client.get("/postback", params={
            "transaction_id": new_transaction_id(offer_id), "token": token,
            "order_id": f"rot-{secrets.token_hex(4)}"})
        return response.status_code

    await tracking.partners.publish(OfferPostbackTokenRotated(
        offer_id=offer_id, token_sha256=sha256("second"), previous_token_sha256=sha256(POSTBACK_TOKEN),
        previous_valid_until=utc_now() + timedelta(hours=1)))
    assert [await status(POSTBACK_TOKEN), await status("second"), await status("third")] == [200, 200, 401]
    await tracking.partners.publish(OfferPostbackTokenRotated(
        offer_id=offer_id, token_sha256=sha256("third"), previous_token_sha256=sha256("second"),
        previous_valid_until=utc_now()))  # no overlap: the replaced token stops now
    assert [await status(POSTBACK_TOKEN), await status("second"), await status("third")] == [401, 401, 200]


async def test_allowed_ips_see_the_client_behind_a_trusted_proxy_never_a_callers_claim(
    tracking: RunningTracking,
) -> None:
    """Behind a balancer every postback comes from its address: only the balancer's own
    X-Forwarded-For names the advertiser's server; a caller's own header names nothing."""
    offer_id = await offer_with(tracking, security(allowed_ips=("203.0.113.0/24",)))
    params = {"transaction_id": new_transaction_id(offer_id), "token": POSTBACK_TOKEN,
              "order_id": "behind-lb"}
    spoofed = await tracking.client.get("/postback", params=params,
                                        headers={"X-Forwarded-For": "203.0.113.7"})
    partners_log = LogCatchUp(tracking.store, "afflux.partners.v1", tracking.bootstrap)
    behind = create_app(Intake(tracking.routing.view, tracking.partners.publisher, partners_log), _ready,
                        TrustedProxies.parse("127.0.0.1/32"))  # the in-memory transport's peer
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=behind), base_url="http://t") as lb:
            forwarded = await lb.get("/postback", params=params,
                                     headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
            elsewhere = await lb.get("/postback", params=params,
                                     headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1"})
    finally:
        await partners_log.stop()

    assert (spoofed.status_code, spoofed.json()["error"]["code"]) == (403, "ip_not_allowed")
    assert forwarded.status_code == 200, forwarded.text
    assert elsewhere.status_code == 403
    [report] = await reports_of_order(tracking, "behind-lb")
    assert report.ip == "203.0.113.7"


async def _ready() -> bool:
    return True
