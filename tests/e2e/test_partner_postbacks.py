"""Partner postbacks over the real processes, through the public HTTP contract only: a
click with a sub, an advertiser's postback, attribution, and the partner's own
tracker (a real HTTP server on loopback) receiving the conversion with its macros."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for
from postbacks_fixtures import Receiver

from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure

pytestmark = pytest.mark.slow

MACROS = ("?tid={transaction_id}&cid={conversion_id}&ev={event}&p={payout}&cur={currency}"
          "&s1={sub1}&s2={sub2}&st={status}&o={offer_id}&key=partner-secret")


@pytest.fixture(scope="module")
def platform(infra: SessionInfrastructure, bootstrap_for_platform: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Every service as its own process; postbacks may call loopback (the receiver is
    there), retries quickly (0.2 s, doubling) and gives a call 2 s (so what a killed
    process had claimed is claimable again 11 s later)."""
    running = Platform(
        Infrastructure(database_url=infra.new_database(), bootstrap_servers=bootstrap_for_platform,
                       kind=infra.server.kind),
        ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=tmp_path_factory.mktemp("platform-logs"),
        extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"e2e-{secrets.token_hex(4)}",
                   "AFFLUX_POSTBACKS_ALLOW_PRIVATE": "true", "AFFLUX_POSTBACKS_RETRY_FIRST": "0.2",
                   "AFFLUX_POSTBACKS_TIMEOUT": "2"},
    )
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def delivery_log(api: AdminApi, partner_id: str) -> list[dict[str, Any]]:
    response = api.get("postbacks", f"/v1/postbacks?partner_id={partner_id}")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["postbacks"]
    return rows


def convert(platform: Platform, api: AdminApi, receiver_url: str, sub1: str) -> tuple[str, str, str, str]:
    """A partner whose relationship has ``receiver_url`` as postback URL, a click with
    ``sub1`` and a 120.00 USD sale: (partner_id, offer_id, transaction_id, conversion_id)."""
    partner_id = api.create_partner("Tracker")
    offer_id = api.create_cps_offer(percent="8")
    api.put("partners", f"/v1/offers/{offer_id}/partners/{partner_id}",
            {"approved": True, "postback_url": receiver_url})
    transaction_id = follow_tracking_link(api.tracking_link(offer_id, partner_id), sub1=sub1)
    response = httpx.get(f"{platform.url('tracking')}/postback", params={
        "transaction_id": transaction_id, "amount": "120.00", "currency": "USD",
        "order_id": f"order-{secrets.token_hex(4)}", "token": postback_token(transaction_id)})
    assert response.status_code == 200, response.text
    return partner_id, offer_id, transaction_id, str(response.json()["conversion_id"])


def test_an_attributed_conversion_reaches_the_partners_tracker_with_its_macros(
    platform: Platform, receiver: Receiver,
) -> None:
    api = AdminApi(platform)
    path = f"/pb/{secrets.token_hex(4)}"
    partner_id, offer_id, transaction_id, conversion_id = convert(
        platform, api, receiver.url(path) + MACROS, sub1="spring mail & co")

    [call] = wait_for(lambda: receiver.calls_to(path), timeout=60)
    assert call.query == {"tid": [transaction_id], "cid": [conversion_id], "ev": ["conversion"],
                          "p": ["9.60"], "cur": ["USD"], "s1": ["spring mail & co"], "s2": [""],
                          "st": ["approved"], "o": [offer_id], "key": ["partner-secret"]}
    [row] = wait_for(lambda: [r for r in delivery_log(api, partner_id) if r["status"] == "delivered"])
    assert row["conversion_id"] == conversion_id and row["attempts"] == 1
    assert "partner-secret" not in row["url"] and "key=***" in row["url"]


def test_a_tracker_failing_its_first_three_calls_gets_the_fourth(
    platform: Platform, receiver: Receiver,
) -> None:
    api = AdminApi(platform)
    path = f"/flaky/{secrets.token_hex(4)}"
    receiver.fail[path] = 3
    partner_id, _, _, conversion_id = convert(platform, api, receiver.url(path) + "?cid={conversion_id}",
                                              sub1="")
    [row] = wait_for(lambda: [r for r in delivery_log(api, partner_id) if r["status"] == "delivered"],
                     timeout=60)
    calls = receiver.calls_to(path)
    assert [call.query["cid"] for call in calls] == [[conversion_id]] * 4
    assert row["attempts"] == 4
    assert [attempt["status_code"] for attempt in row["attempt_log"]] == [500, 500, 500, 200]
    assert len({call.headers["Idempotency-Key"] for call in calls}) == 1


def test_a_partners_global_postback_is_posted_as_json_and_its_status_changes_follow(
    platform: Platform, receiver: Receiver,
) -> None:
    """A partner whose global postback is POST with status changes, on an offer whose
    relationship names no postback: the attribution arrives as a JSON body, then the
    advertiser's reversal arrives as a second call with ``{status}`` filled."""
    api = AdminApi(platform)
    path = f"/global/{secrets.token_hex(4)}"
    partner_id = str(api.post("partners", "/v1/partners", {
        "name": "Global", "email": "global@partners.example",
        "postback": {"url": receiver.url(path) + "?cid={conversion_id}&st={status}", "method": "post",
                     "status_changes": True}})["partner_id"])
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    transaction_id = follow_tracking_link(api.tracking_link(offer_id, partner_id), sub1="spring")
    response = httpx.get(f"{platform.url('tracking')}/postback", params={
        "transaction_id": transaction_id, "amount": "120.00", "currency": "USD",
        "order_id": f"order-{secrets.token_hex(4)}", "token": postback_token(transaction_id)})
    assert response.status_code == 200, response.text
    conversion_id = str(response.json()["conversion_id"])

    [first] = wait_for(lambda: receiver.calls_to(path), timeout=60)
    assert first.method == "POST" and first.query == {"cid": [conversion_id], "st": ["approved"]}
    body = json.loads(first.body)
    assert {key: body[key] for key in ("transaction_id", "event", "payout", "currency", "sub1", "status",
                                       "offer_id", "partner_id")} == {
        "transaction_id": transaction_id, "event": "conversion", "payout": "9.60", "currency": "USD",
        "sub1": "spring", "status": "approved", "offer_id": offer_id, "partner_id": partner_id}

    api.post("attribution", f"/v1/conversions/{conversion_id}/status", {"status": "reversed"})
    calls = wait_for(lambda: receiver.calls_to(path) if len(receiver.calls_to(path)) == 2 else None,
                     timeout=60)
    assert calls[1].query == {"cid": [conversion_id], "st": ["reversed"]}
    assert json.loads(calls[1].body)["status"] == "reversed"
    assert calls[0].headers["Idempotency-Key"] != calls[1].headers["Idempotency-Key"]

    def both_delivered() -> list[dict[str, Any]] | None:
        rows = delivery_log(api, partner_id)
        return rows if [row["status"] for row in rows] == ["delivered", "delivered"] else None

    rows = wait_for(both_delivered)
    assert [(row["kind"], row["method"], row["conversion_status"]) for row in rows] == [
        ("attributed", "post", "approved"), ("status_changed", "post", "reversed")]


def test_a_kill_9_of_postbacks_mid_stream_loses_no_delivery_and_the_log_matches_the_tracker(
    platform: Platform, receiver: Receiver,
) -> None:
    """Twenty conversions to a tracker that takes 0.2 s per call (at most eight calls to
    one host at a time): postbacks is killed while it delivers them and started again.
    Every conversion reaches the tracker (a call in flight at the kill may arrive twice,
    with the same Idempotency-Key), and the delivery log says delivered for exactly the
    conversions the tracker saw."""
    api = AdminApi(platform)
    path = f"/steady/{secrets.token_hex(4)}"
    receiver.delay[path] = 0.2
    partner_id = api.create_partner("Steady")
    offer_id = api.create_cps_offer(percent="8")
    api.put("partners", f"/v1/offers/{offer_id}/partners/{partner_id}",
            {"approved": True, "postback_url": receiver.url(path) + "?cid={conversion_id}"})
    link = api.tracking_link(offer_id, partner_id)
    conversions = set()
    for run in range(20):
        transaction_id = follow_tracking_link(link)
        response = httpx.get(f"{platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": "10.00", "order_id": f"steady-{run}",
            "token": postback_token(transaction_id)})
        assert response.status_code == 200, response.text
        conversions.add(response.json()["conversion_id"])

    wait_for(lambda: len(receiver.calls_to(path)) >= 3, timeout=60, interval=0.01)
    postbacks = platform.service("postbacks")
    postbacks.kill9()
    assert len({call.query["cid"][0] for call in receiver.calls_to(path)}) < len(conversions)
    postbacks.start().wait_until("/readyz", 90)

    def all_delivered() -> list[dict[str, Any]] | None:
        rows = [row for row in delivery_log(api, partner_id) if row["status"] == "delivered"]
        return rows if len(rows) == len(conversions) else None

    rows = wait_for(all_delivered, timeout=90)
    calls = receiver.calls_to(path)
    assert {call.query["cid"][0] for call in calls} == conversions == {row["conversion_id"] for row in rows}
    keys: dict[str, set[str]] = {}
    for call in calls:
        keys.setdefault(call.query["cid"][0], set()).add(call.headers["Idempotency-Key"])
    assert all(len(key) == 1 for key in keys.values())
    assert len(calls) <= 20 + 8  # at most the calls in flight at the kill came twice
