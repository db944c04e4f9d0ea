"""``make bench``, tracking: durable click redirects (routed in memory, on the log with
acks=all before the 302) beside a bare ASGI 302 on the same server stack, measured in
the same run with wrk (a native load generator, not a Python client on the same cores),
with the rest of the platform running. Also postbacks/s, and click latency at a fixed
1,000 clicks/s.

Targets (ARCHITECTURE.md, issue 6): durable clicks ≥ 0.5x the bare redirect; p99 under
10 ms at 1,000 clicks/s.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token
from aiokafka import AIOKafkaProducer

from afflux_infra.embedded import free_port
from afflux_infra.platform import Platform
from afflux_infra.provision import ensure_topics

HERE = Path(__file__).parent
DURATION = os.environ.get("AFFLUX_BENCH_SECONDS", "8")
CONNECTIONS = int(os.environ.get("AFFLUX_BENCH_CONNECTIONS", "16"))
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
RATIO_TARGET = 0.5
P99_TARGET_MS = 10.0
BENCH_TOPIC = "afflux.bench"
"""The bare publish's own topic: no service reads it."""


@dataclass
class Wrk:
    requests_per_second: float
    percentiles_ms: dict[str, float]
    non_2xx_3xx: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, connections: int = CONNECTIONS, script: Path | None = None,
        env: dict[str, str] | None = None) -> Wrk:
    """Run wrk for DURATION seconds on one thread (the machine has two cores, shared
    with the service, the broker and PostgreSQL) and parse its report."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--latency",
               "-H", f"User-Agent: {BROWSER}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Wrk(rate, percentiles, int(bad.group(1)) if bad else 0)


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
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_redirect:app", "--port", str(port), "--log-level",
         "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"], cwd=HERE)
    url = f"http://127.0.0.1:{port}/c/bare"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_durable_clicks_beside_the_bare_redirect(platform: Platform, bare_redirect: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("WrkBench")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)
    transaction_id = follow_tracking_link(link)

    bare = wrk(bare_redirect)
    clicks = wrk(link)
    paced = wrk(link, connections=16, script=HERE / "pace.lua", env={"PACE_MS": "10"})
    ack = asyncio.run(publish_latency_ms(platform.infrastructure.bootstrap_servers))
    postback = (f"{platform.url('tracking')}/postback?transaction_id={transaction_id}&amount=10"
                f"&currency=USD&order_id=bench-wrk&token={postback_token(transaction_id)}")
    postbacks = wrk(postback)

    ratio = clicks.requests_per_second / bare.requests_per_second
    rows = [
        ("bare ASGI 302 (baseline)", bare),
        ("durable click redirects", clicks),
        (f"clicks paced at ~1,000/s ({paced.requests_per_second:,.0f}/s)", paced),
        ("postbacks (on the log, then 200)", postbacks),
    ]
    with capsys.disabled():
        print(f"\n\ntracking, wrk -t1 -c{CONNECTIONS} -d{DURATION}s:")
        print(f"  {'':<44} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, result in rows:
            p = result.percentiles_ms
            print(f"  {name:<44} {result.requests_per_second:>9,.0f} {p['50']:>8.2f} {p['90']:>8.2f} "
                  f"{p['99']:>8.2f} {result.non_2xx_3xx:>7}")
        print(f"  one bare acks=all publish at a time on the same broker (the floor under a click): "
              f"p50 {ack['50']:.2f} ms, p99 {ack['99']:.2f} ms")
        print(f"  durable clicks / bare redirect: {ratio:.2f}x (target ≥ {RATIO_TARGET}x); "
              f"p99 at ~1,000/s: {paced.percentiles_ms['99']:.2f} ms (target < {P99_TARGET_MS} ms)\n")

    assert clicks.non_2xx_3xx == postbacks.non_2xx_3xx == paced.non_2xx_3xx == 0
    assert ratio >= RATIO_TARGET, f"durable clicks at {ratio:.2f}x the bare redirect"
    assert paced.percentiles_ms["99"] < P99_TARGET_MS
