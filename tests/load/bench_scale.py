"""``make bench``: attribution's throughput with one instance and with three.

A backlog of clicks and conversions is put on the tracking log through the tracking
service (direct clicks and postbacks, over HTTP), with attribution stopped. Then
attribution is started on it twice, each time in a fresh schema and consumer group
(so both apply the very same records): once as one instance, once as three. The
figure is the backlog's records per second from a cold start (the processes started)
to "no lag left on afflux.tracking.v1" (positions in PostgreSQL vs the log's end, as
``afflux lag`` measures it): start-up and group joins count, as they do when a busy
program adds instances. The one-instance rate is the baseline of the three.

Partitions bound the gain (afflux.tracking.v1 has four), and so does the machine:
instances share its cores with PostgreSQL and the broker, so on 2 cores three
instances mostly show what the rebalance and the shared database cost.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from afflux_api import AdminApi, postback_token

from afflux_contracts import TRACKING
from afflux_infra import lag
from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import ServiceProcess
from afflux_infra.testing import SessionInfrastructure

CLICKS = 1500
"""Each click gets one conversion: 3000 records on the tracking log."""
CONCURRENCY = 16


@pytest.fixture(scope="module")
def feeders(infra: SessionInfrastructure, bootstrap_for_platform: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Partners and tracking only: the backlog is made while attribution is stopped."""
    infrastructure = Infrastructure(database_url=infra.new_database(),
                                    bootstrap_servers=bootstrap_for_platform, kind=infra.server.kind)
    running = Platform(infrastructure, ports={"partners": free_port(), "tracking": free_port()},
                       log_dir=tmp_path_factory.mktemp("bench-scale-logs"),
                       extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"bench-{secrets.token_hex(4)}"})
    try:
        yield running.start()
    finally:
        running.stop()


async def make_backlog(platform: Platform) -> int:
    """Direct clicks and one postback on each; returns the records put on the tracking log."""
    api = AdminApi(platform)
    offer_id = api.create_cps_offer(percent="8")
    partner_ids = [api.create_partner(f"Bench{n}") for n in range(4)]
    for partner_id in partner_ids:
        api.approve(offer_id, partner_id)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(CLICKS):
        queue.put_nowait(n)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {"offer_id": offer_id, "partner_id": partner_ids[n % len(partner_ids)]}
            for _ in range(300):  # 404 until tracking has seen the approval on the log
                click = await client.post("/v1/clicks", json=body)
                if click.status_code != 404:
                    break
                await asyncio.sleep(0.1)
            assert click.status_code == 200, click.text
            tid = click.json()["transaction_id"]
            report = await client.get("/postback", params={
                "transaction_id": tid, "amount": "50.00", "currency": "USD", "order_id": f"bench-{n}",
                "token": postback_token(tid)})
            assert report.status_code == 200, report.text

    async with httpx.AsyncClient(base_url=platform.url("tracking"), timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return 2 * CLICKS


async def applied_rate(platform: Platform, instances: int, records: int) -> float:
    """Start ``instances`` attribution processes in a fresh schema and group; records/s
    until their tracking-log lag is zero."""
    schema = f"attribution_bench{instances}_{secrets.token_hex(3)}"
    env = {"AFFLUX_ATTRIBUTION_SCHEMA": schema,
           "AFFLUX_CONSUMER_GROUP_PREFIX": f"bench-{secrets.token_hex(4)}"}
    processes: list[ServiceProcess] = [
        platform.another_instance("attribution", free_port(), label=f"x{instances}-{n}", env=env)
        for n in range(instances)]
    try:
        started = time.monotonic()
        for process in processes:
            process.start()
        infra = platform.infrastructure
        while True:
            rows = [r for r in await lag.measure(infra.database_url, infra.bootstrap_servers)
                    if r.consumer.startswith(f"{schema}.") and r.topic == TRACKING.name]
            if rows and sum(r.lag for r in rows) == 0:
                return records / (time.monotonic() - started)
            assert time.monotonic() - started < 600, f"attribution x{instances} still behind: {rows}"
            await asyncio.sleep(0.2)
    finally:
        for process in processes:
            process.stop()


async def test_attribution_throughput_with_one_and_three_instances(
        feeders: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    records = await make_backlog(feeders)
    one = await applied_rate(feeders, 1, records)
    three = await applied_rate(feeders, 3, records)
    with capsys.disabled():
        print(f"\nattribution over a backlog of {records} tracking records (4 partitions):"
              f"\n  1 instance   {one:8.0f} records/s   (baseline)"
              f"\n  3 instances  {three:8.0f} records/s   ({three / one:.2f}x the baseline)")
    assert one > 0 and three > 0
