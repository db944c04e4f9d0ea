"""The schedule lives in PostgreSQL: a restart resumes a delivery between retries, and a
decision read while a delivery was being retried is owed all the same."""

from __future__ import annotations

import secrets

from postbacks_fixtures import Receiver, RunningPostbacks, SessionInfra, attributed, new_id, relationship

from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher


async def test_a_restart_resumes_a_delivery_between_retries_and_sends_what_was_owed_meanwhile(
    infra: SessionInfra, log: Publisher, receiver: Receiver,
) -> None:
    service = RunningPostbacks(
        infra.new_database(), infra.bootstrap_servers, f"test-{secrets.token_hex(4)}",
        AFFLUX_POSTBACKS_ALLOW_PRIVATE=True, AFFLUX_POSTBACKS_RETRY_FIRST=3.0,
        AFFLUX_POSTBACKS_GIVE_UP_AFTER=60.0,
    )
    offer_id, partner_id = new_id("offer"), new_id("partner")
    path = f"/restart/{partner_id}"
    receiver.fail[path] = 1
    await log.publish(relationship(offer_id, partner_id, receiver.url(path) + "?cid={conversion_id}"))
    first = attributed(new_id("tx"), offer_id, partner_id)
    await log.publish(first)
    await service.start()
    try:
        await eventually(lambda: receiver.calls_to(path), timeout=30, interval=0.02)
        # The first call failed; the retry is due 1.5-3 s later. Stop before it.
        await service.stop()
        assert len(receiver.calls_to(path)) == 1
        second = attributed(new_id("tx"), offer_id, partner_id)
        await log.publish(second)
        await service.start()
        rows = await eventually(lambda: service.ended(partner_id, 2), timeout=40)
    finally:
        await service.stop()
    by_conversion = {row["conversion_id"]: row for row in rows}
    assert by_conversion[first.payload.conversion_id]["status"] == "delivered"
    assert by_conversion[first.payload.conversion_id]["attempts"] == 2
    assert by_conversion[second.payload.conversion_id]["status"] == "delivered"
    assert by_conversion[second.payload.conversion_id]["attempts"] == 1
    called = [call.query["cid"][0] for call in receiver.calls_to(path)]
    assert sorted(called) == sorted([first.payload.conversion_id] * 2 + [second.payload.conversion_id])
