"""A host that keeps failing until a postback is given up is paused: nothing more is
called there, its other deliveries wait, and an operator resumes it by API."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from postbacks_fixtures import (
    ADMIN,
    Receiver,
    RunningPostbacks,
    SessionInfra,
    attributed,
    new_id,
    relationship,
)

from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher


async def test_a_host_failing_until_a_postback_is_given_up_is_paused_until_resumed(
    infra: SessionInfra, log: Publisher,
) -> None:
    """On a loopback address of its own: the fresh service also reads the shared broker's
    history, whose postbacks to other tests' (stopped) receivers fail and pause their hosts."""
    receiver = Receiver(bind="127.0.0.9").start()
    service = RunningPostbacks(
        infra.new_database(), infra.bootstrap_servers, f"test-{secrets.token_hex(4)}",
        AFFLUX_POSTBACKS_ALLOW_PRIVATE=True, AFFLUX_POSTBACKS_RETRY_FIRST=0.1,
        AFFLUX_POSTBACKS_GIVE_UP_AFTER=3.0,
    )
    offer_id, partner_id = new_id("offer"), new_id("partner")
    path = f"/down/{partner_id}"
    receiver.fail[path] = 10**6
    await log.publish(relationship(offer_id, partner_id, receiver.url(path)
                                   + "?cid={conversion_id}"))
    first = attributed(new_id("tx"), offer_id, partner_id)
    await log.publish(first)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=service.base_url, headers=ADMIN) as client:
            async def paused() -> list[dict[str, object]]:
                response = await client.get("/v1/postbacks/paused-hosts")
                hosts: list[dict[str, object]] = response.json()["hosts"]
                return hosts

            for _ in range(200):
                if [host for host in await paused() if host["host"] == "127.0.0.9"]:
                    break
                await asyncio.sleep(0.05)
            [host] = [host for host in await paused() if host["host"] == "127.0.0.9"]
            assert "given up" in str(host["reason"])

            async def metric(name: str) -> float:
                text = (await client.get("/metrics")).text
                [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
                return float(value)

            assert await metric("afflux_postback_host_pauses_total") >= 1  # the alert's counter
            for _ in range(100):  # and the gauge an alert holds on while a host stays paused
                if await metric("afflux_postback_paused_hosts") >= 1:
                    break
                await asyncio.sleep(0.05)
            assert await metric("afflux_postback_paused_hosts") >= 1
            [row] = (await client.get("/v1/postbacks", params={"partner_id": partner_id})).json()["postbacks"]
            assert row["status"] == "failed" and row["attempts"] >= 2

            second = attributed(new_id("tx"), offer_id, partner_id)
            await log.publish(second)
            cid = second.payload.conversion_id
            for _ in range(100):
                response = await client.get("/v1/postbacks", params={"partner_id": partner_id})
                rows = response.json()["postbacks"]
                if len(rows) == 2 and rows[1]["status"] == "pending":
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            assert [c for c in receiver.calls_to(path) if c.query["cid"] == [cid]] == []
            assert [host["waiting"] for host in await paused() if host["host"] == "127.0.0.9"] == [1]

            receiver.fail[path] = 0
            resumed = await client.post("/v1/postbacks/paused-hosts/127.0.0.9/resume")
            assert resumed.status_code == 200 and resumed.json() == {"host": "127.0.0.9", "resumed": 1}
            again = await client.post("/v1/postbacks/paused-hosts/127.0.0.9/resume")
            assert again.status_code == 404 and again.json()["error"]["code"] == "host_not_paused"
        await eventually(lambda: service.ended(partner_id, 2), timeout=20)
        rows = await asyncio.to_thread(service.postbacks, partner_id=partner_id)
        assert [row["status"] for row in rows["postbacks"]] == ["failed", "delivered"]
        hosts = await asyncio.to_thread(lambda: httpx.get(
            f"{service.base_url}/v1/postbacks/paused-hosts", headers=ADMIN).json()["hosts"])
        assert [host for host in hosts if host["host"] == "127.0.0.9"] == []
    finally:
        await service.stop()
        receiver.stop()
