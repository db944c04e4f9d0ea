"""Exactly-once under crashes: a stream of thousands of conversions while the attribution
process and then the payouts process are killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for
from afflux_log import envelopes_on

from afflux_contracts import ATTRIBUTION, ConversionAttributed, ConversionRejected, round_money
from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

CLICKS = 60
CONVERSIONS = 3000
DUPLICATE_EVERY = 20
"""Every 20th postback repeats an earlier order (same amount): attribution must reject it."""
CONCURRENCY = 16


@dataclass
class Postback:
    transaction_id: str
    order_id: str
    amount: Decimal


@dataclass
class Stream:
    postbacks: list[Postback]
    sent: int = 0
    accepted: dict[str, Postback] = field(default_factory=dict)
    """conversion_id → what was posted, for every postback answered 200."""
    retried: int = 0
    """Postbacks re-sent after a transport error, as an advertiser's server would; the lost
    attempt may have been recorded, which attribution must then see as a duplicate order."""


def conversions_to_send(transaction_ids: list[str]) -> list[Postback]:
    rng = random.Random(7)
    postbacks: list[Postback] = []
    for n in range(CONVERSIONS):
        if n % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
            original = postbacks[rng.randrange(len(postbacks))]
            # another click: the very same report would be the same conversion (a retry)
            other = rng.choice([tid for tid in transaction_ids if tid != original.transaction_id])
            postbacks.append(Postback(other, original.order_id, original.amount))
        else:
            amount = Decimal(rng.randrange(100, 50_000)) / 100
            postbacks.append(Postback(rng.choice(transaction_ids), f"order-{n}", amount))
    return postbacks


async def post_all(tracking_url: str, stream: Stream) -> None:
    queue: asyncio.Queue[Postback] = asyncio.Queue()
    for postback in stream.postbacks:
        queue.put_nowait(postback)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            postback = queue.get_nowait()
            while True:
                try:
                    response = await client.get("/postback", params={
                        "transaction_id": postback.transaction_id, "amount": str(postback.amount),
                        "token": postback_token(postback.transaction_id),
                        "currency": "USD", "order_id": postback.order_id})
                    break
                except httpx.TransportError:
                    stream.retried += 1
            assert response.status_code == 200, response.text
            stream.accepted[response.json()["conversion_id"]] = postback
            stream.sent += 1

    async with httpx.AsyncClient(base_url=tracking_url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))


async def crash_and_restart(platform: Platform, name: str, stream: Stream, at: int) -> int:
    """SIGKILL ``name`` once ``at`` postbacks are in; restart it; return how many were in."""
    while stream.sent < at:
        await asyncio.sleep(0.01)
    killed_at = stream.sent
    service = platform.services[name]
    service.kill9()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(service.start().wait_until, "/readyz", 90)
    return killed_at


@dataclass(frozen=True)
class Decision:
    event_type: str
    order_id: str | None
    outcome: str
    """The payout for an attribution, the reason for a rejection."""


async def decisions_on_the_log(platform: Platform, partner_id: str) -> dict[str, set[Decision]]:
    """conversion_id → the distinct decisions on the log for the partner's conversions
    (the relay re-sends after a crash, with the same event_id and the same decision)."""
    by_conversion: dict[str, set[Decision]] = defaultdict(set)
    for envelope in await envelopes_on(platform.infrastructure.bootstrap_servers, ATTRIBUTION):
        event = envelope.payload
        if isinstance(event, ConversionAttributed) and event.partner_id == partner_id:
            decision = Decision(envelope.event_type, event.order_id, str(event.payout.amount))
        elif isinstance(event, ConversionRejected) and event.partner_id == partner_id:
            decision = Decision(envelope.event_type, event.order_id, event.reason.value)
        else:
            continue
        by_conversion[event.conversion_id].add(decision)
    return by_conversion


def expected_payouts(stream: Stream) -> Decimal:
    """What the partner earned: 8% of each distinct order, rounded half-up to cents."""
    orders = {p.order_id: p.amount for p in stream.accepted.values()}
    return sum((round_money(amount * Decimal("0.08"), "USD") for amount in orders.values()), Decimal(0))


@pytest.mark.timeout(900)  # 3,000 conversions through two kill -9s: minutes beside another platform
async def test_every_conversion_is_counted_exactly_once_across_kill_9_of_attribution_and_payouts(
    platform: Platform, capsys: pytest.CaptureFixture[str],
) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Stream")
    offer_id = api.create_cps_offer(percent="8")
    api.approve(offer_id, partner_id)
    link = api.tracking_link(offer_id, partner_id)
    transaction_ids = [await asyncio.to_thread(follow_tracking_link, link) for _ in range(CLICKS)]

    stream = Stream(conversions_to_send(transaction_ids))
    _, attribution_killed_at, payouts_killed_at = await asyncio.gather(
        post_all(platform.url("tracking"), stream),
        crash_and_restart(platform, "attribution", stream, at=CONVERSIONS // 3),
        crash_and_restart(platform, "payouts", stream, at=2 * CONVERSIONS // 3),
    )
    assert attribution_killed_at < CONVERSIONS and payouts_killed_at < CONVERSIONS
    assert len(stream.accepted) == CONVERSIONS

    # The log: every conversion decided, once (re-sends carry the same decision).
    deadline = asyncio.get_running_loop().time() + 240
    while missing := set(stream.accepted) - set(decided := await decisions_on_the_log(platform, partner_id)):
        assert asyncio.get_running_loop().time() < deadline, f"{len(missing)} never decided"
        await asyncio.sleep(1)
    assert all(len(decisions) == 1 for decisions in decided.values()), "a conversion was decided twice"
    attributed = [d for (d,) in decided.values() if d.event_type == "ConversionAttributed"]
    rejected = [d for (d,) in decided.values() if d.event_type == "ConversionRejected"]
    orders = Counter(d.order_id for d in attributed)
    assert set(orders) == {p.order_id for p in stream.accepted.values()}
    assert max(orders.values()) == 1, "an order was credited twice"
    assert {d.outcome for d in rejected} == {"duplicate"}

    from_log = sum((Decimal(d.outcome) for d in attributed), Decimal(0))
    assert from_log == expected_payouts(stream)
    await asyncio.to_thread(wait_for, lambda: api.accrued(partner_id) == from_log, 180, 0.5)
    await asyncio.sleep(2)  # nothing late may arrive and count twice
    assert await asyncio.to_thread(api.accrued, partner_id) == from_log
    assert await asyncio.to_thread(count_commissions, api, partner_id) == len(attributed)
    with capsys.disabled():
        print(f"\ncrash test: {CONVERSIONS} postbacks ({stream.retried} re-sent after a transport error), "
              f"attribution killed after {attribution_killed_at}, payouts after {payouts_killed_at}; "
              f"{len(attributed)} attributed, {len(rejected)} rejected as duplicates, {from_log} USD "
              "on the log and on the balance")


def count_commissions(api: AdminApi, partner_id: str) -> int:
    count, after = 0, None
    while True:
        path = f"/v1/partners/{partner_id}/commissions?limit=500" + (f"&after={after}" if after else "")
        page = api.get("payouts", path).json()
        count += len(page["commissions"])
        if not (after := page["next"]):
            return count
