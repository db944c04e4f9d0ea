"""The payouts service against the real broker and PostgreSQL: attribution decisions
published on ``afflux.attribution.v1`` become balances and commissions, each
conversion counted exactly once.

Records of one partner share a partition, so once a later "sentinel" conversion
shows in the balance, everything published before it for that partner has been
consumed: that is how "counted once" is checked without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from datetime import timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord
from payouts_fixtures import (
    BASE_TIME,
    GATEWAY,
    RunningPayouts,
    attributed,
    dead_letters,
    new_id,
    rejected,
    republished,
    usd,
)

from afflux_contracts import ATTRIBUTION, ConversionStatus, Envelope
from afflux_infra.testing import eventually
from afflux_payouts.adapters.store import PayoutsStore
from afflux_plumbing.publish import Publisher


async def test_approved_conversions_accrue_per_currency(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(attributed(partner, "9.60"))
    await attribution_log.publish(attributed(partner, "0.40"))
    await attribution_log.publish(attributed(partner, "5", "EUR"))

    expected = {"EUR": usd("5.00"), "USD": usd("10.00")}
    await eventually(lambda: payouts.balances(partner) == expected)
    body = (await payouts.fetch(f"/v1/partners/{partner}/balance")).json()
    assert body == {"partner_id": partner, "balances": expected}


async def test_pending_conversion_is_pending_not_accrued(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(attributed(partner, "3.00", status=ConversionStatus.PENDING))
    await attribution_log.publish(attributed(partner, "1.25"))

    await eventually(lambda: payouts.balances(partner) == {"USD": usd(accrued="1.25", pending="3.00")})


async def test_same_envelope_published_twice_counts_once(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    twice = attributed(partner, "7.00")
    await attribution_log.publish(twice)
    await attribution_log.publish(twice)
    await attribution_log.publish(attributed(partner, "0.01"))  # sentinel

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("7.01")})


async def test_same_conversion_republished_under_a_new_event_id_counts_once(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    first = attributed(partner, "7.00")
    await attribution_log.publish(first)
    await attribution_log.publish(republished(first))
    await attribution_log.publish(attributed(partner, "0.01"))

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("7.01")})
    commissions = (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json()["commissions"]
    assert [c["conversion_id"] for c in commissions].count(first.payload.conversion_id) == 1
    entry = ledger.reads.entry(first.payload.conversion_id)
    assert entry is not None and entry.event_id == first.event_id  # the first decision is the one kept
    assert re.fullmatch(r"afflux\.attribution\.v1#[0-3]@\d+", entry.recorded_from or "")


async def test_rejected_conversion_adds_no_money_but_keeps_its_reason(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    rejection = rejected(partner)
    await attribution_log.publish(rejection)
    await attribution_log.publish(attributed(partner, "2.00"))

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("2.00")})
    kept = ledger.reads.rejections(partner)
    assert [(r.conversion_id, r.reason) for r in kept] == [(rejection.payload.conversion_id, "duplicate")]


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return dict(record.headers).get(name, b"").decode()


async def dead_lettered(bootstrap: str, envelope: Envelope[Any]) -> list[ConsumerRecord[bytes, bytes]]:
    """The attribution DLQ once ``envelope`` is on it (a dead letter has no balance to wait on)."""
    for _ in range(60):
        letters = await dead_letters(bootstrap)
        if any(header(r, "event_id") == str(envelope.event_id) for r in letters):
            return letters
        await asyncio.sleep(0.5)
    raise AssertionError(f"{envelope.event_id} was not dead-lettered")


async def test_undecodable_bytes_are_dead_lettered_and_their_partners_later_events_wait_behind_them(
    payouts: RunningPayouts, attribution_log: Publisher, kafka_bootstrap: str
) -> None:
    partner, other = new_id("partner"), new_id("partner")
    garbage = f"not an envelope {secrets.token_hex(4)}".encode()
    await attribution_log.send_raw(ATTRIBUTION.name, garbage, partner.encode(), [])
    later = attributed(partner, "4.20")
    await attribution_log.publish(later)
    await attribution_log.publish(attributed(other, "1.00"))

    await eventually(lambda: payouts.balances(other) == {"USD": usd("1.00")})  # other partners go on
    letters = await dead_lettered(kafka_bootstrap, later)
    [dead] = [r for r in letters if r.value == garbage]
    assert "not JSON" in header(dead, "dlq.reason")
    [behind] = [r for r in letters if header(r, "event_id") == str(later.event_id)]
    assert header(behind, "dlq.reason") == f"behind {header(dead, 'dlq.source')}"
    assert await asyncio.to_thread(payouts.balances, partner) == {}


async def test_conflicting_decision_for_a_recorded_conversion_is_dead_lettered_not_counted(
    payouts: RunningPayouts, attribution_log: Publisher, kafka_bootstrap: str
) -> None:
    partner = new_id("partner")
    first = attributed(partner, "5.00")
    conflicting = attributed(partner, "50.00", conversion_id=first.payload.conversion_id)
    later = attributed(partner, "0.01")
    await attribution_log.publish(first)
    await attribution_log.publish(conflicting)
    await attribution_log.publish(later)

    letters = await dead_lettered(kafka_bootstrap, later)  # the partner's next decision waits behind it
    [dead] = [r for r in letters if header(r, "event_id") == str(conflicting.event_id)]
    assert "conflicting decision" in header(dead, "dlq.reason")
    [behind] = [r for r in letters if header(r, "event_id") == str(later.event_id)]
    assert header(behind, "dlq.reason") == f"behind {header(dead, 'dlq.source')}"
    assert await asyncio.to_thread(payouts.balances, partner) == {"USD": usd("5.00")}


async def test_commissions_are_listed_by_conversion_time_across_pages(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    # Published out of order; two share a conversion time and are ordered by conversion_id.
    times = [BASE_TIME + timedelta(hours=h) for h in (3, 1, 2, 1, 0)]
    envelopes = [
        attributed(partner, f"{i}.50", conversion_id=f"conv-{partner}-{i}", converted_at=at,
                   status=ConversionStatus.PENDING if i == 2 else ConversionStatus.APPROVED)
        for i, at in enumerate(times)
    ]
    for envelope in envelopes:
        await attribution_log.publish(envelope)
    await eventually(lambda: payouts.balances(partner) == {"USD": usd(accrued="10.00", pending="2.50")})

    pages, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        body = (await payouts.fetch(f"/v1/partners/{partner}/commissions", **params)).json()
        pages.append(body["commissions"])
        after = body["next"]
        if after is None:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [c for page in pages for c in page]
    assert [c["conversion_id"] for c in listed] == [f"conv-{partner}-{i}" for i in (4, 1, 3, 2, 0)]
    assert listed[0] == {
        "conversion_id": f"conv-{partner}-4", "offer_id": "offer-1", "amount": "4.50", "currency": "USD",
        "status": "accrued", "converted_at": "2026-03-01T12:00:00Z",
    }
    assert listed[3]["status"] == "pending"


async def test_commissions_listing_rejects_bad_limits_and_cursors(payouts: RunningPayouts) -> None:
    path = f"/v1/partners/{new_id('partner')}/commissions"
    for limit in (0, 501, "many"):
        response = await payouts.fetch(path, limit=limit)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "limit"
    # deeper than json's recursion limit, within the query length every service accepts
    deep = base64.urlsafe_b64encode(b"[" * 2_000 + b"]" * 2_000).decode()
    nested = await payouts.fetch(path, after=deep)
    assert (nested.status_code, nested.json()["error"]["field"]) == (422, "after")
    response = await payouts.fetch(path, after="not-a-cursor")
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_request", "field": "after",
        "message": "after: not a cursor this API gave: 'not-a-cursor'",
    }


async def test_partner_without_commissions_has_empty_balances_and_listing(payouts: RunningPayouts) -> None:
    partner = new_id("partner")
    balance = await payouts.fetch(f"/v1/partners/{partner}/balance")
    assert balance.json() == {"partner_id": partner, "balances": {}}
    assert (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json() == {
        "partner_id": partner, "commissions": [], "next": None,
    }


async def test_admin_token_is_required(payouts: RunningPayouts) -> None:
    path = "/v1/partners/p-1/balance"
    assert (await payouts.fetch(path, headers={})).status_code == 401
    wrong = await payouts.fetch(path, headers={"Authorization": "Bearer wrong"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")


async def test_a_service_token_scoped_to_balances_reads_a_balance_and_nothing_else(
    payouts: RunningPayouts,
) -> None:
    """The gateway reads the partner's balance from payouts (one owner of the money rule)
    with a credential scoped to exactly that."""
    partner = new_id("partner")
    balance = await payouts.fetch(f"/v1/partners/{partner}/balance", headers=GATEWAY)
    assert balance.status_code == 200 and balance.json() == {"partner_id": partner, "balances": {}}
    for path in (f"/v1/partners/{partner}/commissions", "/v1/statements",
                 f"/v1/partners/{partner}/statements/preview"):
        refused = await payouts.fetch(path, headers=GATEWAY)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden_scope"), path


async def test_restart_on_the_same_database_counts_old_and_new_conversions_exactly_once(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    before = attributed(partner, "1.00")
    await attribution_log.publish(before)
    await eventually(lambda: payouts.balances(partner) == {"USD": usd("1.00")})

    await payouts.stop()
    await attribution_log.publish(attributed(partner, "2.00"))
    await attribution_log.publish(before)  # a redelivery of an envelope applied before the stop
    await attribution_log.publish(attributed(partner, "120", "JPY"))
    # A new consumer group has no committed offsets to resume from: only what the store
    # recorded (positions and applied event_ids) keeps the old records from counting twice.
    payouts.group_prefix = f"test-{secrets.token_hex(4)}"
    await payouts.start()

    # Generous: a restarted consumer rejoins its group and then catches up with every other
    # test's records on the shared topic before it reaches these.
    await eventually(lambda: payouts.balances(partner) == {
        "JPY": {"accrued": "120", "pending": "0", "payable": "0", "paid": "0"}, "USD": usd("3.00"),
    }, timeout=90)
    listed = (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json()["commissions"]
    assert sorted(c["amount"] for c in listed) == ["1.00", "120", "2.00"]
