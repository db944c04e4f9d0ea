"""Delivery over a real broker, PostgreSQL and a real receiver on loopback: macros,
retries, the delivery log, the outcome events, per-host isolation and refusals."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import uvloop
from postbacks_fixtures import (
    Receiver,
    RunningPostbacks,
    attributed,
    new_id,
    offer,
    partner,
    relationship,
    status_changed,
)

from afflux_contracts import POSTBACKS, PartnerPostbackDelivered, PartnerPostbackFailed
from afflux_infra.testing import eventually, read_envelopes
from afflux_plumbing.publish import Publisher
from afflux_postbacks.adapters.sender import PostbackSender
from afflux_postbacks.domain.retries import AttemptResult

TEMPLATE = ("?tid={transaction_id}&cid={conversion_id}&ev={event}&p={payout}&cur={currency}"
            "&s1={sub1}&s2={sub2}&s5={sub5}&st={status}&o={offer_id}&token=partner-secret")


async def test_an_attributed_conversion_reaches_the_partner_with_every_macro_filled(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver, kafka_bootstrap: str,
) -> None:
    offer_id, partner_id, transaction_id = new_id("offer"), new_id("partner"), new_id("tx")
    path = f"/pb/{partner_id}"
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + TEMPLATE))
    decision = attributed(transaction_id, offer_id, partner_id, payout="9.60", event="sale",
                          sub1="news letter&x=1", sub2="b/2")
    await log.publish(decision)

    [call] = await eventually(lambda: receiver.calls_to(path), timeout=30)
    assert call.query == {
        "tid": [transaction_id], "cid": [decision.payload.conversion_id], "ev": ["sale"], "p": ["9.60"],
        "cur": ["USD"], "s1": ["news letter&x=1"], "s2": ["b/2"], "s5": [""], "st": ["approved"],
        "o": [offer_id], "token": ["partner-secret"],
    }
    assert len(call.headers["Idempotency-Key"]) == 32

    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=20)
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["last_status_code"] == 200
    assert "partner-secret" not in row["url"] and "token=***" in row["url"]
    [attempt] = row["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and "token=***" in attempt["url"]

    async def published() -> list[PartnerPostbackDelivered]:
        return [envelope.payload for _, envelope in await read_envelopes(kafka_bootstrap, POSTBACKS.name,
                                                                          POSTBACKS.partitions)
                if isinstance(envelope.payload, PartnerPostbackDelivered)
                and envelope.payload.partner_id == partner_id]

    deadline = time.monotonic() + 20
    while not (events := await published()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    [event] = events
    assert event.conversion_id == decision.payload.conversion_id and event.status_code == 200
    assert event.attempts == 1 and "partner-secret" not in event.url
    assert event.kind == "attributed" and event.conversion_status == "approved"


async def test_a_receiver_failing_the_first_three_calls_gets_the_fourth_with_the_same_key(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id, transaction_id = new_id("offer"), new_id("partner"), new_id("tx")
    path = f"/flaky/{partner_id}"
    receiver.fail[path] = 3
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + "?cid={conversion_id}"))
    await log.publish(attributed(transaction_id, offer_id, partner_id))

    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=30)
    calls = receiver.calls_to(path)
    assert row["status"] == "delivered" and row["attempts"] == 4 and len(calls) == 4
    assert [a["status_code"] for a in row["attempt_log"]] == [500, 500, 500, 200]
    assert [a["error"] for a in row["attempt_log"]] == ["HTTP 500"] * 3 + [None]
    assert len({call.headers["Idempotency-Key"] for call in calls}) == 1
    assert all("Cookie" not in call.headers for call in calls)  # the receiver set one each time
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    # The n-th retry waits at least half of 0.1 s * 2**(n-1) (the fixture's first wait, jittered).
    assert [gap >= 0.05 * 2 ** n for n, gap in enumerate(gaps)] == [True] * 3, gaps


async def test_a_redirect_is_not_followed_and_a_final_4xx_is_not_retried(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver, kafka_bootstrap: str,
) -> None:
    offer_id, partner_id = new_id("offer"), new_id("partner")
    path = f"/moved/{partner_id}"
    receiver.redirect[path] = receiver.url(f"/elsewhere/{partner_id}")
    await log.publish(relationship(offer_id, partner_id, receiver.url(path)))
    await log.publish(attributed(new_id("tx"), offer_id, partner_id))

    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=30)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_status_code"] == 302
    assert receiver.calls_to(f"/elsewhere/{partner_id}") == []


async def test_a_relationship_without_a_postback_url_owes_nothing(
    postbacks: RunningPostbacks, log: Publisher,
) -> None:
    offer_id, partner_id = new_id("offer"), new_id("partner")
    await log.publish(relationship(offer_id, partner_id, None))
    await log.publish(attributed(new_id("tx"), offer_id, partner_id))
    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=30)
    assert row["status"] == "skipped" and row["attempts"] == 0 and row["url"] is None


async def test_a_non_http_url_is_refused_and_published_as_failed(
    postbacks: RunningPostbacks, log: Publisher, kafka_bootstrap: str,
) -> None:
    offer_id, partner_id = new_id("offer"), new_id("partner")
    await log.publish(relationship(offer_id, partner_id, "ftp://files.example/pb?key=k1"))
    await log.publish(attributed(new_id("tx"), offer_id, partner_id))
    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=30)
    assert row["status"] == "failed" and "only http and https" in row["last_error"]
    assert row["url"] == "ftp://files.example/pb?key=***"

    async def failed() -> list[PartnerPostbackFailed]:
        return [envelope.payload for _, envelope in await read_envelopes(kafka_bootstrap, POSTBACKS.name,
                                                                          POSTBACKS.partitions)
                if isinstance(envelope.payload, PartnerPostbackFailed)
                and envelope.payload.partner_id == partner_id]

    deadline = time.monotonic() + 20
    while not (events := await failed()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    [event] = events
    assert "only http and https" in event.error and event.url == "ftp://files.example/pb?key=***"


async def test_a_slow_host_does_not_delay_another_hosts_postbacks(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    """Two calls per host at most (the fixture's setting): six postbacks to a host that
    takes 2 s each hold its two slots for 6 s, while one to another host arrives at once.
    ``localhost`` and ``127.0.0.1`` are two hosts to the worker, one receiver to us."""
    offer_id, slow_partner, fast_partner = new_id("offer"), new_id("partner"), new_id("partner")
    slow_path, fast_path = f"/slow/{slow_partner}", f"/fast/{fast_partner}"
    receiver.delay[slow_path] = 2.0
    await log.publish(relationship(offer_id, slow_partner, receiver.url(slow_path, host="localhost")))
    await log.publish(relationship(offer_id, fast_partner, receiver.url(fast_path)))
    for _ in range(6):
        await log.publish(attributed(new_id("tx"), offer_id, slow_partner))
    await eventually(lambda: len(receiver.calls_to(slow_path)) >= 2, timeout=30, interval=0.02)
    started = time.monotonic()
    await log.publish(attributed(new_id("tx"), offer_id, fast_partner))
    await eventually(lambda: receiver.calls_to(fast_path), timeout=30, interval=0.02)
    fast = time.monotonic() - started
    assert fast < 1.5, f"the fast host's postback took {fast:.2f}s behind a slow host"
    assert len(receiver.calls_to(slow_path)) <= 4  # the slow host never had more than 2 at once
    await eventually(lambda: postbacks.ended(slow_partner, 6), timeout=30)


async def test_a_url_resolving_to_loopback_is_refused_without_the_setting(receiver: Receiver) -> None:
    path = f"/loopback/{new_id('p')}"
    sender = PostbackSender(timeout=5.0, allow_private=False)
    try:
        for host in ("localhost", "127.0.0.1"):
            result = await sender.call(receiver.url(path, host=host), "key")
            assert result.refused and result.status_code is None
            assert result.error is not None and "127.0.0.1 is Loopback" in result.error
    finally:
        await sender.close()
    assert receiver.calls_to(path) == []
    allowed = PostbackSender(timeout=5.0, allow_private=True)
    try:
        assert (await allowed.call(receiver.url(path, host="localhost"), "key")).ok
    finally:
        await allowed.close()
    assert len(receiver.calls_to(path)) == 1


def test_calls_to_a_tracker_share_a_kept_alive_connection_until_an_answer_is_cut_off(
    receiver: Receiver,
) -> None:
    """On the service's loop (uvloop): three calls go over one connection; an answer
    longer than the 4 KiB read is cut off and its connection closed, not reused."""
    path, large = f"/keep/{new_id('p')}", f"/large/{new_id('p')}"
    receiver.large[large] = 1_000_000

    async def calls() -> list[AttemptResult]:
        sender = PostbackSender(timeout=5.0, allow_private=True)
        try:
            return [await sender.call(receiver.url(each), "key") for each in (path, path, path, large, path)]
        finally:
            await sender.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(calls())
    assert [result.status_code for result in results] == [200] * 5
    kept, [cut] = receiver.calls_to(path), receiver.calls_to(large)
    assert len({call.client_port for call in kept[:3]}) == 1 and cut.client_port == kept[0].client_port
    assert kept[3].client_port != cut.client_port


async def test_a_status_change_reaches_a_partner_that_asked_for_them_with_its_status(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id, transaction_id = new_id("offer"), new_id("partner"), new_id("tx")
    path = f"/status/{partner_id}"
    template = "?cid={conversion_id}&tid={transaction_id}&ev={event}&st={status}&p={payout}&s1={sub1}"
    await log.publish(offer(offer_id))
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + template, status_changes=True))
    decision = attributed(transaction_id, offer_id, partner_id, event="sale", sub1="mail")
    await log.publish(decision)
    await eventually(lambda: receiver.calls_to(path), timeout=30)
    await log.publish(status_changed(decision, "reversed", payout="0.00"))

    rows = await eventually(lambda: postbacks.ended(partner_id, count=2), timeout=30)
    calls = await eventually(lambda: receiver.calls_to(path) if len(receiver.calls_to(path)) == 2 else None)
    assert calls is not None
    conversion_id = decision.payload.conversion_id
    assert [call.query["st"] for call in calls] == [["approved"], ["reversed"]]
    assert calls[1].query == {"cid": [conversion_id], "tid": [transaction_id], "ev": ["sale"],
                              "st": ["reversed"], "p": ["0.00"], "s1": ["mail"]}
    assert calls[0].headers["Idempotency-Key"] != calls[1].headers["Idempotency-Key"]
    assert [row["status"] for row in rows] == ["delivered", "delivered"]


async def test_a_status_change_is_skipped_for_a_partner_that_did_not_ask_for_them(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id, transaction_id = new_id("offer"), new_id("partner"), new_id("tx")
    path = f"/no-status/{partner_id}"
    await log.publish(offer(offer_id))
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + "?st={status}"))
    decision = attributed(transaction_id, offer_id, partner_id)
    await log.publish(decision)
    await log.publish(status_changed(decision, "rejected"))

    rows = await eventually(lambda: postbacks.ended(partner_id, count=2), timeout=30)
    assert [row["status"] for row in rows] == ["delivered", "skipped"]
    assert rows[1]["last_error"] == "the partner's postback does not ask for status changes"
    assert [call.query["st"] for call in receiver.calls_to(path)] == [["approved"]]


async def test_the_partners_global_postback_is_posted_as_json_where_the_relationship_has_none(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id, transaction_id = new_id("offer"), new_id("partner"), new_id("tx")
    path = f"/global/{partner_id}"
    await log.publish(offer(offer_id))
    await log.publish(partner(partner_id, receiver.url(path) + "?cid={conversion_id}&key=s3cret",
                              method="post"))
    await log.publish(relationship(offer_id, partner_id, None))
    decision = attributed(transaction_id, offer_id, partner_id, payout="12.50", event="lead", sub2="b")
    await log.publish(decision)

    [call] = await eventually(lambda: receiver.calls_to(path), timeout=30)
    conversion_id = decision.payload.conversion_id
    assert call.method == "POST" and call.headers["Content-Type"] == "application/json"
    assert call.query == {"cid": [conversion_id], "key": ["s3cret"]}
    assert json.loads(call.body) == {
        "transaction_id": transaction_id, "conversion_id": conversion_id, "event": "lead", "payout": "12.50",
        "currency": "USD", "sub1": None, "sub2": "b", "sub3": None, "sub4": None, "sub5": None,
        "status": "approved", "offer_id": offer_id, "partner_id": partner_id}
    [row] = await eventually(lambda: postbacks.ended(partner_id), timeout=20)
    assert row["status"] == "delivered" and row["method"] == "post" and "key=***" in row["url"]


async def test_an_offer_event_that_does_not_fire_partner_postbacks_is_skipped(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id = new_id("offer"), new_id("partner")
    path = f"/silent/{partner_id}"
    await log.publish(offer(offer_id, silent=("upsell",)))
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + "?ev={event}"))
    await log.publish(attributed(new_id("tx"), offer_id, partner_id, event="upsell"))
    await log.publish(attributed(new_id("tx"), offer_id, partner_id, event="sale"))

    rows = await eventually(lambda: postbacks.ended(partner_id, count=2), timeout=30)
    assert sorted(row["status"] for row in rows) == ["delivered", "skipped"]
    [skipped] = [row for row in rows if row["status"] == "skipped"]
    assert skipped["last_error"] == "the offer's event 'upsell' does not fire partner postbacks"
    assert [call.query["ev"] for call in receiver.calls_to(path)] == [["sale"]]


async def test_a_status_change_waits_for_the_attribution_still_being_retried(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    """The reversal is owed while the attribution's postback is still failing: the partner
    hears of the attribution first, then of the reversal."""
    offer_id, partner_id = new_id("offer"), new_id("partner")
    path = f"/in-order/{partner_id}"
    receiver.fail[path] = 2
    await log.publish(offer(offer_id))
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + "?st={status}",
                                   status_changes=True))
    decision = attributed(new_id("tx"), offer_id, partner_id)
    await log.publish(decision)
    await log.publish(status_changed(decision, "reversed", payout="0.00"))

    rows = await eventually(lambda: postbacks.ended(partner_id, count=2), timeout=30)
    assert [row["status"] for row in rows] == ["delivered", "delivered"]
    assert [call.query["st"] for call in receiver.calls_to(path)] == [["approved"]] * 3 + [["reversed"]]
