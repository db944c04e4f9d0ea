"""Paid traffic is earned traffic, over real processes: a curl loop of 300 clicks on a
CPC offer, and of 2,000 impressions (two thousands' worth of CPM) on a CPM offer, from one
client through tracking's own endpoints, pays what one visitor earns — in payouts' ledger,
to the cent — while a thousand different visitors still earn their thousand."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, wait_for

from afflux_contracts import ATTRIBUTION, ClickPriced, ImpressionsPriced
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


async def send(client: httpx.AsyncClient, paths: list[tuple[str, str]], expect: int) -> None:
    """GET every (path, user agent), ``AT_ONCE`` at a time; each must answer ``expect``."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(path: str, agent: str) -> int:
        async with gate:
            for attempt in range(ATTEMPTS):
                try:
                    return (await client.get(path, headers={"User-Agent": agent})).status_code
                except (httpx.RemoteProtocolError, httpx.ReadError):  # a kept-alive connection the
                    # server had just closed (before reading the request: nothing was recorded)
                    if attempt == ATTEMPTS - 1:
                        raise
            raise AssertionError("unreachable")

    answers = await asyncio.gather(*(one(path, agent) for path, agent in paths))
    assert answers == [expect] * len(paths)


def judged(api: AdminApi, offer_id: str) -> dict[tuple[str, str], int]:
    response = api.get("attribution", f"/v1/offers/{offer_id}/traffic")
    assert response.status_code == 200, response.text
    return {(line["kind"], line["outcome"]): line["count"] for line in response.json()["traffic"]}


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
        await send(client, [(click_path, CURL)] * CLICKS, 302)
        await send(client, [(impression_path, CURL)] * IMPRESSIONS, 200)
        await send(client, [(impression_path, f"Mozilla/5.0 visitor-{n}") for n in range(999)], 200)

    # Attribution judges ~3,300 records: seconds alone, minutes beside another platform.
    wait_for(lambda: sum(judged(api, cpc_offer).values()) == CLICKS, timeout=480)
    wait_for(lambda: sum(judged(api, cpm_offer).values()) == IMPRESSIONS + 999, timeout=480)
    assert judged(api, cpc_offer) == {("click", "earned"): 1, ("click", "not_unique"): CLICKS - 1}
    assert judged(api, cpm_offer) == {("impression", "earned"): 1000,
                                      ("impression", "not_unique"): IMPRESSIONS - 1}
    wait_for(lambda: api.accrued(clicker) == Decimal("0.25") and api.accrued(shower) == Decimal("5.00"),
             timeout=60)
    on_log = await read_envelopes(platform.infrastructure.bootstrap_servers, ATTRIBUTION.name,
                                  ATTRIBUTION.partitions)
    priced = [e.payload for _, e in on_log if isinstance(e.payload, ClickPriced | ImpressionsPriced)]
    assert sorted((p.offer_id, p.payout.amount) for p in priced) == sorted(
        [(cpc_offer, Decimal("0.25")), (cpm_offer, Decimal("5.00"))])
