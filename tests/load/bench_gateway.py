"""``make bench``, gateway: a partner's 90-day report grouped by day over 1,000,000 clicks
and 50,000 conversions, with wrk (a native load generator), beside a bare ``/healthz``
of the same gateway process in the same run; and the projection's click ingest rate
beside a bare Kafka consumer reading the same records.

The report's counters are bulk-loaded straight into the gateway's tables (the shape the
projection writes: per partner, offer, UTC hour and sub, plus the per-hour totals),
with 100 other partners' traffic beside them, so the read meets a realistic index, and
the per-hour totals and per-UTC-day rows derived from them as the projection keeps them.
Ingest is measured through the real path: ClickRecorded events put on the tracking topic
while the gateway is stopped, then applied by its consumer after a restart until its
counters hold them all (the drain rate of a backlog: the projection's own speed).

Targets: report p95 under 50 ms (issue 9); click ingest ≥ 10,000/s (issue 18), beside a
bare consumer reading and decoding the same records (``afflux_contracts.decode``), in
``INGEST_ROUNDS`` alternating slices with the load average printed. The gateway's lag
while clicks flow through the whole platform is ``bench_firehose``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from loadgen import Rate, bare_consume_decode_rate, load_average
from psycopg import sql

from afflux_contracts import (
    TRACKING,
    ClickRecorded,
    Envelope,
    Event,
    OfferCreated,
    PartnerApiKeyIssued,
    PartnerCreated,
    Terms,
    Visibility,
)
from afflux_contracts.partners import PayoutType
from afflux_infra.embedded import free_port
from afflux_infra.processes import ServiceProcess
from afflux_infra.testing import SessionInfrastructure
from afflux_plumbing.publish import Publisher

DURATION = os.environ.get("AFFLUX_BENCH_SECONDS", "8")
CONNECTIONS = 2
P95_TARGET_MS = 50.0
INGEST_TARGET = 10_000.0
INGEST_ROUNDS = 2
CLICKS, CONVERSIONS, DAYS = 1_000_000, 50_000, 90
OFFERS, SUB1S, OTHER_PARTNERS = 3, 20, 100
INGESTED = 20_000
ADMIN_TOKEN = "bench-gateway-admin"
P95_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("p95_us %d\\n", latency:percentile(95.0)))
end
"""


@dataclass
class Wrk:
    requests_per_second: float
    percentiles_ms: dict[str, float]
    errors: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, headers: dict[str, str]) -> Wrk:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    percentiles["95"] = int(re.search(r"p95_us (\d+)", out).group(1)) / 1000  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Wrk(rate, percentiles, int(bad.group(1)) if bad else 0)


@dataclass
class Bench:
    gateway: ServiceProcess
    database_url: str
    bootstrap: str
    partner_id: str
    api_key: str
    offers: list[str]


def envelope(event: Event) -> Envelope[Event]:
    return Envelope.wrap(event, producer="bench")


async def publish_partner(bootstrap: str, partner_id: str, api_key: str, offers: list[str]) -> None:
    log = Publisher(bootstrap, client_id="bench-gateway")
    await log.start()
    try:
        await log.publish_all(
            [
                envelope(
                    PartnerCreated(partner_id=partner_id, name="Bench partner", email="bench@example.com")
                ),
                envelope(
                    PartnerApiKeyIssued(
                        partner_id=partner_id,
                        key_id="key_bench",
                        prefix=api_key[:12],
                        key_sha256=hashlib.sha256(api_key.encode()).hexdigest(),
                        issued_at=datetime.now(UTC),
                    )
                ),
                *[
                    envelope(
                        OfferCreated(
                            offer_id=offer_id,
                            name=f"Offer {n}",
                            currency="USD",
                            destination_url="https://shop.example/?tid={transaction_id}",
                            visibility=Visibility.PUBLIC,
                            payout=Terms(type=PayoutType.CPA, amount=Decimal("4.25")),
                        )
                    )
                    for n, offer_id in enumerate(offers)
                ],
            ]
        )
    finally:
        await log.stop()


@pytest.fixture(scope="module")
def bench(
    infra: SessionInfrastructure, bootstrap_for_platform: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    database_url = infra.new_database()
    gateway = ServiceProcess(
        "gateway",
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_for_platform,
            "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
            "AFFLUX_CONSUMER_GROUP_PREFIX": f"bench-{secrets.token_hex(4)}",
            "AFFLUX_GATEWAY_SESSION_SECRET": secrets.token_urlsafe(32),
            "AFFLUX_GATEWAY_SERVICE_TOKEN": secrets.token_urlsafe(32),
        },
        free_port(),
        tmp_path_factory.mktemp("gateway-bench") / "gateway.log",
    ).start()
    try:
        gateway.wait_until("/readyz", timeout=90)
        partner_id, api_key = "p-bench", f"afx_live_{secrets.token_urlsafe(32)}"
        offers = [f"o-bench-{n}" for n in range(OFFERS)]
        asyncio.run(publish_partner(bootstrap_for_platform, partner_id, api_key, offers))
        deadline = time.monotonic() + 30
        while httpx.get(f"{gateway.url}/v1/me", headers={"X-Api-Key": api_key}).status_code != 200:
            assert time.monotonic() < deadline, gateway.logs()
            time.sleep(0.1)
        yield Bench(gateway, database_url, bootstrap_for_platform, partner_id, api_key, offers)
    finally:
        gateway.stop()


def load_counters(database_url: str, partner_id: str, offers: list[str], today: datetime) -> None:
    """1,000,000 clicks and 50,000 conversions over 90 days x 24 hours x 3 offers x 20 sub1,
    spread exactly, plus 100 other partners' hourly totals; then ``totals`` and ``daily`` from
    ``counters`` as the projection keeps them."""
    start = today - timedelta(days=DAYS - 1)
    rows = DAYS * 24 * OFFERS * SUB1S
    spread = sql.SQL(
        "INSERT INTO gateway.counters (partner_id, hour, offer_id, sub1, sub2, sub3, sub4, sub5, clicks, "
        "unique_clicks, conversions, payout, revenue) "
        "SELECT %(p)s, %(start)s::timestamptz + (n / {per_hour}) * interval '1 hour', "
        "(%(offer_ids)s::text[])[1 + n %% {offers}], 'sub-' || ((n / {offers}) %% {subs}), '', '', '', '', "
        "clicks, clicks - 1, conversions, conversions * 4.25, conversions * 7.00 "
        "FROM (SELECT n, {base} + (n < {extra})::int AS clicks, (n < {conversions})::int AS conversions "
        "FROM generate_series(0, {rows} - 1) AS n) AS spread"
    ).format(
        per_hour=sql.Literal(OFFERS * SUB1S),
        offers=sql.Literal(OFFERS),
        subs=sql.Literal(SUB1S),
        base=sql.Literal(CLICKS // rows),
        extra=sql.Literal(CLICKS - (CLICKS // rows) * rows),
        conversions=sql.Literal(CONVERSIONS),
        rows=sql.Literal(rows),
    )
    others = sql.SQL(
        "INSERT INTO gateway.counters (partner_id, hour, offer_id, sub1, sub2, sub3, sub4, sub5, clicks, "
        "unique_clicks, conversions, payout, revenue) "
        "SELECT 'p-other-' || p, %(start)s::timestamptz + h * interval '1 hour', 'o-other', "
        "'', '', '', '', '', 5, 4, 1, 4.25, 7.00 "
        "FROM generate_series(1, {partners}) AS p, generate_series(0, {hours} - 1) AS h"
    ).format(partners=sql.Literal(OTHER_PARTNERS), hours=sql.Literal(DAYS * 24))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(spread, {"p": partner_id, "start": start, "offer_ids": offers})
        conn.execute(others, {"start": start})
        conn.execute(
            "INSERT INTO gateway.totals (partner_id, hour, offer_id, clicks, unique_clicks, conversions, "
            "payout, revenue) SELECT partner_id, hour, offer_id, sum(clicks), sum(unique_clicks), "
            "sum(conversions), sum(payout), sum(revenue) FROM gateway.counters GROUP BY 1, 2, 3"
        )
        conn.execute(
            "INSERT INTO gateway.daily (partner_id, day, offer_id, clicks, unique_clicks, conversions, "
            "payout, revenue) SELECT partner_id, (hour AT TIME ZONE 'UTC')::date, offer_id, sum(clicks), "
            "sum(unique_clicks), sum(conversions), sum(payout), sum(revenue) FROM gateway.totals "
            "GROUP BY 1, 2, 3"
        )
        conn.execute("ANALYZE gateway.daily")
        conn.execute("ANALYZE gateway.counters")
        conn.execute("ANALYZE gateway.totals")


async def publish_clicks(bootstrap: str, partner_id: str, offer_id: str, count: int) -> None:
    """Put ``count`` valid clicks on the tracking topic."""
    log = Publisher(bootstrap, client_id="bench-gateway-clicks")
    await log.start()
    try:
        at = datetime.now(UTC)
        for chunk in range(0, count, 2000):
            await log.publish_all(
                [
                    Envelope.wrap(
                        ClickRecorded(
                            transaction_id=f"bench-{n}-{secrets.token_hex(4)}",
                            offer_id=offer_id,
                            partner_id=partner_id,
                            clicked_at=at,
                            sub1=f"s{n % 7}",
                        ),
                        producer="bench",
                    )
                    for n in range(chunk, min(chunk + 2000, count))
                ]
            )
    finally:
        await log.stop()


def ingested_clicks(database_url: str, partner_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(clicks), 0) FROM gateway.totals WHERE partner_id = %s", (partner_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_90_day_report_over_a_million_clicks_beside_healthz(
    bench: Bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    loading = time.perf_counter()
    load_counters(bench.database_url, bench.partner_id, bench.offers, today)
    loaded_in = time.perf_counter() - loading
    first = (today - timedelta(days=DAYS - 1)).date().isoformat()
    url = f"{bench.gateway.url}/v1/me/report?from={first}&to={today.date().isoformat()}&group_by=day"
    key = {"X-Api-Key": bench.api_key}
    body = httpx.get(url, headers=key, timeout=30).json()
    total = body["totals"][0]
    assert (total["clicks"], total["conversions"], len(body["rows"])) == (CLICKS, CONVERSIONS, DAYS), total

    script = tmp_path / "p95.lua"
    script.write_text(P95_SCRIPT)
    healthz = wrk(f"{bench.gateway.url}/healthz", script, {})
    report = wrk(url, script, key)

    with capsys.disabled():
        print(
            f"\n\ngateway, wrk -t1 -c{CONNECTIONS} -d{DURATION}s "
            f"({CLICKS:,} clicks, {CONVERSIONS:,} conversions over {DAYS} days loaded in {loaded_in:.1f}s):"
        )
        print(
            f"  {'':<40} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
        )
        for name, result in (("bare /healthz (baseline)", healthz), ("90-day report by day", report)):
            p = result.percentiles_ms
            print(
                f"  {name:<40} {result.requests_per_second:>9,.0f} {p['50']:>8.2f} {p['90']:>8.2f} "
                f"{p['95']:>8.2f} {p['99']:>8.2f} {result.errors:>7}"
            )
        print(f"  report p95 {report.percentiles_ms['95']:.2f} ms (target < {P95_TARGET_MS:.0f} ms)")
    assert report.errors == 0 and healthz.errors == 0
    assert report.percentiles_ms["95"] < P95_TARGET_MS


def ingest_rate(bench: Bench, partner_id: str) -> Rate:
    """A backlog of clicks (published while the gateway is stopped) drained after a restart:
    the projection's own rate, not the publisher's; timed from the first click counted to
    the last (the consumer-group join before it is not ingest)."""
    bench.gateway.stop()
    asyncio.run(publish_clicks(bench.bootstrap, partner_id, bench.offers[0], INGESTED))
    bench.gateway.start()
    deadline = time.monotonic() + 180
    counted = ingested_clicks(bench.database_url, partner_id)
    while counted == 0:
        assert time.monotonic() < deadline, bench.gateway.logs()
        time.sleep(0.02)
        counted = ingested_clicks(bench.database_url, partner_id)
    assert bench.gateway.process is not None
    gateway = psutil.Process(bench.gateway.process.pid)
    first, first_at, first_cpu = counted, time.perf_counter(), sum(gateway.cpu_times()[:2])
    while counted < INGESTED:
        assert time.monotonic() < deadline, "the gateway did not ingest the clicks within 180 s"
        time.sleep(0.02)
        counted = ingested_clicks(bench.database_url, partner_id)
    cpu = sum(gateway.cpu_times()[:2]) - first_cpu
    return Rate((INGESTED - first) / (time.perf_counter() - first_at), cpu / (INGESTED - first) * 1e6)


@pytest.mark.timeout(900)
def test_click_ingest_beside_a_bare_consumer(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    ingests, bares, loads = [], [], []
    for round_ in range(INGEST_ROUNDS):
        ingests.append(ingest_rate(bench, f"p-ingest-{round_}"))
        bares.append(asyncio.run(bare_consume_decode_rate(
            bench.bootstrap, TRACKING.name, TRACKING.partitions, INGESTED * (round_ + 1))))
        loads.append(load_average())
    ingest = min(rate.per_second for rate in ingests)

    def shown(rates: list[Rate]) -> str:
        return ", ".join(f"{r.per_second:,.0f}/s ({r.cpu_us:,.0f} µs CPU a click)" for r in rates)

    with capsys.disabled():
        print(
            f"\n  gateway click ingest into the reporting projection (a backlog of {INGESTED:,} clicks, "
            f"{INGEST_ROUNDS} rounds): {shown(ingests)}; a bare consumer reading and decoding them: "
            f"{shown(bares)}; "
            f"goal ≥ {INGEST_TARGET:,.0f}/s: {'met' if ingest >= INGEST_TARGET else 'MISSED'} "
            f"({'; '.join(loads)})\n"
        )
    assert ingest >= INGEST_TARGET, f"gateway click ingest {ingest:,.0f}/s"
