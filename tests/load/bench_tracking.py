"""``make bench``, tracking: durable click redirects (routed in memory, on the log with
acks=all before the 302) beside a bare ASGI 302 on the same server stack, measured in
the same run with wrk (a native load generator, not a Python client on the same cores),
with the rest of the platform running and consuming every click. Each figure and its
baseline are measured in alternating slices (``loadgen``), the load average printed
beside them. Also click latency paced at ~1,000 clicks/s (beside the bare 302 paced the
same way), one bare acks=all publish at a time (the floor under a lone click), and
postbacks/s.

Goals (issue 18): durable clicks ≥ 0.5x the bare redirect; p99 under 10 ms at 1,000
clicks/s. A missed goal fails the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterator

import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token
from aiokafka import AIOKafkaProducer
from loadgen import BENCH_TOPIC, HERE, Wrk, bare_redirect_server, combined, load_average, wrk

from afflux_infra.platform import Platform
from afflux_infra.provision import ensure_topics

SLICE_SECONDS = float(os.environ.get("AFFLUX_BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("AFFLUX_BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("AFFLUX_BENCH_CONNECTIONS", "16"))
PACED_CONNECTIONS, PACE_MS = 10, "10"
"""10 connections each waiting 10 ms between requests: at most ~1,000 requests a second."""
RATIO_TARGET = 0.5
P99_TARGET_MS = 10.0


async def publish_latency_ms(bootstrap: str, count: int = 300) -> dict[str, float]:
    """One acks=all publish at a time, the way a lone click waits for its own."""
    await ensure_topics(bootstrap, [(BENCH_TOPIC, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        seconds = []
        for n in range(count):
            started = time.perf_counter()
            await producer.send_and_wait(BENCH_TOPIC, value=b"x" * 600, key=str(n).encode())
            seconds.append(time.perf_counter() - started)
    finally:
        await producer.stop()
    cuts = statistics.quantiles(seconds, n=100)
    return {"50": cuts[49] * 1000, "99": cuts[98] * 1000}


@pytest.fixture(scope="module")
def bare_redirect() -> Iterator[str]:
    with bare_redirect_server() as url:
        yield url


def alternating(figure: str, baseline: str, **options: object) -> tuple[Wrk, Wrk, list[str]]:
    """``figure`` and ``baseline`` in ``ROUNDS`` alternating wrk slices; the load average
    after each pair."""
    figures, baselines, loads = [], [], []
    for _ in range(ROUNDS):
        baselines.append(wrk(baseline, seconds=SLICE_SECONDS, **options))
        figures.append(wrk(figure, seconds=SLICE_SECONDS, **options))
        loads.append(load_average())
    return combined(figures), combined(baselines), loads


@pytest.mark.timeout(900)
def test_durable_clicks_beside_the_bare_redirect(platform: Platform, bare_redirect: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("WrkBench")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)
    transaction_id = follow_tracking_link(link)

    clicks, bare, flood_loads = alternating(link, bare_redirect, connections=CONNECTIONS)
    paced_options = {"connections": PACED_CONNECTIONS, "script": HERE / "pace.lua",
                     "env": {"PACE_MS": PACE_MS}}
    paced, paced_bare, paced_loads = alternating(link, bare_redirect, **paced_options)
    ack = asyncio.run(publish_latency_ms(platform.infrastructure.bootstrap_servers))
    postback = (f"{platform.url('tracking')}/postback?transaction_id={transaction_id}&amount=10"
                f"&currency=USD&order_id=bench-wrk&token={postback_token(transaction_id)}")
    postbacks = wrk(postback, seconds=SLICE_SECONDS * ROUNDS, connections=CONNECTIONS)

    ratio = clicks.rate / bare.rate
    p99 = paced.percentiles_ms["99"]
    rows = [
        ("bare ASGI 302 (baseline)", bare),
        ("durable click redirects", clicks),
        (f"bare 302 paced ({paced_bare.rate:,.0f}/s)", paced_bare),
        (f"clicks paced at ~1,000/s ({paced.rate:,.0f}/s)", paced),
        ("postbacks (on the log, then 200)", postbacks),
    ]
    with capsys.disabled():
        print(f"\n\ntracking, wrk -t1, {ROUNDS} alternating slices of {SLICE_SECONDS:g}s per figure "
              f"(flood -c{CONNECTIONS}; paced -c{PACED_CONNECTIONS}, {PACE_MS} ms between requests):")
        print(f"  {'':<44} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, result in rows:
            p = result.percentiles_ms
            print(f"  {name:<44} {result.rate:>9,.0f} {p['50']:>8.2f} {p['90']:>8.2f} "
                  f"{p['99']:>8.2f} {result.non_2xx_3xx:>7}")
        print(f"  one bare acks=all publish at a time on the same broker (the floor under a click): "
              f"p50 {ack['50']:.2f} ms, p99 {ack['99']:.2f} ms")
        print(f"  flood slices: {'; '.join(flood_loads)}")
        print(f"  paced slices: {'; '.join(paced_loads)}")
        print(f"  durable click redirect vs bare ASGI 302: {ratio:.2f}x (goal ≥ {RATIO_TARGET}x) "
              f"{'met' if ratio >= RATIO_TARGET else 'MISSED'}")
        print(f"  p99 at ~1,000 clicks/s: {p99:.2f} ms beside the bare 302's "
              f"{paced_bare.percentiles_ms['99']:.2f} ms (goal < {P99_TARGET_MS:g} ms) "
              f"{'met' if p99 < P99_TARGET_MS else 'MISSED'}\n")

    assert clicks.non_2xx_3xx == postbacks.non_2xx_3xx == paced.non_2xx_3xx == 0
    assert ratio >= RATIO_TARGET, f"durable clicks at {ratio:.2f}x the bare redirect"
    assert p99 < P99_TARGET_MS, f"click p99 {p99:.2f} ms at ~1,000/s"
