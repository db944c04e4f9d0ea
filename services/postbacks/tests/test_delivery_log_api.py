"""``GET /v1/postbacks``: admin only, filters, keyset pages, the shared error shape."""

from __future__ import annotations

import asyncio

import httpx
from postbacks_fixtures import ADMIN, Receiver, RunningPostbacks, attributed, new_id, relationship

from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher


async def test_the_log_pages_by_partner_and_status_and_refuses_bad_cursors_and_strangers(
    postbacks: RunningPostbacks, log: Publisher, receiver: Receiver,
) -> None:
    offer_id, partner_id = new_id("offer"), new_id("partner")
    await log.publish(relationship(offer_id, partner_id, receiver.url(f"/paged/{partner_id}")))
    conversions = [attributed(new_id("tx"), offer_id, partner_id) for _ in range(5)]
    for decision in conversions:
        await log.publish(decision)
    await eventually(lambda: postbacks.ended(partner_id, 5), timeout=30)

    seen, after = [], None
    while True:
        params = {"partner_id": partner_id, "status": "delivered", "limit": 2}
        page = await asyncio.to_thread(postbacks.postbacks, **params, **({"after": after} if after else {}))
        assert len(page["postbacks"]) <= 2
        seen += [row["conversion_id"] for row in page["postbacks"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [decision.payload.conversion_id for decision in conversions]
    failed = await asyncio.to_thread(postbacks.postbacks, partner_id=partner_id, status="failed")
    assert failed["postbacks"] == []

    async with httpx.AsyncClient(base_url=postbacks.base_url) as client:
        stranger = await client.get("/v1/postbacks")
        assert stranger.status_code == 401 and stranger.json()["error"]["code"] == "unauthorized"
        bad = await client.get("/v1/postbacks", params={"after": "not-a-cursor"}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "after"
        status = await client.get("/v1/postbacks", params={"status": "lost"}, headers=ADMIN)
        assert status.status_code == 422 and status.json()["error"]["field"] == "status"
