"""``make bench``, the click firehose: durable clicks through the whole platform on one
machine, every consumer keeping up.

wrk floods a tracking link (each click routed, put on the log with acks=all, then
redirected) while every service runs as its own process and consumes what it reads of
the tracking topic (attribution indexes each click, the gateway counts it); after each
slice the bench waits until every consumer of the tracking topic has applied every click
(their stored positions against the log's end, as ``afflux lag`` reads them), and
samples that lag while the clicks flow. Beside it, in the same run, in alternating
slices: the bare ASGI 302 on the same server stack, the broker's bare publish rate
(64 concurrent acks=all sends) and a bare consume+decode of the same clicks. The CPU each
process spent per click says where the time goes. The load average is printed beside.

Goals (issue 18): ≥ 5,000 durable clicks/s with every consumer drained within
``DRAIN_TARGET`` seconds after; the gateway's lag bounded while the clicks flow (drained
as soon). A missed goal fails the run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from afflux_api import AdminApi, follow_tracking_link
from loadgen import (
    Wrk,
    bare_consume_decode_rate,
    bare_publish_rate,
    bare_redirect_server,
    combined,
    cpu_seconds,
    drained_after,
    load_average,
    platform_processes,
    tracking_lags,
    wrk,
)

from afflux_contracts import TRACKING
from afflux_infra.platform import Platform

SLICE_SECONDS = float(os.environ.get("AFFLUX_BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("AFFLUX_BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("AFFLUX_BENCH_CONNECTIONS", "16"))
CLICKS_TARGET = 5000.0
DRAIN_TARGET = 5.0
"""Seconds after the last click until every consumer of the tracking topic has applied it."""
BARE_PUBLISHED = 10_000


@dataclass
class LagSampler:
    """The highest lag of each consumer seen while clicks flow (sampled in a thread)."""

    read: Callable[[], dict[str, int]]
    highest: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LagSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            for consumer, lag in self.read().items():
                self.highest[consumer] = max(lag, self.highest.get(consumer, 0))


@pytest.mark.timeout(1200)
def test_durable_clicks_through_the_whole_platform(platform: Platform,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Firehose")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)
    follow_tracking_link(link)
    bootstrap = platform.infrastructure.bootstrap_servers
    processes = platform_processes(platform)

    clicks: list[Wrk] = []
    bare: list[Wrk] = []
    drains: list[float] = []
    published: list[float] = []
    decoded: list[float] = []
    loads: list[str] = []
    spent = dict.fromkeys(processes, 0.0)
    with capsys.disabled():
        print(f"\n\nclick firehose, whole platform: {ROUNDS} alternating slices of {SLICE_SECONDS:g}s "
              f"(wrk -t1 -c{CONNECTIONS}), {load_average()}")
    with bare_redirect_server() as bare_url, LagSampler(lambda: tracking_lags(platform)) as sampler:
        for _ in range(ROUNDS):
            bare.append(wrk(bare_url, seconds=SLICE_SECONDS, connections=CONNECTIONS))
            before = cpu_seconds(processes)
            clicks.append(wrk(link, seconds=SLICE_SECONDS, connections=CONNECTIONS))
            drains.append(drained_after(platform))
            after = cpu_seconds(processes)
            for name in processes:
                spent[name] += after[name] - before[name]
            published.append(asyncio.run(bare_publish_rate(bootstrap, BARE_PUBLISHED)))
            decoded.append(asyncio.run(bare_consume_decode_rate(
                bootstrap, TRACKING.name, TRACKING.partitions, sum(c.requests for c in clicks))).per_second)
            loads.append(load_average())
    flood, baseline = combined(clicks), combined(bare)
    drain = max(drains)
    answered = flood.requests
    met = flood.rate >= CLICKS_TARGET and drain <= DRAIN_TARGET and flood.non_2xx_3xx == 0
    gateway_lag = max((lag for consumer, lag in sampler.highest.items() if consumer.startswith("gateway.")),
                      default=0)
    with capsys.disabled():
        p = flood.percentiles_ms
        print(f"  durable clicks, every consumer running      {flood.rate:>9,.0f}/s   p50 {p['50']:.1f} ms, "
              f"p99 {p['99']:.1f} ms, {flood.non_2xx_3xx} errors; drained {drain:.1f} s after "
              f"(slices: {', '.join(f'{d:.1f}' for d in drains)} s)")
        print(f"    beside: bare ASGI 302 {baseline.rate:,.0f}/s ({flood.rate / baseline.rate:.2f}x); "
              f"bare publish (64 in flight, acks=all) {min(published):,.0f}-{max(published):,.0f} records/s; "
              f"bare consume+decode {min(decoded):,.0f}-{max(decoded):,.0f} records/s")
        verdict = "met" if met else "MISSED"
        print(f"    goal ≥ {CLICKS_TARGET:,.0f}/s, drained ≤ {DRAIN_TARGET:g} s: {verdict}")
        print("  highest lag while clicks flowed: "
              + ", ".join(f"{consumer} {lag:,}" for consumer, lag in sorted(sampler.highest.items()))
              + f" (gateway: {gateway_lag:,}, drained {drain:.1f} s after; goal: bounded, drained "
              f"≤ {DRAIN_TARGET:g} s: {'met' if drain <= DRAIN_TARGET else 'MISSED'})")
        print("  CPU per click (µs, slices and drains): "
              + ", ".join(f"{name} {seconds / answered * 1e6:,.0f}" for name, seconds in spent.items())
              + f"; total {sum(spent.values()) / answered * 1e6:,.0f}")
        print(f"  slices: {'; '.join(loads)}\n")
    assert flood.non_2xx_3xx == 0
    assert flood.rate >= CLICKS_TARGET, f"{flood.rate:,.0f} durable clicks/s through the platform"
    assert drain <= DRAIN_TARGET, f"consumers drained {drain:.1f} s after the clicks"
