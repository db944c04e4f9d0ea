"""``make bench``, postbacks: deliveries/s of the postbacks service (a real process, fed
through the log) to a partner tracker that answers at once (its own process: uvicorn
with httptools), beside what that tracker can take when driven by wrk and by a bare
httpx loop, measured in the same run; the service's HTTP client (``adapters/http1.py``)
against aiohttp's doing the same call (when aiohttp is installed: the decision record
``docs/decisions/postback-http-client.md`` says why it is not a dependency); then
per-host isolation: the same tracker's deliveries/s and latency while another partner's
tracker takes 2 s per call.

Targets (issues 10, 18): ≥ 1,000 deliveries/s on two cores; a 2 s host does not delay
the others (their rate and latency stay about the same).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
import uvloop

from afflux_contracts import (
    ConversionAttributed,
    Envelope,
    Money,
    OfferCreated,
    PayoutType,
    RelationshipSet,
    Terms,
)
from afflux_infra.embedded import free_port
from afflux_infra.processes import ServiceProcess
from afflux_infra.testing import SessionInfrastructure
from afflux_plumbing.publish import Publisher
from afflux_postbacks.adapters.sender import PostbackSender, resolve
from afflux_postbacks.domain.safety import checked_url, first_allowed

try:
    import aiohttp
except ImportError:  # not a dependency (see the module's docstring)
    aiohttp = None

BURST = int(os.environ.get("AFFLUX_BENCH_POSTBACKS", "6000"))
"""Conversions published at once for the deliveries/s figure."""
PACED_RATE = 300
"""Conversions/s of the paced stream whose latency is compared with and without a slow host."""
PACED_SECONDS = 5
SLOW_CALLS = 400
"""Conversions for the 2 s tracker: with 8 calls in flight per host, it is busy ~100 s."""
RATE_TARGET = 1000.0
SLOW_DELAY = 2.0

RECEIVER = '''
"""A partner tracker that answers at once; /slow/... after {delay} s; /count: calls seen."""
import asyncio, json
counts = {{}}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({{"type": message["type"] + ".complete"}})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/count":
        body = json.dumps(counts).encode()
    else:
        kind = path.split("/")[1]
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "slow":
            await asyncio.sleep({delay})
        body = b"ok"
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''


@dataclass
class Tracker:
    host: str
    port: int

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def count(self, kind: str) -> int:
        counts: dict[str, int] = httpx.get(self.url("/count")).json()
        return counts.get(kind, 0)


@pytest.fixture(scope="module")
def trackers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tracker, Tracker]]:
    """The fast tracker on 127.0.0.1 and the slow one on 127.0.0.2 (another host to the
    postbacks service), each a uvicorn process of its own."""
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    directory = tmp_path_factory.mktemp("tracker")
    (directory / "tracker.py").write_text(RECEIVER.format(delay=SLOW_DELAY))
    running, processes = [], []
    for host in ("127.0.0.1", "127.0.0.2"):
        port = free_port()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tracker:app", "--host", host, "--port", str(port),
             "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
            cwd=directory))
        running.append(Tracker(host, port))
    try:
        for tracker in running:
            _wait_answering(tracker)
        yield running[0], running[1]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def _wait_answering(tracker: Tracker) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            tracker.count("none")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class Service:
    process: ServiceProcess
    database_url: str
    bootstrap_servers: str
    admin_token: str


@pytest.fixture(scope="module")
def postbacks(infra: SessionInfrastructure, bootstrap_for_platform: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The postbacks service alone, as its own process, allowed to call loopback."""
    database_url, token = infra.new_database(), secrets.token_urlsafe(24)
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_for_platform,
           "AFFLUX_ADMIN_TOKEN": token,
           "AFFLUX_CONSUMER_GROUP_PREFIX": f"bench-{secrets.token_hex(4)}",
           "AFFLUX_POSTBACKS_ALLOW_PRIVATE": "true"}
    process = ServiceProcess("postbacks", env, free_port(),
                             tmp_path_factory.mktemp("postbacks-logs") / "postbacks.log")
    try:
        process.start().wait_until("/readyz", 90)
        yield Service(process, database_url, bootstrap_for_platform, token)
    finally:
        process.stop()


def wrk_rate(url: str, seconds: int = 4, connections: int = 8) -> float:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used: on a shared machine,
    what a delivery costs is steadier than how many fit in a second."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Rate:
    per_second: float
    cpu_ms: float
    """CPU milliseconds per call."""


async def httpx_rate(url: str, seconds: float = 4.0, concurrency: int = 8) -> Rate:
    """A bare keep-alive httpx loop (the client postbacks used before) on this process."""
    done = 0
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.get(url)).raise_for_status()
                done += 1
        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return Rate(done / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / done)


class AiohttpCall:
    """The sender's call with aiohttp's client doing the HTTP: the same steps before it
    (URL checked, host resolved, every address checked, the call pinned to the checked
    address with the partner's ``Host``), no redirects followed, at most 4 KiB of the
    answer read, no cookies kept, kept-alive connections per host, a timeout."""

    def __init__(self, per_host: int = 8, timeout: float = 10.0) -> None:
        assert aiohttp is not None
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit_per_host=per_host, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=timeout), cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False)

    async def call(self, url: str, idempotency_key: str) -> int:
        _, host, port = checked_url(url)
        address = first_allowed(await resolve(host, port), allow_private=True)
        pinned = url.replace(f"//{host}", f"//{address}", 1)
        headers = {"Host": f"{host}:{port}", "Idempotency-Key": idempotency_key}
        async with self.session.get(pinned, headers=headers, allow_redirects=False) as response:
            await response.content.read(4096)
            return int(response.status)

    async def close(self) -> None:
        await self.session.close()


async def client_rates(url: str, seconds: float = 1.5, slices: int = 4) -> dict[str, Rate]:
    """Calls/s and CPU ms per call of the service's sender (its HTTP/1.1 client) and of
    the same call through aiohttp, 8 in flight (a host's slots), on uvloop as the service
    runs, in alternating slices (a burst of the machine's other load falls on both)."""
    sender, other = PostbackSender(timeout=10.0, allow_private=True), None
    clients: dict[str, Callable[[str, str], Awaitable[object]]] = {"http1 (adapters/http1.py)": sender.call}
    if aiohttp is not None:
        other = AiohttpCall()
        clients["aiohttp " + aiohttp.__version__] = other.call
    totals = {name: (0, 0.0, 0.0) for name in clients}
    try:
        for _ in range(slices):
            for name, call in clients.items():
                calls, cpu, wall = await _slice(call, url, seconds)
                totals[name] = (totals[name][0] + calls, totals[name][1] + cpu, totals[name][2] + wall)
    finally:
        await sender.close()
        if other is not None:
            await other.close()
    return {name: Rate(calls / wall, cpu * 1000 / calls) for name, (calls, cpu, wall) in totals.items()}


async def _slice(call: Callable[[str, str], Awaitable[object]], url: str, seconds: float,
                 in_flight: int = 8) -> tuple[int, float, float]:
    """Calls made in ``seconds``, ``in_flight`` at once: (calls, CPU seconds, wall seconds)."""
    started_cpu, started = time.process_time(), time.perf_counter()
    deadline = started + seconds

    async def loop() -> int:
        calls = 0
        while time.perf_counter() < deadline:
            result = await call(url, "bench-key")
            assert getattr(result, "status_code", result) == 200, result
            calls += 1
        return calls

    calls = sum(await asyncio.gather(*(loop() for _ in range(in_flight))))
    return calls, time.process_time() - started_cpu, time.perf_counter() - started


def offer(offer_id: str) -> Envelope[OfferCreated]:
    return Envelope.wrap(OfferCreated(
        offer_id=offer_id, name="Bench", destination_url="https://shop.example/", currency="USD",
        payout=Terms(type=PayoutType.CPA, amount=Decimal("9.60"))), producer="bench")


def relationship(offer_id: str, partner_id: str, url: str) -> Envelope[RelationshipSet]:
    return Envelope.wrap(RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=True,
                                         postback_url=url), producer="bench")


def conversion(offer_id: str, partner_id: str, n: int) -> Envelope[ConversionAttributed]:
    now = datetime.now(UTC)
    return Envelope.wrap(ConversionAttributed(
        conversion_id=f"conv-{secrets.token_hex(8)}", transaction_id=f"tx-{n}-{secrets.token_hex(4)}",
        partner_id=partner_id, offer_id=offer_id, event="conversion",
        payout=Money(amount=Decimal("9.60"), currency="USD"), clicked_at=now - timedelta(minutes=5),
        converted_at=now), producer="bench")


@dataclass
class Figures:
    deliveries: int
    rate: float
    """Deliveries/s from the first owed to the last delivered."""
    p50_ms: float
    p99_ms: float
    """Owed (the decision applied) to delivered."""
    cpu_ms: float = float("nan")
    """The postbacks process's CPU milliseconds per delivery."""


class Bench:
    def __init__(self, service: Service, fast: Tracker, slow: Tracker) -> None:
        self.service = service
        self.database_url = service.database_url
        self.fast, self.slow = fast, slow
        self.publisher = Publisher(service.bootstrap_servers, client_id="bench-postbacks")

    async def partner(self, tracker: Tracker, kind: str) -> tuple[str, str]:
        offer_id, partner_id = f"off-{secrets.token_hex(4)}", f"ptn-{secrets.token_hex(4)}"
        url = tracker.url(f"/{kind}/pb?cid={{conversion_id}}&tid={{transaction_id}}&p={{payout}}"
                          "&cur={currency}&ev={event}&token=partner-secret")
        await self.publisher.publish(offer(offer_id))
        await self.publisher.publish(relationship(offer_id, partner_id, url))
        return offer_id, partner_id

    async def burst(self, offer_id: str, partner_id: str, count: int) -> None:
        for start in range(0, count, 1000):
            await self.publisher.publish_all([conversion(offer_id, partner_id, n)
                                              for n in range(start, min(count, start + 1000))])

    async def paced(self, offer_id: str, partner_id: str, rate: int, seconds: int) -> None:
        started = time.perf_counter()
        for tick in range(rate * seconds // 10):
            await self.publisher.publish_all([conversion(offer_id, partner_id, n) for n in range(10)])
            await asyncio.sleep(max(0.0, started + (tick + 1) * 10 / rate - time.perf_counter()))

    def delivered(self, partner_id: str, status: str = "delivered") -> int:
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute("SELECT count(*) FROM postbacks.deliveries WHERE partner_id = %s "
                                     "AND status = %s", (partner_id, status)).fetchone()
        return int(row[0]) if row else 0

    async def until_delivered(self, partner_id: str, count: int, status: str = "delivered",
                              timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.delivered, partner_id, status) < count:
            assert time.monotonic() < deadline, f"{partner_id}: not all {count} postbacks {status}"
            await asyncio.sleep(0.2)

    def pause(self, host: str) -> None:
        """Hold the host's postbacks back (as a pause after an alert would) while a backlog builds."""
        with psycopg.connect(self.database_url) as connection:
            connection.execute("INSERT INTO postbacks.paused_hosts (host, paused_at, reason) "
                               "VALUES (%s, now(), 'bench: a backlog builds')", (host,))

    def resume(self, host: str) -> datetime:
        """Resume the host through the API; when (the database's clock) it was resumed."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute("SELECT now()").fetchone()
        assert row is not None
        response = httpx.post(f"{self.service.process.url}/v1/postbacks/paused-hosts/{host}/resume",
                              headers={"Authorization": f"Bearer {self.service.admin_token}"})
        assert response.status_code == 200, response.text
        resumed_at: datetime = row[0]
        return resumed_at

    def figures(self, partner_id: str, since: datetime | None = None) -> Figures:
        """The partner's delivered postbacks: per second from ``since`` (default: the first
        owed) to the last delivered, and latency owed → delivered."""
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                "SELECT owed_at, updated_at FROM postbacks.deliveries WHERE partner_id = %s "
                "AND status = 'delivered'", (partner_id,)).fetchall()
        latencies = sorted((done - owed).total_seconds() * 1000 for owed, done in rows)
        start = since or min(owed for owed, _ in rows)
        span = (max(done for _, done in rows) - start).total_seconds()
        cuts = statistics.quantiles(latencies, n=100)
        return Figures(len(rows), len(rows) / span, cuts[49], cuts[98])

    async def backlog(self, tracker: Tracker, count: int) -> Figures:
        """``count`` postbacks owed to a paused tracker host, then resumed at once: the rate
        of the delivery itself (claim, call, record, outbox), not of reading the log."""
        offer_id, partner_id = await self.partner(tracker, "fast")
        await asyncio.to_thread(self.pause, tracker.host)
        await self.burst(offer_id, partner_id, count)
        await self.until_delivered(partner_id, count, status="pending")
        pid = self.service.process.process.pid  # type: ignore[union-attr]
        cpu = cpu_seconds(pid)
        resumed_at = await asyncio.to_thread(self.resume, tracker.host)
        await self.until_delivered(partner_id, count)
        cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / count
        figures = self.figures(partner_id, since=resumed_at)
        return Figures(figures.deliveries, figures.rate, float("nan"), float("nan"), cpu_ms)


async def run_bench(service: Service, fast: Tracker, slow: Tracker) -> dict[str, Figures]:
    bench = Bench(service, fast, slow)
    await bench.publisher.start()
    try:
        figures = {}
        warm = await bench.partner(bench.fast, "fast")
        await bench.burst(*warm, 200)
        await bench.until_delivered(warm[1], 200)

        figures["backlog, fast tracker alone"] = await bench.backlog(bench.fast, BURST)

        alone = await bench.partner(bench.fast, "fast")
        await bench.burst(*alone, BURST)
        await bench.until_delivered(alone[1], BURST)
        figures["log → delivered, fast tracker alone"] = bench.figures(alone[1])

        paced = await bench.partner(bench.fast, "fast")
        await bench.paced(*paced, PACED_RATE, PACED_SECONDS)
        await bench.until_delivered(paced[1], PACED_RATE * PACED_SECONDS)
        figures[f"~{PACED_RATE}/s, fast tracker alone"] = bench.figures(paced[1])

        slow_partner = await bench.partner(bench.slow, "slow")
        await bench.burst(*slow_partner, SLOW_CALLS)
        while bench.slow.count("slow") < 8:  # its calls are in flight: the host is busy
            await asyncio.sleep(0.1)
        figures["backlog, beside a 2 s tracker"] = await bench.backlog(bench.fast, BURST)

        paced_beside = await bench.partner(bench.fast, "fast")
        await bench.paced(*paced_beside, PACED_RATE, PACED_SECONDS)
        await bench.until_delivered(paced_beside[1], PACED_RATE * PACED_SECONDS)
        figures[f"~{PACED_RATE}/s, beside a 2 s tracker"] = bench.figures(paced_beside[1])
        slow_done = await asyncio.to_thread(bench.delivered, slow_partner[1])
        figures["2 s tracker meanwhile"] = Figures(slow_done, float("nan"), float("nan"), float("nan"))
        return figures
    finally:
        await bench.publisher.stop()


def test_deliveries_per_second_and_per_host_isolation(
    postbacks: Service, trackers: tuple[Tracker, Tracker], capsys: pytest.CaptureFixture[str],
) -> None:
    fast, slow = trackers
    baseline_url = fast.url("/baseline/pb?cid=x")
    wrk_baseline = wrk_rate(baseline_url)
    httpx_baseline = asyncio.run(httpx_rate(baseline_url))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        clients = runner.run(client_rates(baseline_url))
    figures = asyncio.run(run_bench(postbacks, fast, slow))

    alone = figures["backlog, fast tracker alone"]
    beside = figures["backlog, beside a 2 s tracker"]
    paced_alone = figures[f"~{PACED_RATE}/s, fast tracker alone"]
    paced_beside = figures[f"~{PACED_RATE}/s, beside a 2 s tracker"]
    with capsys.disabled():
        print("\n\npostbacks (one process, fed through the log; tracker: uvicorn+httptools):")
        print(f"  tracker driven by wrk -t1 -c8 (baseline):           {wrk_baseline:>9,.0f} calls/s")
        print(f"  tracker driven by a bare httpx loop, 8 in flight:    "
              f"{httpx_baseline.per_second:>9,.0f} calls/s ({httpx_baseline.cpu_ms:.2f} CPU ms per call)")
        http1 = next(iter(clients.values()))
        for name, rate in clients.items():
            print(f"  the sender's call, {name + ',':<27} 8 in flight: {rate.per_second:>9,.0f} calls/s "
                  f"({rate.cpu_ms:.2f} CPU ms per call, {rate.per_second / http1.per_second:.2f}x http1)")
        if aiohttp is None:
            print("  aiohttp is not installed: see docs/decisions/postback-http-client.md for its figure")
        print(f"  {'':<40} {'deliveries':>10} {'per s':>9} {'p50 ms':>9} {'p99 ms':>9} {'CPU ms':>7}")
        for name, result in figures.items():
            print(f"  {name:<40} {result.deliveries:>10} {result.rate:>9,.0f} {result.p50_ms:>9.1f} "
                  f"{result.p99_ms:>9.1f} {result.cpu_ms:>7.2f}")
        print(f"  CPU ms: the postbacks process's CPU per delivery (all its threads): one core carries "
              f"~{1000 / alone.cpu_ms:,.0f} deliveries/s")
        print("  backlog: owed to a paused host, then resumed (the delivery alone); log → delivered: "
              "published at once,\n  from the first owed to the last delivered (bounded by reading the "
              "log); latency: owed (decision applied) → delivered")
        print(f"  target ≥ {RATE_TARGET:,.0f} deliveries/s; beside a 2 s tracker: "
              f"{beside.rate / alone.rate:.2f}x the rate, p99 {paced_beside.p99_ms:.0f} ms "
              f"vs {paced_alone.p99_ms:.0f} ms alone; load average {os.getloadavg()[0]:.2f} "
              f"(1 min) at the end\n")
    slow_done = figures["2 s tracker meanwhile"].deliveries
    assert slow_done < SLOW_CALLS, "the 2 s tracker was done before the fast one's figures were taken"
    assert alone.rate >= RATE_TARGET, f"{alone.rate:.0f} deliveries/s"
    assert beside.rate >= 0.7 * alone.rate, "a 2 s tracker slowed the others down"
    assert paced_beside.p99_ms < SLOW_DELAY * 1000, "a 2 s tracker delayed the others' postbacks"
