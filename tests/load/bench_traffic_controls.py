"""``make bench``, traffic controls (issue 22): durable click redirects through an offer's
targeting, through a paused offer's fail traffic and through a smart link, each beside the
plain click path of the same platform in the same run (alternating wrk slices, the load
average printed beside them), with the rest of the platform consuming every click.

- **targeting**: an offer with a rule of every kind the visitor passes (countries deny,
  device, operating system and browser allow lists, a referrer deny list, day-parting over
  every hour): the click is recorded valid on it;
- **fail traffic**: a paused offer whose fail traffic lists an offer the visitor fails
  (GB only: a loopback visitor has no country) and then the plain one: the click is
  recorded once, on the plain offer, naming where it came from;
- **smart link**: the GB-only offer first, the plain one second;
- and, for comparison (no goal), **paused**: a paused offer without fail traffic, whose
  click goes to its fallback. Every refused link first catches up with the partners log
  (the view may be stale: a link handed out a moment ago must work), which fail traffic
  pays too before it reroutes.

Goal (issue 22): each within 10% of the plain click path (at least 0.9x), judged on the
median of its rounds' ratios to the plain link of the same round (``paired_ratios``). A
missed goal fails the run.

The load is 64 connections, enough to keep the machine busy whatever a click waits for. At
16 the run was bound by each click's latency, not by what the platform can carry (2026-12-07:
the plain link carried 576/s at 16 connections and 1,047-1,182/s at 64, on the same
platform), so any wait showed as lost throughput: refused clicks that only slept 10 ms,
without any work, cost as much as the partners-log catch-up they replaced (0.84x and 0.83x
with 16 connections). The latency a control adds is printed beside each link (p50, p99).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import psutil
import pytest
from afflux_api import AdminApi
from loadgen import Wrk, combined, cpu_seconds, drained_after, load_average, platform_processes, wrk

from afflux_infra.platform import Platform

SECONDS = 4.0
ROTATIONS = 2
"""Each link takes each place in the order this many times: ``ROTATIONS x links`` rounds.
With one rotation (five rounds) one round's ratio ranged 0.6-1.3x, and a control's
median moved by the goal's margin between runs of the same code (0.79-0.98x for fail
traffic over four runs, 2026-12-07); ten rounds narrow it (by about a third, were the
rounds independent)."""
CONNECTIONS = 64
GOAL = 0.9
GOALED = ("targeting", "fail traffic", "smart link")
EVERY_HOUR = list(range(24))
PASSING_TARGETING = {
    "countries": {"deny": ["RU", "KP"]},
    "devices": {"allow": ["desktop", "mobile"]},
    "operating_systems": {"allow": ["linux", "windows", "macos"]},
    "browsers": {"allow": ["chrome", "firefox"]},
    "referrer_domains": {"deny": ["spam.example"]},
    "day_parting": {"time_zone": "Europe/Paris", "hours": EVERY_HOUR},
}


def offer(api: AdminApi, partner_id: str, **fields: Any) -> str:
    created = api.post("partners", "/v1/offers", {
        "name": "Bench", "currency": "USD", "payout": {"type": "cpa", "amount": "1.00"},
        "destination_url": "https://shop.example/landing?tid={transaction_id}", **fields})
    api.approve(created["offer_id"], partner_id)
    return str(created["offer_id"])


def links(api: AdminApi) -> dict[str, str]:
    """The plain link, the three controlled ones and a paused one, all of one partner."""
    partner_id = api.create_partner("TrafficBench")
    plain = offer(api, partner_id)
    targeted = offer(api, partner_id, targeting=PASSING_TARGETING)
    gb_only = offer(api, partner_id, targeting={"countries": {"allow": ["GB"]}})
    paused = offer(api, partner_id, fail_traffic={"offers": [{"offer_id": gb_only}, {"offer_id": plain}]})
    paused_alone = offer(api, partner_id, fallback_url="https://shop.example/elsewhere")
    for offer_id in (paused, paused_alone):
        api.post("partners", f"/v1/offers/{offer_id}/status", {"status": "paused"})
    smart = api.post("partners", "/v1/smart-links", {
        "name": "Bench", "offers": [{"offer_id": gb_only}, {"offer_id": plain, "priority": 2}]})
    smart_link = api.get("partners", f"/v1/smart-links/{smart['smart_link_id']}/partners/{partner_id}"
                                     "/tracking-link")
    assert smart_link.status_code == 200, smart_link.text
    return {"plain": api.tracking_link(plain, partner_id),
            "targeting": api.tracking_link(targeted, partner_id),
            "fail traffic": api.tracking_link(paused, partner_id), "smart link": smart_link.json()["url"],
            "paused": api.tracking_link(paused_alone, partner_id)}


def alternating(platform: Platform,
                urls: dict[str, str]) -> tuple[dict[str, list[Wrk]], dict[str, dict[str, float]], list[str]]:
    """Every link once per round, the order rotated each round so that each link takes
    each place ``ROTATIONS`` times; after each slice the platform drains (every consumer of the tracking
    topic applies every click), so no slice shares the machine with the one before it.
    Returns each link's slices, one per round, the CPU a click of it costs each process of the
    platform and the broker (what the process spent over the slice and its drain, less
    what it spends idle over as long: the idle rate is measured first), and the load
    average after each round."""
    processes = platform_processes(platform)
    idle = idle_rates(processes)
    slices: dict[str, list[Wrk]] = {name: [] for name in urls}
    spent: dict[str, Counter[str]] = {name: Counter() for name in urls}
    names, loads = list(urls), []
    for round_ in range(ROTATIONS * len(names)):
        place = round_ % len(names)
        for name in names[place:] + names[:place]:
            before, started = cpu_seconds(processes), time.perf_counter()
            slices[name].append(wrk(urls[name], seconds=SECONDS, connections=CONNECTIONS))
            drained_after(platform)
            after, elapsed = cpu_seconds(processes), time.perf_counter() - started
            spent[name].update({process: after[process] - before[process] - idle[process] * elapsed
                                for process in processes})
        loads.append(load_average())
    clicks = {name: sum(run.requests for run in runs) for name, runs in slices.items()}
    per_click = {name: {process: seconds / clicks[name] * 1e6 for process, seconds in used.items()}
                 for name, used in spent.items()}
    return slices, per_click, loads


def paired_ratios(slices: dict[str, list[Wrk]]) -> dict[str, list[float]]:
    """Each link's rate over the plain link's in the same round, round by round. The
    machine's pace drifts over a run (the platform's tables grow, the load average moves
    by 2-3 within minutes), by as much as the goal's margin between two runs of the same
    code; a round's links run within half a minute of each other, so the median of the
    rounds' ratios is the verdict, with every round's ratio printed beside it."""
    plain = slices["plain"]
    return {name: [run.rate / plain[round_].rate for round_, run in enumerate(runs)]
            for name, runs in slices.items()}


def idle_rates(processes: dict[str, psutil.Process], seconds: float = 2 * SECONDS) -> dict[str, float]:
    """CPU seconds per second each process spends with no traffic (consumers polling)."""
    before, started = cpu_seconds(processes), time.perf_counter()
    time.sleep(seconds)
    after, elapsed = cpu_seconds(processes), time.perf_counter() - started
    return {process: (after[process] - before[process]) / elapsed for process in processes}


@pytest.mark.timeout(600)
def test_traffic_controls_beside_the_plain_click_path(platform: Platform,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    urls = links(AdminApi(platform))
    slices, by_process, loads = alternating(platform, urls)
    results = {name: combined(runs) for name, runs in slices.items()}
    paired = paired_ratios(slices)
    ratios = {name: statistics.median(each) for name, each in paired.items()}
    cpu_us = {name: sum(spent.values()) for name, spent in by_process.items()}
    plain = results["plain"]
    with capsys.disabled():
        rounds = ROTATIONS * len(urls)
        print(f"\n\ntraffic controls, wrk -t1 -c{CONNECTIONS}, {rounds} rounds of {SECONDS:g}s slices, "
              f"each link in turn, the order rotated:")
        print(f"  {'':<16} {'clicks/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs plain':>9} {'errors':>7}"
              f" {'CPU µs/click':>13} {'vs plain':>9}   vs plain, round by round (median)")
        for name, result in results.items():
            p = result.percentiles_ms
            print(f"  {name:<16} {result.rate:>9,.0f} {p['50']:>8.2f} {p['99']:>8.2f} "
                  f"{result.rate / plain.rate:>8.2f}x {result.non_2xx_3xx:>7}"
                  f" {cpu_us[name]:>13,.0f} {cpu_us[name] / cpu_us['plain']:>8.2f}x   "
                  + " ".join(f"{ratio:.2f}" for ratio in paired[name]) + f" ({ratios[name]:.2f}x)")
        print(f"  rounds: {'; '.join(loads)}")
        print("  CPU µs per click by process (the slices and their drains, less the idle rate):")
        for name, spent in by_process.items():
            print(f"    {name:<14} " + ", ".join(f"{process} {us:,.0f}" for process, us in
                                                   sorted(spent.items(), key=lambda item: -item[1])))
        for name in GOALED:
            verdict = "met" if ratios[name] >= GOAL else "MISSED"
            print(f"  {name} vs plain, the median round: {ratios[name]:.2f}x (goal ≥ {GOAL}x) {verdict}")
        print()
    assert all(result.non_2xx_3xx == 0 for result in results.values())
    missed = {name: f"{ratios[name]:.2f}x" for name in GOALED if ratios[name] < GOAL}
    assert not missed, f"within 10% of the plain click path: missed {missed}"
