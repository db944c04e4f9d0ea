"""Currencies over the real broker and PostgreSQL (issue 23, item 1): exchange rates are facts
on payouts' log (entered by finance or imported from the ECB's file); a partner paid in its
billing currency has each statement line converted at the rate of the day it was earned,
rounded once per line; a missing rate holds the statement with the pair and day and the
rate's arrival converts and releases it; a balance totals in one currency; a replay
re-derives the conversion from the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from payouts_fixtures import BASE_TIME, RunningPayouts, attributed, new_id, partner_created, terms_folded

from afflux_infra.testing import SessionInfrastructure, eventually
from afflux_payouts.application.replay import verify
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.publish import Publisher

PERIOD_END = (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
async def payouts(infra: SessionInfrastructure, own_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), own_broker, "fx-",
                              AFFLUX_PAYOUTS_HOLD_INTERVAL="0.2") as service:
        yield service


async def shown(payouts: RunningPayouts, path: str, **params: str) -> dict[str, Any]:
    response = await payouts.fetch(path, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def upload(payouts: RunningPayouts, content: bytes) -> httpx.Response:
    async with payouts.client(timeout=30) as client:
        response: httpx.Response = await client.post("/v1/fx-rates/ecb", content=content,
                                                     headers={"Content-Type": "text/csv"})
    return response


async def converted_statement(payouts: RunningPayouts, own_log: Publisher, paid_in: str) -> tuple[str, str]:
    """A partner billed in ``paid_in`` (each call its own currency: the rates stay recorded)
    with a EUR statement held for a missing rate, converted and released once the rates are
    recorded (one by hand, one from an ECB file): its partner_id and statement_id."""
    partner: str = new_id("partner")
    await own_log.publish(partner_created(partner, currency=paid_in, conversion="earned_day"))
    await own_log.publish(attributed(partner, "40.00", "EUR", converted_at=BASE_TIME))
    await own_log.publish(attributed(partner, "10.05", "EUR", converted_at=BASE_TIME + timedelta(days=1)))
    await eventually(lambda: payouts.balances(partner).get("EUR", {}).get("accrued") == "50.05", timeout=30)
    await eventually(lambda: terms_folded(payouts, partner), timeout=30)

    closed = await payouts.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
    assert closed.status_code == 200, closed.text
    statement_id: str = closed.json()["statements"][0]["statement_id"]
    held = await shown(payouts, f"/v1/statements/{statement_id}")
    assert (held["status"], held["hold_reason"]) == ("on_hold", f"missing_rate EUR/{paid_in} 2026-03-01")
    refused = await payouts.post(f"/v1/statements/{statement_id}/paid", {"reference": "too-early"})
    assert refused.status_code == 409

    rate = await payouts.post("/v1/fx-rates", {"base": "EUR", "quote": paid_in, "rate": "1.0842",
                                               "date": "2026-03-01"})
    assert rate.status_code == 201, rate.text
    imported = await upload(payouts, f"Date,{paid_in},JPY,\n2026-03-02,1.0850,160.10,\n".encode())
    assert imported.status_code == 201, imported.text
    assert imported.json()["recorded"] + imported.json()["unchanged"] == 2, imported.text
    for _ in range(150):
        if (await shown(payouts, f"/v1/statements/{statement_id}"))["status"] == "payable":
            break
        await asyncio.sleep(0.2)
    return partner, statement_id


async def test_a_usd_partner_is_paid_its_eur_earnings_at_the_rates_of_their_days_to_the_cent(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    _, statement_id = await converted_statement(payouts, own_log, "USD")
    body = await shown(payouts, f"/v1/statements/{statement_id}")
    assert (body["status"], body["hold_reason"], body["currency"], body["total"]) == \
        ("payable", None, "EUR", "50.05")
    # 40.00 x 1.0842 = 43.368 -> 43.37; 10.05 x 1.0850 = 10.90425 -> 10.90; the total is their sum
    assert (body["paid_currency"], body["paid_total"]) == ("USD", "54.27")
    assert sorted((line["amount"], line["converted"]["amount"], line["converted"]["rate"],
                   line["converted"]["rate_day"]) for line in body["lines"]) == [
        ("10.05", "10.90", "1.0850", "2026-03-02"), ("40.00", "43.37", "1.0842", "2026-03-01")]
    listed = (await shown(payouts, "/v1/fx-rates", base="EUR", quote="USD"))["items"]
    assert {"base": "EUR", "quote": "USD", "rate": "1.0842", "date": "2026-03-01"} in listed
    paid = await payouts.post(f"/v1/statements/{statement_id}/paid", {"reference": "wire-1"})
    assert paid.status_code == 200 and (paid.json()["amount"], paid.json()["currency"]) == ("54.27", "USD")


async def test_a_balance_totals_in_one_currency_or_names_the_missing_rate(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    partner = new_id("partner")
    await own_log.publish(partner_created(partner))
    await own_log.publish(attributed(partner, "10.00", "EUR"))
    await own_log.publish(attributed(partner, "1.00", "USD"))
    await eventually(lambda: "EUR" in payouts.balances(partner) and "USD" in payouts.balances(partner),
                     timeout=30)
    missing = await payouts.fetch(f"/v1/partners/{partner}/balance", currency="GBP", as_of=PERIOD_END)
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "missing_rate"
    assert "EUR/GBP 2026-03-03" in missing.json()["error"]["message"]
    assert (await payouts.post("/v1/fx-rates", {"base": "EUR", "quote": "USD", "rate": "1.0850",
                                                "date": "2026-03-03"})).status_code in (201, 202)
    shown_in_usd = await shown(payouts, f"/v1/partners/{partner}/balance", currency="usd", as_of=PERIOD_END)
    total = shown_in_usd["total"]
    assert (total["currency"], total["accrued"], total["rates"]["EUR"]["rate"]) == ("USD", "11.85", "1.0850")


@pytest.mark.parametrize(("body", "field"), [
    ({"base": "EUR", "quote": "EUR", "rate": "1", "date": "2026-03-01"}, "quote"),
    ({"base": "EUR", "quote": "USD", "rate": "1", "date": "2999-01-01"}, "date"),
    ({"base": "EUR", "quote": "USD", "rate": "0", "date": "2026-03-01"}, "rate"),
    ({"base": "EURO", "quote": "USD", "rate": "1", "date": "2026-03-01"}, "base"),
])
async def test_a_bad_rate_is_a_4xx_naming_the_field(payouts: RunningPayouts, body: dict[str, str],
                                                    field: str) -> None:
    response = await payouts.post("/v1/fx-rates", body)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_a_file_that_is_not_the_ecbs_is_refused_naming_it(payouts: RunningPayouts) -> None:
    response = await upload(payouts, b"name,amount\nx,1\n")
    assert response.status_code == 422 and response.json()["error"]["field"] == "file"


async def test_a_replay_re_derives_the_rates_and_the_converted_totals(payouts: RunningPayouts,
                                                                     own_log: Publisher) -> None:
    await converted_statement(payouts, own_log, "CHF")
    settings = PayoutsSettings(DATABASE_URL=payouts.database_url,
                               KAFKA_BOOTSTRAP_SERVERS=payouts.kafka_bootstrap, port=0)
    found = await verify(replaying(settings), "payouts", service_folds(settings, build))
    assert found.mismatched == 0, [(t.table, t.problem, t.rows[:3]) for t in found.tables if not t.equal]
    assert {"fx_rates", "statements", "statement_lines"} <= {t.table for t in found.tables}
    assert found.statements and not found.unproven
