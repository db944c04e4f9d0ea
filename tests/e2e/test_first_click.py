"""A tracking link works on its first click: the partners API hands a link out only once
it is on the log, and tracking catches up with the log before it refuses a link."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from afflux_api import AdminApi

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

LINKS = 50
CLICKS_AT_ONCE = 16
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}


@pytest.mark.timeout(900)  # 800 clicks over 50 new links: ~25 s alone, far longer beside other tests
async def test_the_first_clicks_on_a_freshly_handed_out_link_always_reach_the_offer(
    platform: Platform,
) -> None:
    api = AdminApi(platform)
    partner_id = await asyncio.to_thread(api.create_partner, "FirstClick")
    refused: list[str] = []
    # idle connections dropped after 1 s: the server closes them after 5, and reusing one it
    # is closing is a "disconnected" error of the client's, not a refused click
    async with httpx.AsyncClient(timeout=30, headers=BROWSER,
                                 limits=httpx.Limits(keepalive_expiry=1.0)) as client:
        for _ in range(LINKS):
            offer_id = await asyncio.to_thread(api.create_cps_offer, "8")
            await asyncio.to_thread(api.approve, offer_id, partner_id)
            link = await asyncio.to_thread(api.tracking_link, offer_id, partner_id)
            clicks = await asyncio.gather(*(client.get(link) for _ in range(CLICKS_AT_ONCE)))
            refused += [f"{link}: {r.status_code} {r.headers.get('location') or r.text}" for r in clicks
                        if r.status_code != 302
                        or not r.headers["location"].startswith("https://shop.example/landing")]

    assert refused == [], f"{len(refused)} of {LINKS * CLICKS_AT_ONCE} first clicks refused: {refused[:3]}"
