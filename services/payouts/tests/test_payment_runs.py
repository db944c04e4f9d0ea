"""Payment runs over the real broker and PostgreSQL (issue 23, item 4): finance selects
payable statements into a run per method and gets the file its bank or provider takes (a
SEPA pain.001 that validates against the schema, a PayPal Payouts CSV); confirming a run
pays each statement once (``StatementPaid`` with the run's id), confirming it twice pays
once, and a failed payment leaves its statement payable with the reason, for another run.
A replay of the log re-derives the runs and their payments."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sepaxml
import xmlschema
from payouts_fixtures import (
    BASE_TIME,
    RunningPayouts,
    attributed,
    buckets,
    new_id,
    partner_created,
    profile_folded,
)

from afflux_contracts import (
    PAYOUTS,
    Envelope,
    PartnerPayoutProfileSet,
    PaymentMethodKind,
    StatementPaid,
    decode,
)
from afflux_infra.testing import SessionInfrastructure, eventually, read_topic
from afflux_payouts.application.replay import verify
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.publish import Publisher
from afflux_plumbing.sealing import FernetSealer

KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
PERIOD_END = (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")
PAIN_001 = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
SEPA = {"type": "sepa", "account_holder": "Lena Reviews GmbH", "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX"}


@pytest.fixture(scope="module")
async def payouts(infra: SessionInfrastructure, own_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), own_broker, "runs-",
                              AFFLUX_PROFILE_KEYS=KEY,
                              AFFLUX_PAYOUTS_SEPA_NAME="Afflux Network GmbH",
                              AFFLUX_PAYOUTS_SEPA_IBAN="DE02120300000000202051",
                              AFFLUX_PAYOUTS_SEPA_BIC="BYLADEM1001") as service:
        yield service


def profile(partner: str, method: dict[str, str]) -> Envelope[PartnerPayoutProfileSet]:
    """A complete profile as the partners service publishes it, its details sealed."""
    sealed = FernetSealer(KEY).seal({"tax": {"legal_name": "Lena Reviews GmbH"}, "payment_method": method})
    return Envelope.wrap(PartnerPayoutProfileSet(
        partner_id=partner, country="DE", payment_method=PaymentMethodKind(method["type"]), complete=True,
        sealed=sealed, set_at=datetime.now(UTC)), producer="test")


async def payable(payouts: RunningPayouts, own_log: Publisher, amount: str, currency: str,
                  method: dict[str, str]) -> tuple[str, str]:
    """A partner paid by ``method`` with a payable statement of ``amount``: (partner, statement)."""
    partner: str = new_id("partner")
    await own_log.publish(partner_created(partner, currency=currency))
    await own_log.publish(profile(partner, method))
    await own_log.publish(attributed(partner, amount, currency))
    await eventually(lambda: payouts.balances(partner).get(currency, {}).get("accrued") == amount, timeout=30)
    await eventually(lambda: profile_folded(payouts, partner), timeout=30)
    closed = await payouts.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
    assert closed.status_code == 200, closed.text
    return partner, str(closed.json()["statements"][0]["statement_id"])


async def run_of(payouts: RunningPayouts, body: dict[str, Any]) -> dict[str, Any]:
    created = await payouts.post("/v1/payment-runs", body)
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


async def test_a_sepa_run_has_a_valid_pain_001_and_confirmed_twice_pays_once(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    partner, statement_id = await payable(payouts, own_log, "40.00", "EUR", SEPA)
    run = await run_of(payouts, {"method": "sepa", "statement_ids": [statement_id]})
    assert [p["statement_id"] for p in run["payments"]] == [statement_id]
    again = await payouts.post("/v1/payment-runs", {"method": "sepa", "statement_ids": [statement_id]})
    assert again.status_code == 422 and again.json()["error"]["field"] == "statement_ids"  # in an open run

    file = await payouts.fetch(f"/v1/payment-runs/{run['payment_run_id']}/file")
    assert file.status_code == 200 and file.headers["content-type"].startswith("application/xml")
    xmlschema.XMLSchema(str(PAIN_001)).validate(file.text)
    assert "DE89370400440532013000" in file.text and "<InstdAmt Ccy=\"EUR\">40.00</InstdAmt>" in file.text

    path = f"/v1/payment-runs/{run['payment_run_id']}/confirm"
    first, second = await payouts.post(path, {}), await payouts.post(path, {})
    assert first.status_code == second.status_code == 200, first.text
    assert first.json() == second.json() == {"payment_run_id": run["payment_run_id"], "status": "confirmed",
                                             "paid": [statement_id], "failed": []}
    await eventually(lambda: payouts.balances(partner)["EUR"] == buckets(paid="40.00"), timeout=30)
    paid = [e.payload for e in await _payouts_log(payouts)
            if isinstance(e.payload, StatementPaid) and e.payload.statement_id == statement_id]
    assert [p.payment_run_id for p in paid] == [run["payment_run_id"]]


async def test_a_failed_payment_returns_its_statement_to_payable_for_another_run(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    paypal = {"type": "paypal", "email": "ann@deals.example"}
    _, refused = await payable(payouts, own_log, "12.50", "USD", paypal)
    _, fine = await payable(payouts, own_log, "7.00", "USD", paypal)
    run = await run_of(payouts, {"method": "paypal", "statement_ids": [refused, fine]})
    file = await payouts.fetch(f"/v1/payment-runs/{run['payment_run_id']}/file")
    rows = list(csv.reader(io.StringIO(file.text)))
    assert rows[0][:3] == ["Email/Phone", "Amount", "Currency code"]
    assert sorted(row[:4] for row in rows[1:]) == sorted([["ann@deals.example", "12.50", "USD", refused],
                                                           ["ann@deals.example", "7.00", "USD", fine]])

    confirmed = await payouts.post(f"/v1/payment-runs/{run['payment_run_id']}/confirm",
                                   {"failed": [{"statement_id": refused, "reason": "receiver unverified"}]})
    assert confirmed.json()["paid"] == [fine], confirmed.text
    shown = await payouts.fetch(f"/v1/statements/{refused}")
    for _ in range(100):  # the failure is folded from the refused statement's partition
        if shown.json()["payment_failure"] is not None:
            break
        await asyncio.sleep(0.1)
        shown = await payouts.fetch(f"/v1/statements/{refused}")
    assert (shown.json()["status"], shown.json()["payment_failure"]) == ("payable", "receiver unverified")
    retried = await run_of(payouts, {"method": "paypal", "statement_ids": [refused]})
    assert [p["statement_id"] for p in retried["payments"]] == [refused]
    listed = (await payouts.fetch("/v1/payment-runs")).json()["payment_runs"]
    first = next(r for r in listed if r["payment_run_id"] == run["payment_run_id"])  # confirmed: folded
    assert (first["method"], first["status"], first["statements"], first["totals"]) == \
        ("paypal", "confirmed", 2, {"USD": "19.50"})


async def test_a_run_refuses_what_it_cannot_pay_and_a_replay_re_derives_the_runs(
        payouts: RunningPayouts, own_log: Publisher) -> None:
    _, dollars = await payable(payouts, own_log, "9.00", "USD", SEPA)
    refused = await payouts.post("/v1/payment-runs", {"method": "sepa", "statement_ids": [dollars]})
    assert refused.status_code == 422 and "EUR" in refused.json()["error"]["message"]
    other = await payouts.post("/v1/payment-runs", {"method": "wire", "statement_ids": [dollars]})
    assert other.status_code == 422 and "paid by sepa" in other.json()["error"]["message"]
    unknown = await payouts.post("/v1/payment-runs/run_nope/confirm", {})
    assert unknown.status_code == 404

    settings = PayoutsSettings(DATABASE_URL=payouts.database_url,
                               KAFKA_BOOTSTRAP_SERVERS=payouts.kafka_bootstrap, port=0)
    found = await verify(replaying(settings), "payouts", service_folds(settings, build))
    assert found.mismatched == 0, [(t.table, t.problem, t.rows[:3]) for t in found.tables if not t.equal]
    assert {"payment_runs", "payment_run_payments"} <= {t.table for t in found.tables}


async def _payouts_log(payouts: RunningPayouts) -> list[Envelope[Any]]:
    return [decode(record.value) for record in await read_topic(payouts.kafka_bootstrap, PAYOUTS.name,
                                                                 PAYOUTS.partitions) if record.value]
