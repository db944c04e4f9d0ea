"""The tax gate over the real broker and PostgreSQL (issue 23, item 2): with
``AFFLUX_PAYOUTS_TAX_GATE`` on, a payable statement of a partner whose tax and payment
profile is incomplete is ``on_hold`` with the reason and cannot be paid; once the partners
log says the profile is complete, payouts releases it and it pays once. A replay of the
log re-derives the holds and releases byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from payouts_fixtures import (
    BASE_TIME,
    RunningPayouts,
    attributed,
    buckets,
    new_id,
    partner_created,
    profile_folded,
)

from afflux_contracts import Envelope, PartnerPayoutProfileSet, PaymentMethodKind, TaxForm
from afflux_infra.testing import SessionInfrastructure, eventually
from afflux_payouts.application.replay import verify
from afflux_payouts.entrypoints.drift import replaying, service_folds
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.publish import Publisher

PERIOD_END = (BASE_TIME + timedelta(days=2)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
async def gated(infra: SessionInfrastructure, own_broker: str) -> AsyncIterator[RunningPayouts]:
    async with RunningPayouts(infra.new_database(), own_broker, "gated-",
                              AFFLUX_PAYOUTS_TAX_GATE="true", AFFLUX_PAYOUTS_HOLD_INTERVAL="0.2") as service:
        yield service


def profile(partner: str, *missing: str) -> Envelope[PartnerPayoutProfileSet]:
    """The partners service's profile event: sealed details, ``missing`` in clear."""
    return Envelope.wrap(PartnerPayoutProfileSet(
        partner_id=partner, country="DE", tax_form=TaxForm.W8BEN_E if "tax_form" not in missing else None,
        payment_method=PaymentMethodKind.SEPA if "payment_method" not in missing else None,
        complete=not missing, missing=missing, sealed="gAAAAAB-opaque", set_at=datetime.now(UTC)),
        producer="test")


async def shown(payouts: RunningPayouts, path: str, **params: str) -> dict[str, Any]:
    response = await payouts.fetch(path, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def status_of(payouts: RunningPayouts, statement_id: str) -> str:
    status: str = (await shown(payouts, f"/v1/statements/{statement_id}"))["status"]
    return status


async def held_then_released(gated: RunningPayouts, own_log: Publisher) -> str:
    """A partner's statement held for an incomplete profile, refused payment, released once
    the profile is complete and paid once; its partner_id."""
    partner: str = new_id("partner")
    await own_log.publish(partner_created(partner))
    await own_log.publish(profile(partner, "tax_form"))
    await own_log.publish(attributed(partner, "40.00"))
    await eventually(lambda: _accrued(gated, partner) == "40.00", timeout=30)
    await eventually(lambda: profile_folded(gated, partner), timeout=30)

    closed = await gated.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
    assert closed.status_code == 200, closed.text
    statement_id = closed.json()["statements"][0]["statement_id"]
    held = await shown(gated, f"/v1/statements/{statement_id}")
    assert held["status"] == "on_hold"  # the close answers once its records are folded
    assert held["hold_reason"] == "the partner's tax and payment profile is incomplete: missing tax_form"
    balance = await shown(gated, f"/v1/partners/{partner}/balance")
    assert balance["balances"]["USD"] == buckets(payable="40.00")  # owed, held
    refused = await gated.post(f"/v1/statements/{statement_id}/paid", {"reference": "too-early"})
    assert refused.status_code == 409 and "on hold" in refused.json()["error"]["message"]

    await own_log.publish(profile(partner))
    for _ in range(150):
        if await status_of(gated, statement_id) == "payable":
            break
        await asyncio.sleep(0.2)
    assert (await shown(gated, f"/v1/statements/{statement_id}"))["hold_reason"] is None
    paid = await gated.post(f"/v1/statements/{statement_id}/paid", {"reference": "wire-1"})
    assert paid.status_code == 200, paid.text
    again = await gated.post(f"/v1/statements/{statement_id}/paid", {"reference": "wire-2"})
    assert again.status_code == 409
    await eventually(lambda: gated.balances(partner)["USD"] == buckets(paid="40.00"), timeout=30)
    return partner


async def test_an_incomplete_profile_holds_the_statement_until_it_is_complete_and_it_pays_once(
        gated: RunningPayouts, own_log: Publisher) -> None:
    await held_then_released(gated, own_log)


async def test_a_partner_with_no_profile_is_held_and_a_complete_one_is_not(
        gated: RunningPayouts, own_log: Publisher) -> None:
    without, complete = new_id("partner"), new_id("partner")
    for partner in (without, complete):
        await own_log.publish(partner_created(partner))
        await own_log.publish(attributed(partner, "5.00"))
    await own_log.publish(profile(complete))
    await eventually(lambda: profile_folded(gated, complete), timeout=30)
    for partner in (without, complete):
        await eventually(lambda: _accrued(gated, partner) == "5.00", timeout=30)  # noqa: B023
        closed = await gated.post("/v1/statements/close", {"period_end": PERIOD_END, "partner_id": partner})
        assert closed.status_code == 200, closed.text
    [held] = (await shown(gated, "/v1/statements", partner_id=without))["statements"]
    assert (held["status"], held["hold_reason"]) == \
        ("on_hold", "the partner has no tax and payment profile yet")
    [free] = (await shown(gated, "/v1/statements", partner_id=complete))["statements"]
    assert (free["status"], free["hold_reason"]) == ("payable", None)


async def test_a_replay_re_derives_the_holds_and_releases(gated: RunningPayouts,
                                                         own_log: Publisher) -> None:
    await held_then_released(gated, own_log)
    settings = PayoutsSettings(DATABASE_URL=gated.database_url, KAFKA_BOOTSTRAP_SERVERS=gated.kafka_bootstrap,
                               port=0)
    found = await verify(replaying(settings), "payouts", service_folds(settings, build))
    assert found.mismatched == 0, [(t.table, t.problem, t.rows[:3]) for t in found.tables if not t.equal]
    assert {"statements", "payout_profiles"} <= {t.table for t in found.tables}


def _accrued(payouts: RunningPayouts, partner: str) -> str | None:
    found: str | None = payouts.balances(partner).get("USD", {}).get("accrued")
    return found
