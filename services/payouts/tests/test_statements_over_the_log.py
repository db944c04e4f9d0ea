"""Statements against the real broker and PostgreSQL: a close is decided, published on
``afflux.payouts.v1`` and only takes effect when payouts folds it back; balances move
pending -> accrued -> payable -> paid exactly to the cent, a total below the minimum
or negative carries over, a reversal after payment is clawed back, and a point in time
is asked with ``as_of`` / ``as_known_on``.

Each test names its partners and closes them by name (the module shares one service),
except the close of every partner, which works in a period of its own long before.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

from payouts_fixtures import (
    BASE_TIME,
    RunningPayouts,
    attributed,
    buckets,
    new_id,
    partner_created,
    status_changed,
)

from afflux_contracts import (
    PAYOUTS,
    ConversionStatus,
    Envelope,
    LineKind,
    PartnerCreated,
    StatementIssued,
    StatementLine,
    StatusChange,
    decode,
    statement_digest,
)
from afflux_infra.testing import eventually, read_topic
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.statements import Statements
from afflux_plumbing.publish import Publisher


def at(days: float) -> str:
    moment: datetime = BASE_TIME + timedelta(days=days)
    return moment.isoformat().replace("+00:00", "Z")


async def close(payouts: RunningPayouts, partner: str | None, days: float) -> list[dict[str, object]]:
    body: dict[str, object] = {"period_end": at(days)}
    if partner is not None:
        body["partner_id"] = partner
    response = await payouts.post("/v1/statements/close", body)
    assert response.status_code == 200, response.text
    statements: list[dict[str, object]] = response.json()["statements"]
    return statements


async def balances(payouts: RunningPayouts, partner: str, **params: str) -> dict[str, dict[str, str]]:
    """The balance read from a thread (the service answers on this test's event loop)."""
    return await asyncio.to_thread(payouts.balances, partner, **params)


async def settled(payouts: RunningPayouts, partner: str, expected: dict[str, dict[str, str]]) -> None:
    await eventually(lambda: payouts.balances(partner) == expected)


async def billing_known(ledger: PayoutsStore, *terms: Envelope[PartnerCreated]) -> None:
    """Until the partners' billing terms are applied: they come on the partners topic, by a
    consumer of its own, so a settled balance does not say they are known yet."""
    await eventually(lambda: all(ledger.has_applied(envelope.event_id) for envelope in terms))


async def test_a_close_states_each_currency_and_its_lines_become_payable_then_paid(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(partner_created(partner))
    sales = [attributed(partner, "9.60"), attributed(partner, "0.45"), attributed(partner, "5", "EUR")]
    held = attributed(partner, "3.00", status=ConversionStatus.PENDING)
    later = attributed(partner, "7.00", converted_at=BASE_TIME + timedelta(days=5))
    for envelope in (*sales, held, later):
        await attribution_log.publish(envelope)
    await settled(payouts, partner, {"EUR": buckets("5.00"), "USD": buckets("17.05", pending="3.00")})

    issued = await close(payouts, partner, 1)

    assert sorted((s["currency"], s["status"], s["total"]) for s in issued) == \
        [("EUR", "payable", "5.00"), ("USD", "payable", "10.05")]
    assert await balances(payouts, partner) == {"EUR": buckets(payable="5.00"),
                                         "USD": buckets("7.00", pending="3.00", payable="10.05")}
    usd = next(s for s in issued if s["currency"] == "USD")
    shown = (await payouts.fetch(f"/v1/statements/{usd['statement_id']}")).json()
    assert [(line["ref"], line["amount"]) for line in shown["lines"]] == sorted(
        (e.payload.conversion_id, f"{e.payload.payout.amount:.2f}") for e in sales[:2])
    lines = [StatementLine(kind=LineKind(x["kind"]), ref=x["ref"], offer_id=x["offer_id"],
                           happened_at=x["happened_at"], amount=x["amount"]) for x in shown["lines"]]
    period_end = datetime.fromisoformat(shown["period_end"])
    assert shown["digest"] == statement_digest(shown["statement_id"], partner, "USD", period_end, lines)
    assert any(key.startswith("afflux.attribution.v1#") for key in shown["log_position"])
    rows = list(csv.reader(io.StringIO((await payouts.fetch(
        f"/v1/statements/{usd['statement_id']}", format="csv")).text)))
    assert rows[0][-1] == "amount" and sorted(r[-1] for r in rows[1:]) == ["0.45", "9.60"]

    paid = await payouts.post(f"/v1/statements/{usd['statement_id']}/paid", {"reference": "wire-1"})
    assert paid.status_code == 200, paid.text
    assert (await balances(payouts, partner))["USD"] == buckets("7.00", pending="3.00", paid="10.05")
    again = await payouts.post(f"/v1/statements/{usd['statement_id']}/paid", {"reference": "wire-2"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "statement_not_payable"
    listed = (await payouts.fetch("/v1/statements", partner_id=partner, status="paid")).json()["statements"]
    assert [(s["statement_id"], s["reference"]) for s in listed] == [(usd["statement_id"], "wire-1")]
    statuses = (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json()["commissions"]
    assert sorted(c["status"] for c in statuses) == ["accrued", "paid", "paid", "payable", "pending"]
    exported = (await payouts.fetch(f"/v1/partners/{partner}/commissions", format="csv")).text
    table = list(csv.DictReader(io.StringIO(exported)))
    assert sorted((row["currency"], row["amount"], row["status"]) for row in table) == [
        ("EUR", "5.00", "payable"), ("USD", "0.45", "paid"), ("USD", "3.00", "pending"),
        ("USD", "7.00", "accrued"), ("USD", "9.60", "paid")]


async def test_a_total_below_the_minimum_carries_over_to_the_next_statement(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    terms = partner_created(partner, minimum="50")
    await attribution_log.publish(terms)
    await attribution_log.publish(attributed(partner, "30.00"))
    await settled(payouts, partner, {"USD": buckets("30.00")})
    await billing_known(ledger, terms)

    [first] = await close(payouts, partner, 1)
    assert (first["status"], first["total"]) == ("carried_over", "30.00")
    assert await balances(payouts, partner) == {"USD": buckets("30.00")}  # nothing became payable
    refused = await payouts.post(f"/v1/statements/{first['statement_id']}/paid")
    assert refused.status_code == 409

    await attribution_log.publish(attributed(partner, "25.00", converted_at=BASE_TIME + timedelta(days=10)))
    await settled(payouts, partner, {"USD": buckets("55.00")})
    [second] = await close(payouts, partner, 11)

    assert (second["status"], second["total"], second["carried_over"]) == ("payable", "55.00", "30.00")
    assert await balances(payouts, partner) == {"USD": buckets(payable="55.00")}


async def test_a_reversal_after_payment_is_a_deduction_carried_until_earnings_cover_it(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(partner_created(partner))
    sale = attributed(partner, "10.00")
    await attribution_log.publish(sale)
    await settled(payouts, partner, {"USD": buckets("10.00")})
    [statement] = await close(payouts, partner, 1)
    assert (await payouts.post(f"/v1/statements/{statement['statement_id']}/paid")).status_code == 200

    await attribution_log.publish(status_changed(sale, StatusChange.REVERSED))  # on day 3
    await settled(payouts, partner, {"USD": buckets("-10.00", paid="10.00")})
    [negative] = await close(payouts, partner, 4)
    assert (negative["status"], negative["total"]) == ("carried_over", "-10.00")

    await attribution_log.publish(attributed(partner, "15.00", converted_at=BASE_TIME + timedelta(days=6)))
    await settled(payouts, partner, {"USD": buckets("5.00", paid="10.00")})
    [net] = await close(payouts, partner, 7)
    assert (net["status"], net["total"], net["carried_over"]) == ("payable", "5.00", "-10.00")
    assert await balances(payouts, partner) == {"USD": buckets(payable="5.00", paid="10.00")}
    # The statements were issued now, long after these days: as of day 2 the sale was
    # earned and not reversed yet; as of day 5 it was reversed, and nothing was stated yet.
    assert await balances(payouts, partner, as_of=at(2)) == {"USD": buckets("10.00")}
    assert await balances(payouts, partner, as_of=at(5)) == {"USD": buckets()}


async def test_balances_as_known_on_leave_out_records_made_later(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(attributed(partner, "4.00"))
    await settled(payouts, partner, {"USD": buckets("4.00")})
    before = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    assert await balances(payouts, partner, as_known_on=before) == {}
    naive = await payouts.fetch(f"/v1/partners/{partner}/balance", as_of="2026-03-01T00:00:00")
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "as_of"


async def test_closing_every_partner_skips_manual_billing_unless_named_and_never_issues_twice(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    monthly, manual = new_id("partner"), new_id("partner")
    long_ago = BASE_TIME - timedelta(days=400)
    terms = [partner_created(monthly), partner_created(manual, frequency="manual")]
    for envelope in terms:
        await attribution_log.publish(envelope)
    for partner in (monthly, manual):
        await attribution_log.publish(attributed(partner, "2.00", converted_at=long_ago))
        await settled(payouts, partner, {"USD": buckets("2.00")})
    await billing_known(ledger, *terms)

    issued = await close(payouts, None, -399)
    assert [s["partner_id"] for s in issued] == [monthly]
    assert await close(payouts, None, -399) == []  # the same close again: nothing twice
    assert [s["partner_id"] for s in await close(payouts, manual, -399)] == [manual]
    log = await read_topic(payouts.kafka_bootstrap, PAYOUTS.name, PAYOUTS.partitions)
    records = [decode(r.value) for r in log if r.value is not None]
    issued_ones = [e.payload for e in records if isinstance(e.payload, StatementIssued)]
    ids = [s.statement_id for s in issued_ones if s.partner_id in (monthly, manual)]
    assert len(ids) == len(set(ids)) == 2


async def test_bad_closes_and_payments_are_refused_with_the_error_shape(payouts: RunningPayouts) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = await payouts.post("/v1/statements/close", {"period_end": future})
    assert response.status_code == 422 and response.json()["error"]["field"] == "period_end"
    assert (await payouts.post("/v1/statements/close", {"period_end": "soon"})).status_code == 422
    assert (await payouts.fetch("/v1/statements/st_nope")).status_code == 404
    unknown = await payouts.post("/v1/statements/st_nope/paid", {})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "statement_not_found"


async def test_adjustments_accrue_and_are_stated_like_commissions(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    await attribution_log.publish(attributed(partner, "10.00"))
    await settled(payouts, partner, {"USD": buckets("10.00")})
    made = await payouts.post(f"/v1/partners/{partner}/adjustments",
                              {"amount": "-2.50", "currency": "USD", "reason": "chargeback fee"})
    assert made.status_code == 201, made.text
    await settled(payouts, partner, {"USD": buckets("7.50")})
    bad = await payouts.post(f"/v1/partners/{partner}/adjustments",
                             {"amount": "0.001", "currency": "USD", "reason": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"

    [statement] = await close(payouts, partner, (datetime.now(UTC) - BASE_TIME).total_seconds() / 86400)
    assert statement["total"] == "7.50"


async def test_the_scheduler_closes_the_period_a_weekly_partners_billing_ended(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    weekly = partner_created(partner, frequency="weekly")
    await attribution_log.publish(weekly)
    await attribution_log.publish(attributed(partner, "6.00", converted_at=BASE_TIME))
    await settled(payouts, partner, {"USD": buckets("6.00")})
    await billing_known(ledger, weekly)
    thursday = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)

    issued = Statements(ledger, clock=lambda: thursday).close_due()

    mine = [s for s in issued if s.partner_id == partner]
    assert [(s.period_end, s.closed_by, s.frequency) for s in mine] == \
        [(datetime(2026, 3, 9, tzinfo=UTC), "schedule", "weekly")]
    await settled(payouts, partner, {"USD": buckets(payable="6.00")})


async def test_a_preview_shows_the_statements_a_close_would_issue_as_of_and_as_known_on_a_moment(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    terms = partner_created(partner, minimum="10")
    await attribution_log.publish(terms)
    await billing_known(ledger, terms)
    early = attributed(partner, "9.60")
    late = attributed(partner, "7.00", converted_at=BASE_TIME + timedelta(5))
    before_any = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    for envelope in (early, late, attributed(partner, "3.00", status=ConversionStatus.PENDING)):
        await attribution_log.publish(envelope)
    await settled(payouts, partner, {"USD": buckets("16.60", pending="3.00")})
    path = f"/v1/partners/{partner}/statements/preview"

    [day_one] = (await payouts.fetch(path, as_of=at(1))).json()["statements"]
    assert (day_one["status"], day_one["total"], day_one["period_end"]) == ("carried_over", "9.60", at(1))
    assert [(x["ref"], x["amount"]) for x in day_one["lines"]] == [(early.payload.conversion_id, "9.60")]
    [today] = (await payouts.fetch(path)).json()["statements"]
    assert (today["status"], today["total"]) == ("payable", "16.60")
    assert (await payouts.fetch(path, as_known_on=before_any)).json()["statements"] == []

    issued = (await payouts.fetch("/v1/statements", partner_id=partner)).json()["statements"]
    assert issued == []  # a preview records nothing
    naive = await payouts.fetch(path, as_of="2026-03-01T00:00:00")
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "as_of"
