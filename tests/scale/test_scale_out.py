"""Scale-out under load: three attribution and two payouts instances share their
consumer groups' partitions; one attribution instance is killed and a third payouts
instance added mid-stream, and still every conversion is decided once and every
partner's balance is exact."""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for
from afflux_log import envelopes_on
from otlp_sink import ReceivedSpan, otlp_sink

from afflux_contracts import ATTRIBUTION, TRACKING, ConversionAttributed, round_money
from afflux_infra import lag
from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import ServiceProcess
from afflux_infra.testing import SessionInfrastructure

pytestmark = pytest.mark.slow

SERVICES = ("partners", "tracking", "attribution", "payouts")
PARTNERS = 4
CONVERSIONS = 300
"""One per click: an offer's default event converts once per click (a second is a duplicate)."""
CONCURRENCY = 8


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[str, list[ReceivedSpan]]]:
    """Where the services export their traces (OTLP over HTTP), and what arrived."""
    port = free_port()
    with otlp_sink(port) as spans:
        yield f"http://127.0.0.1:{port}", spans


@pytest.fixture(scope="module")
def scaled(infra: SessionInfrastructure, bootstrap_for_platform: str,
           collector: tuple[str, list[ReceivedSpan]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    infrastructure = Infrastructure(database_url=infra.new_database(),
                                    bootstrap_servers=bootstrap_for_platform, kind=infra.server.kind)
    running = Platform(
        infrastructure,
        ports={name: free_port() for name in SERVICES},
        log_dir=tmp_path_factory.mktemp("scale-logs"),
        extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"scale-{secrets.token_hex(4)}",
                   "OTEL_EXPORTER_OTLP_ENDPOINT": collector[0], "OTEL_BSP_SCHEDULE_DELAY": "200"},
        instances={"attribution": 3, "payouts": 2},
    )
    try:
        yield running.start()
    finally:
        running.stop()


def applied_from(process: ServiceProcess, topic: str) -> float:
    """What this one process applied from ``topic`` (its Prometheus counter)."""
    text = httpx.get(f"{process.url}/metrics", timeout=5).text
    labels = r'\{(?=[^}]*outcome="applied")(?=[^}]*topic="' + re.escape(topic) + r'")[^}]*\}'
    return sum(float(value) for value in re.findall(r"afflux_consumed_total" + labels + r" (\S+)", text))


async def direct_clicks(tracking_url: str, offer_id: str, partners: list[str]) -> dict[str, list[str]]:
    """CONVERSIONS // PARTNERS clicks per partner (direct linking), CONCURRENCY at a time."""
    links: dict[str, list[str]] = {partner: [] for partner in partners}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in range(CONVERSIONS):
        queue.put_nowait(partners[n % len(partners)])

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            partner = queue.get_nowait()
            click = await client.post("/v1/clicks", json={"offer_id": offer_id, "partner_id": partner})
            assert click.status_code == 200, click.text
            links[partner].append(click.json()["transaction_id"])

    async with httpx.AsyncClient(base_url=tracking_url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return links


async def post_conversions(api: AdminApi, links: dict[str, list[str]], sent: list[int]) -> dict[str, Decimal]:
    """Postbacks spread over every partner's clicks; returns partner -> expected earnings."""
    rng = random.Random(11)
    plan = [(partner, tid, Decimal(rng.randrange(100, 20_000)) / 100)
            for partner, tids in links.items() for tid in tids]
    rng.shuffle(plan)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    queue: asyncio.Queue[tuple[int, tuple[str, str, Decimal]]] = asyncio.Queue()
    for item in enumerate(plan):
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n, (partner, tid, amount) = queue.get_nowait()
            response = await client.get("/postback", params={
                "transaction_id": tid, "amount": str(amount), "currency": "USD",
                "order_id": f"scale-{n}", "token": postback_token(tid)})
            assert response.status_code == 200, response.text
            expected[partner] += round_money(amount * Decimal("0.08"), "USD")
            sent[0] += 1

    async with httpx.AsyncClient(base_url=api.platform.url("tracking"), timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return expected


async def change_instances_midstream(platform: Platform, sent: list[int]) -> None:
    """Kill -9 the second attribution instance a third of the way in; add a payouts
    instance two thirds of the way in."""
    while sent[0] < CONVERSIONS // 3:
        await asyncio.sleep(0.02)
    platform.instances_of("attribution")[1].kill9()
    while sent[0] < 2 * CONVERSIONS // 3:
        await asyncio.sleep(0.02)
    added = platform.add_instance("payouts", port=free_port())
    await asyncio.to_thread(added.start().wait_until, "/healthz", 60)


async def test_instances_share_partitions_and_every_conversion_counts_once_across_a_kill_and_an_add(
    scaled: Platform, capsys: pytest.CaptureFixture[str],
) -> None:
    api = AdminApi(scaled)
    offer_id = api.create_cps_offer(percent="8")
    partners = [api.create_partner(f"Scale{n}") for n in range(PARTNERS)]
    for partner_id in partners:
        api.approve(offer_id, partner_id)

    for partner_id in partners:  # a link answers once tracking has seen the approval
        await asyncio.to_thread(follow_tracking_link, api.tracking_link(offer_id, partner_id))

    started = time.monotonic()
    links = await direct_clicks(scaled.url("tracking"), offer_id, partners)
    clicked = time.monotonic()

    sent = [0]
    expected, _ = await asyncio.gather(post_conversions(api, links, sent),
                                       change_instances_midstream(scaled, sent))
    try:
        await asyncio.to_thread(
            wait_for, lambda: all(api.accrued(p) == e for p, e in expected.items()), 60, 0.5)
    except AssertionError as error:
        rows = await lag.measure(scaled.infrastructure.database_url, scaled.infrastructure.bootstrap_servers)
        balances = {p: (api.accrued(p), e) for p, e in expected.items()}
        behind = [r for r in rows if r.lag]
        kinds = Counter(
            (e.event_type, str(getattr(e.payload, "reason", "")), str(getattr(e.payload, "status", "")))
            for e in await envelopes_on(scaled.infrastructure.bootstrap_servers, ATTRIBUTION))
        raise AssertionError(f"balances (accrued, expected): {balances}; lagging: {behind}; "
                             f"decisions on the log: {kinds}") from error
    settled = time.monotonic()
    await asyncio.sleep(1)  # nothing late may arrive and count twice
    assert {p: await asyncio.to_thread(api.accrued, p) for p in expected} == expected

    # The log: each conversion decided once (an outbox re-send after the kill repeats the
    # same event_id, which every consumer drops), each order credited once.
    decisions: dict[str, set[str]] = defaultdict(set)
    orders: dict[str, set[str]] = defaultdict(set)
    for envelope in await envelopes_on(scaled.infrastructure.bootstrap_servers, ATTRIBUTION):
        event = envelope.payload
        if isinstance(event, ConversionAttributed) and event.partner_id in expected:
            decisions[event.conversion_id].add(str(envelope.event_id))
            orders[event.order_id or ""].add(event.conversion_id)
    assert len(decisions) == CONVERSIONS
    assert all(len(ids) == 1 for ids in decisions.values()), "a conversion was decided twice"
    assert all(len(ids) == 1 for ids in orders.values()), "an order was credited twice"

    survivors = [p for p in scaled.instances_of("attribution") if p.running]
    shares = [applied_from(p, TRACKING.name) for p in survivors]
    assert len(survivors) == 2 and all(share > 0 for share in shares), shares
    rows = await lag.measure(scaled.infrastructure.database_url, scaled.infrastructure.bootstrap_servers)
    with capsys.disabled():
        print(f"\nscale-out: {CONVERSIONS} conversions over {PARTNERS} partners; attribution x3 (one killed "
              f"after {CONVERSIONS // 3}), payouts x2 (+1 after {2 * CONVERSIONS // 3}); tracking records "
              f"applied per surviving attribution instance: {shares}; "
              f"lag after: {sum(r.lag for r in rows)} records; clicks {clicked - started:.1f} s, "
              f"conversions to exact balances {settled - clicked:.1f} s")


def test_one_trace_follows_a_postback_through_the_log_to_the_balance(
    scaled: Platform, collector: tuple[str, list[ReceivedSpan]],
) -> None:
    """Exported with the standard OTEL_* settings: tracking's request, attribution applying
    the report, payouts applying the decision, in one trace. The outbox carries the
    context within the process that decided, so attribution runs as one instance here."""
    for extra in scaled.instances_of("attribution")[1:]:
        extra.stop()
    scaled.service("attribution").wait_until("/readyz", 60)
    api = AdminApi(scaled)
    offer_id = api.create_cps_offer(percent="8")
    partner_id = api.create_partner("Traced")
    api.approve(offer_id, partner_id)
    tid = follow_tracking_link(api.tracking_link(offer_id, partner_id))
    answer = httpx.get(f"{scaled.url('tracking')}/postback", params={
        "transaction_id": tid, "amount": "10.00", "currency": "USD", "order_id": "traced-1",
        "token": postback_token(tid)})
    assert answer.status_code == 200, answer.text
    wait_for(lambda: api.accrued(partner_id) == Decimal("0.80"), 60, 0.2)
    spans = collector[1]

    def chain() -> tuple[ReceivedSpan, ReceivedSpan, ReceivedSpan] | None:
        received = list(spans)
        for request in (s for s in received if s.service == "afflux-tracking" and s.name == "GET /postback"):
            in_trace = {(s.service, s.name): s for s in received if s.trace_id == request.trace_id}
            reported = in_trace.get(("afflux-attribution", "apply ConversionReported"))
            credited = in_trace.get(("afflux-payouts", "apply ConversionAttributed"))
            if reported and credited:
                return request, reported, credited
        return None

    try:
        request, reported, credited = wait_for(chain, 20, 0.2)
    except AssertionError as error:
        seen = [s for s in list(spans) if s.name in ("GET /postback", "apply ConversionReported",
                                                       "apply ConversionAttributed")]
        raise AssertionError(f"no trace from the postback to the balance; spans received: {seen}") from error
    assert request.parent_span_id == ""  # the trace starts at the advertiser's postback
    assert reported.parent_span_id and credited.parent_span_id == reported.span_id
