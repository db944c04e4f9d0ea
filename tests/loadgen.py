"""What the click benches (``tests/load``) share: wrk runs (a native load generator, not a Python client on
the same two cores) parsed and combined, the bare ASGI 302 they are measured beside, the
bare publish and consume+decode rates of the same broker, and the load average.

Every figure is measured in alternating slices with its baseline (figure, baseline,
figure, baseline ...), so a burst of the shared machine's other load falls on both.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from afflux_contracts import TRACKING, decode
from afflux_infra.embedded import free_port
from afflux_infra.lag import measure
from afflux_infra.platform import Platform
from afflux_infra.provision import ensure_topics

HERE = Path(__file__).parent / "load"
"""The load benches' folder (``bare_redirect.py``, ``pace.lua``)."""
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
BENCH_TOPIC = "afflux.bench"
"""The bare publish's own topic: no service reads it."""


@dataclass
class Wrk:
    """One or more wrk runs: requests answered, seconds taken, latency percentiles (the
    worst slice's, when combined), non-2xx/3xx answers."""

    requests: int
    seconds: float
    percentiles_ms: dict[str, float]
    non_2xx_3xx: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, *, seconds: float, connections: int = 16, script: Path | None = None,
        env: dict[str, str] | None = None) -> Wrk:
    """wrk on one thread (two cores, shared with the services, the broker and PostgreSQL)."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "-H", f"User-Agent: {BROWSER}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    answered = re.search(r"(\d+) requests in ([\d.]+(?:us|ms|s|m))", out)
    assert answered is not None, out
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Wrk(int(answered.group(1)), _ms(answered.group(2)) / 1000, percentiles,
               int(bad.group(1)) if bad else 0)


def combined(runs: list[Wrk]) -> Wrk:
    """Slices as one run: every request over every second; each percentile the worst slice's."""
    return Wrk(sum(r.requests for r in runs), sum(r.seconds for r in runs),
               {p: max(r.percentiles_ms[p] for r in runs) for p in runs[0].percentiles_ms},
               sum(r.non_2xx_3xx for r in runs))


def load_average() -> str:
    return "load average " + " ".join(f"{load:.1f}" for load in os.getloadavg())


@contextmanager
def bare_redirect_server() -> Iterator[str]:
    """A bare ASGI app answering every request with a 302 (``bare_redirect.py``), served
    by the services' stack (uvicorn, uvloop, httptools) in a process of its own."""
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


async def bare_publish_rate(bootstrap: str, count: int, concurrency: int = 64) -> float:
    """Records/s of ``concurrency`` callers each awaiting one acks=all send at a time (as
    concurrent click requests do), click-sized records on a topic no service reads."""
    await ensure_topics(bootstrap, [(BENCH_TOPIC, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        value, sent = b"x" * 700, iter(range(count))

        async def caller() -> None:
            for n in sent:
                await producer.send_and_wait(BENCH_TOPIC, value=value, key=str(n).encode())

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Rate:
    """Records a second, and the CPU of the process that handled them, per record."""

    per_second: float
    cpu_us: float


async def bare_consume_decode_rate(bootstrap: str, topic: str, partitions: int, count: int) -> Rate:
    """A consumer that reads ``count`` records of ``topic`` from its start and decodes each
    (``afflux_contracts.decode``), doing nothing else with them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_poll_records=500, group_id=None, client_id=f"bare-{secrets.token_hex(3)}")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started, cpu, seen = time.perf_counter(), time.process_time(), 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    decode(record.value)
                seen += len(records)
        return Rate(seen / (time.perf_counter() - started), (time.process_time() - cpu) / seen * 1e6)
    finally:
        await consumer.stop()


# -- what a whole platform spends per click ------------------------------------------------

DRAIN_LIMIT = 300.0


def tracking_lags(platform: Platform) -> dict[str, int]:
    """Per consumer of the tracking topic (``schema.store``), the clicks not applied yet."""
    infrastructure = platform.infrastructure
    rows = asyncio.run(measure(infrastructure.database_url, infrastructure.bootstrap_servers))
    lags: dict[str, int] = {}
    for row in rows:
        if row.topic == TRACKING.name:
            lags[row.consumer] = lags.get(row.consumer, 0) + row.lag
    return lags


def drained_after(platform: Platform) -> float:
    """Seconds until every consumer of the tracking topic has applied every click."""
    started = time.perf_counter()
    while any(lag > 0 for lag in tracking_lags(platform).values()):
        assert time.perf_counter() - started < DRAIN_LIMIT, f"not drained: {tracking_lags(platform)}"
        time.sleep(0.2)
    return time.perf_counter() - started


def broker_process(bootstrap: str) -> psutil.Process | None:
    """The embedded broker serving ``bootstrap``, if it runs on this machine."""
    port = bootstrap.rsplit(":", 1)[-1]
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "tansu" in command and f":{port}" in command:
            return process
    return None


def platform_processes(platform: Platform) -> dict[str, psutil.Process]:
    """Every running service of ``platform`` by name, and its broker when it is local."""
    processes = {name: psutil.Process(service.process.pid) for name, service in platform.services.items()
                 if service.process is not None}
    broker = broker_process(platform.infrastructure.bootstrap_servers)
    if broker is not None:
        processes["broker"] = broker
    return processes


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """Each process's CPU time so far (user + system), 0 for one that is gone."""
    seconds = {}
    for name, process in processes.items():
        try:
            times = process.cpu_times()
            seconds[name] = times.user + times.system
        except psutil.Error:
            seconds[name] = 0.0
    return seconds
