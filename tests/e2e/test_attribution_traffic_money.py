"""Paid traffic is earned traffic, over real processes: a curl loop of 300 clicks on a
CPC offer, and of 2,000 impressions (two thousands' worth of CPM) on a CPM offer, from one
client through tracking's own endpoints, pays what one visitor earns — in payouts' ledger,
to the cent — while a thousand different visitors still earn their thousand."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter, defaultdict
from decimal import Decimal
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, wait_for

from afflux_contracts import (
    ATTRIBUTION,
    TRACKING,
    ClickOutcome,
    ClickPriced,
    ClickRecorded,
    ImpressionRecorded,
    ImpressionsPriced,
)
from afflux_infra.platform import Platform
from afflux_infra.testing import read_envelopes

pytestmark = pytest.mark.slow

CLICKS = 300
IMPRESSIONS = 2_000
CURL = "curl/8.5.0"
AT_ONCE = 32
ATTEMPTS = 3


class NoCookies(CookieJar):
    """A client that keeps no cookie, as ``curl`` in a loop (each request a new visitor
    cookie from the tracker, were the tracker to trust one)."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def program(api: AdminApi, payout: dict[str, str]) -> tuple[str, str]:
    partner_id = api.create_partner(f"Traffic{secrets.token_hex(3)}")
    offer = api.post("partners", "/v1/offers", {"name": "Traffic", "currency": "USD", "payout": payout,
                                                "destination_url": "https://shop.example/?tid={transaction_id}"})
    api.approve(offer["offer_id"], partner_id)
    return str(offer["offer_id"]), partner_id


async def send(client: httpx.AsyncClient, paths: list[tuple[str, str]], expect: int) -> int:
    """GET every (path, user agent), ``AT_ONCE`` at a time; each must answer ``expect``.
    Returns how many were sent again after a connection broke: one the server had read
    before it broke may be recorded twice, as a visitor's retry would be."""
    gate = asyncio.Semaphore(AT_ONCE)
    retried = 0

    async def one(path: str, agent: str) -> int:
        nonlocal retried
        async with gate:
            for attempt in range(ATTEMPTS):
                try:
                    return (await client.get(path, headers={"User-Agent": agent})).status_code
                except (httpx.RemoteProtocolError, httpx.ReadError):  # most often a kept-alive
                    # connection the server had just closed, before reading the request
                    if attempt == ATTEMPTS - 1:
                        raise
                    retried += 1
            raise AssertionError("unreachable")

    answers = await asyncio.gather(*(one(path, agent) for path, agent in paths))
    assert answers == [expect] * len(paths)
    return retried


def judged(api: AdminApi, offer_id: str) -> dict[tuple[str, str], int]:
    response = api.get("attribution", f"/v1/offers/{offer_id}/traffic")
    assert response.status_code == 200, response.text
    return {(line["kind"], line["outcome"]): line["count"] for line in response.json()["traffic"]}


async def recorded(platform: Platform) -> defaultdict[str, Counter[str]]:
    """The valid visits tracking put on its log, per offer and user agent (one read)."""
    on_log = await read_envelopes(platform.infrastructure.bootstrap_servers, TRACKING.name,
                                  TRACKING.partitions)
    visits: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for _, envelope in on_log:
        visit = envelope.payload
        if isinstance(visit, ClickRecorded | ImpressionRecorded) and visit.outcome is ClickOutcome.VALID:
            visits[visit.offer_id][visit.user_agent or ""] += 1
    return visits


def all_judged(platform: Platform, api: AdminApi, offer_id: str, expected: int) -> None:
    """Wait until attribution has judged at least ``expected`` visits on the offer. A
    failure says how many it judged, what attribution's consumers did (parked, dead-lettered)
    and the end of its log."""
    try:
        wait_for(lambda: sum(judged(api, offer_id).values()) >= expected, timeout=480)
    except AssertionError as error:
        attribution = platform.service("attribution")
        metrics = httpx.get(f"{attribution.url}/metrics", timeout=10).text.splitlines()
        counted = ("afflux_consumed_total", "afflux_dead_lettered_total")
        consumed = "\n".join(line for line in metrics if line.startswith(counted))
        raise AssertionError(f"{error}: {expected} expected, judged {judged(api, offer_id)}\n{consumed}\n"
                             f"{attribution.logs()}") from error


def routed(platform: Platform, offer_id: str, partner_id: str) -> bool:
    """Whether tracking knows the link yet: a HEAD probe is recorded, as a prefetch (never
    judged for pay), under a transaction id only on a link it knows."""
    probe = httpx.head(f"{platform.url('tracking')}/c/{offer_id}/{partner_id}")
    return "x-afflux-transaction-id" in probe.headers


@pytest.mark.timeout(900)  # 3,300 requests through the platform: a minute alone, more beside other tests
async def test_a_curl_loop_of_clicks_and_impressions_pays_what_one_visitor_earns(platform: Platform) -> None:
    api = AdminApi(platform)
    cpc_offer, clicker = program(api, {"type": "cpc", "amount": "0.25"})
    cpm_offer, shower = program(api, {"type": "cpm", "amount": "5.00"})
    click_path, impression_path = f"/c/{cpc_offer}/{clicker}", f"/i/{cpm_offer}/{shower}"
    wait_for(lambda: routed(platform, cpc_offer, clicker) and routed(platform, cpm_offer, shower), timeout=60)

    limits = httpx.Limits(max_connections=AT_ONCE, keepalive_expiry=1.0)  # the server closes idle ones at 5 s
    async with httpx.AsyncClient(base_url=platform.url("tracking"), cookies=NoCookies(), timeout=30,
                                 limits=limits) as client:
        retried = await send(client, [(click_path, CURL)] * CLICKS, 302)
        retried += await send(client, [(impression_path, CURL)] * IMPRESSIONS, 200)
        visitors = [(impression_path, f"Mozilla/5.0 visitor-{n}") for n in range(999)]
        retried += await send(client, visitors, 200)

    # Attribution judges ~3,300 records: seconds alone, minutes beside another platform.
    all_judged(platform, api, cpc_offer, CLICKS)
    all_judged(platform, api, cpm_offer, IMPRESSIONS + 999)
    # Every visit answered is on the log; a request sent again after its connection broke
    # may be there twice (retried: the client cannot tell). Each is judged exactly once.
    visits = await recorded(platform)
    clicks, impressions = visits[cpc_offer], visits[cpm_offer]
    assert list(clicks) == [CURL] and len(impressions) == 1000
    assert CLICKS <= clicks.total() <= CLICKS + retried
    assert IMPRESSIONS + 999 <= impressions.total() <= IMPRESSIONS + 999 + retried
    wait_for(lambda: judged(api, cpc_offer) == {("click", "earned"): 1,
                                                ("click", "not_unique"): clicks.total() - 1}
             and judged(api, cpm_offer) == {("impression", "earned"): 1000,
                                            ("impression", "not_unique"): impressions.total() - 1000},
             timeout=60)
    wait_for(lambda: api.accrued(clicker) == Decimal("0.25") and api.accrued(shower) == Decimal("5.00"),
             timeout=60)
    on_log = await read_envelopes(platform.infrastructure.bootstrap_servers, ATTRIBUTION.name,
                                  ATTRIBUTION.partitions)
    priced = [e.payload for _, e in on_log if isinstance(e.payload, ClickPriced | ImpressionsPriced)]
    assert sorted((p.offer_id, p.payout.amount) for p in priced) == sorted(
        [(cpc_offer, Decimal("0.25")), (cpm_offer, Decimal("5.00"))])
