"""Faults under steady load, one at a time, on one running platform: after each, nothing
acknowledged is lost, nothing is counted twice, every balance equals an independent fold
of afflux.attribution.v1 and a replay from offset 0 gives the same balances; and the time
from the fault's end until a sale reported then is on its partner's balance.

The attribution API has no conversion status changes yet, so the load is clicks,
postbacks (10% of them sent twice, as after a lost ack) and partner writes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from chaos_harness import (
    ROWS,
    Chaos,
    Client,
    Load,
    Row,
    Verdict,
    check,
    dead_lettered,
    decisions_on_the_log,
    kill_and_restart,
    new_partner_link,
    poison_records,
    publish_raw,
    ready,
)

from afflux_contracts import ATTRIBUTION, PARTNERS, TRACKING
from afflux_infra.embedded import free_port
from afflux_infra.testing import read_topic

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.timeout(600)]
LONG = pytest.mark.chaos_long


@dataclass
class Run:
    """What a fault can reach while it runs: the platform and the load on it."""

    chaos: Chaos
    load: Load
    after: list[Callable[[], Awaitable[Verdict]]]
    """Checks of the fault's own, run after the common ones."""


Fault = Callable[[Run], Awaitable[str]]


def kill_9(name: str) -> Fault:
    async def fault(run: Run) -> str:
        await kill_and_restart(run.chaos.platform.services[name], run.chaos.form.down)
        return f"down {run.chaos.form.down:g} s"
    return fault


async def relay_kills(run: Run) -> str:
    """SIGKILL attribution at random moments while its relay publishes decisions under
    load: some kills fall between a batch's publish and its position write."""
    rng = random.Random(11)
    service = run.chaos.platform.services["attribution"]
    for _ in range(run.chaos.form.relay_kills):
        await ready(service)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await kill_and_restart(service, 0.0)
    return f"{run.chaos.form.relay_kills} kills"


async def broker_pause(run: Run) -> str:
    run.chaos.broker.pause()
    try:
        await asyncio.sleep(run.chaos.form.pause)
    finally:
        run.chaos.broker.resume()
    return f"SIGSTOP {run.chaos.form.pause:g} s"


async def postgres_restart(run: Run) -> str:
    started = time.monotonic()
    await asyncio.to_thread(run.chaos.postgres.restart, run.chaos.form.down * 4, "fast")
    return f"down {time.monotonic() - started:.1f} s"


async def poison(run: Run) -> str:
    bootstrap = run.chaos.platform.infrastructure.bootstrap_servers
    poisons = await poison_records(bootstrap)
    await publish_raw(bootstrap, poisons)
    prefix = run.chaos.group_prefix
    groups = {PARTNERS.name: {f"{prefix}-tracking-partners", f"{prefix}-attribution-partners"},
              TRACKING.name: {f"{prefix}-attribution-tracking"},
              ATTRIBUTION.name: {f"{prefix}-payouts-attribution"}}

    async def nothing_else_changed() -> Verdict:
        verdict = await dead_lettered(bootstrap, poisons, groups)
        decided = await decisions_on_the_log(bootstrap)
        verdict.duplicate(sum(cid.startswith("poison-") for cid in decided), "poison conversions decided")
        return verdict

    run.after.append(nothing_else_changed)
    return f"{len(poisons)} records on {len(groups)} topics"


async def two_instances(run: Run) -> str:
    """A second partners and a second attribution process (same database and settings,
    another port) beside the first ones; partner writes go to both in turn."""
    platform = run.chaos.platform
    seconds = [platform.another_instance(name, free_port(), label="2")
               for name in ("partners", "attribution")]
    for service in seconds:
        service.start()
    try:
        await asyncio.gather(*(ready(service) for service in seconds))
        run.load.partners_urls = [platform.url("partners"), seconds[0].url]
        await asyncio.sleep(run.chaos.form.overlap)
    finally:
        run.load.partners_urls = []
        for service in seconds:
            await asyncio.to_thread(service.stop)
    return f"side by side {run.chaos.form.overlap:g} s"


async def resent_on_the_log(bootstrap: str) -> int:
    """Records on afflux.attribution.v1 whose event_id an earlier record has (re-sends)."""
    ids = Counter(dict(record.headers).get("event_id") for record in
                  await read_topic(bootstrap, ATTRIBUTION.name, ATTRIBUTION.partitions))
    return sum(n - 1 for event_id, n in ids.items() if event_id is not None)


async def under_load(chaos: Chaos, name: str, fault: Fault) -> Row:
    """Load, the fault, more load; then the probe's recovery time and every check."""
    form = chaos.form
    bootstrap = chaos.platform.infrastructure.bootstrap_servers
    resent_before = await resent_on_the_log(bootstrap)
    load = Load(chaos.platform, chaos.ledger, form.rate, form.workers, form.admin_every, seed=len(ROWS),
                phase_name=name)
    run = Run(chaos, load, [])
    stop = asyncio.Event()
    started = time.monotonic()
    traffic = asyncio.create_task(load.run(stop))
    await asyncio.sleep(form.warm)
    note = await fault(run)
    ended = time.monotonic()
    probe = asyncio.create_task(chaos.probe.measure(chaos.platform, chaos.ledger, name, ended))
    await asyncio.sleep(form.tail)
    stop.set()
    await traffic
    held = chaos.ledger.answered[name] / (time.monotonic() - started)
    recovery = await probe
    for service in chaos.platform.services.values():
        await ready(service)
    chaos.replays += 1
    verdict = await check(chaos.platform, chaos.ledger, name, chaos.replays)
    for extra in run.after:
        own = await extra()
        verdict.checked += own.checked
        verdict.lost += own.lost
        verdict.duplicated += own.duplicated
        verdict.failures += own.failures
    resent = await resent_on_the_log(bootstrap) - resent_before
    notes = f"{note}; {chaos.ledger.retried[name]} retried"
    if resent:
        notes += f"; {resent} decisions re-sent"
    row = Row(name, held, verdict.checked, verdict.lost, verdict.duplicated, recovery, notes)
    ROWS.append(row)
    assert recovery is not None, f"{name}: the probe's sale never reached its balance"
    assert not verdict.failures, f"{name}: " + "; ".join(verdict.failures)
    return row


FAULTS: list[tuple[str, Fault, bool]] = [
    # (name, fault, also in the short form)
    ("kill -9 partners", kill_9("partners"), False),
    ("kill -9 tracking", kill_9("tracking"), False),
    ("kill -9 attribution", kill_9("attribution"), False),
    ("kill -9 payouts", kill_9("payouts"), False),
    ("kill -9 attribution's relay", relay_kills, True),
    ("broker SIGSTOP", broker_pause, True),
    ("PostgreSQL restart", postgres_restart, False),
    ("poison records", poison, True),
    ("2 partners + 2 attribution", two_instances, False),
]


@pytest.mark.parametrize(("name", "fault"), [
    pytest.param(name, fault, id=name.replace(" ", "-")) for name, fault, short in FAULTS if short
])
async def test_short_fault_loses_nothing_and_counts_nothing_twice(chaos: Chaos, name: str,
                                                                  fault: Fault) -> None:
    await under_load(chaos, name, fault)


@LONG
@pytest.mark.parametrize(("name", "fault"), [
    pytest.param(name, fault, id=name.replace(" ", "-")) for name, fault, _ in FAULTS
])
async def test_fault_loses_nothing_and_counts_nothing_twice(chaos: Chaos, name: str, fault: Fault) -> None:
    await under_load(chaos, name, fault)


async def test_a_link_handed_out_while_tracking_restarts_works_on_its_first_click(chaos: Chaos) -> None:
    platform = chaos.platform
    tracking = platform.services["tracking"]
    await kill_and_restart(tracking, 0.0)
    await asyncio.to_thread(tracking.wait_until, "/healthz", 90)
    client = Client(chaos.ledger, lambda: "first click after restart")
    client.http.headers["Authorization"] = f"Bearer {platform.admin_token}"
    try:
        link = await new_partner_link(client, platform.url("partners"), chaos.ledger.offer_id)
        assert link is not None, chaos.ledger.problems
        response = await client.http.get(link.url)
    finally:
        await client.close()
        chaos.ledger.problems.clear()
        await ready(tracking)
    assert response.status_code == 302, response.text
