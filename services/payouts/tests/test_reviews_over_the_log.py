"""Reviews (ConversionStatusChanged) on ``afflux.attribution.v1`` moving commissions in the
running payouts service (real broker and PostgreSQL), and, on the bare store, what a
review that cannot be applied yet (or ever) does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from payouts_fixtures import RunningPayouts, attributed, new_id, rejected, run_of, status_changed, usd

from afflux_contracts import ATTRIBUTION, ConversionStatus, Envelope, RejectionReason, StatusChange
from afflux_contracts.attribution import Appeal
from afflux_infra.testing import eventually
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.domain.balance import Balance
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import RetryLater, Unprocessable


async def test_an_approved_sale_reversed_leaves_a_zero_balance_and_a_void_commission(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    sale = attributed(partner, "9.60")
    await attribution_log.publish(sale)
    await eventually(lambda: payouts.balances(partner) == {"USD": usd("9.60")})

    await attribution_log.publish(status_changed(sale, StatusChange.REVERSED))
    await attribution_log.publish(attributed(partner, "0.01"))  # sentinel: the reversal was read before it

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("0.01")})
    listed = (await payouts.fetch(f"/v1/partners/{partner}/commissions")).json()["commissions"]
    assert {c["conversion_id"]: (c["amount"], c["status"]) for c in listed}[sale.payload.conversion_id] == \
        ("9.60", "void")


async def test_an_adjusted_sale_accrues_its_new_amount_once_however_often_the_review_is_delivered(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    sale = attributed(partner, "12.00")
    adjusted = status_changed(sale, StatusChange.ADJUSTED, "7.35")
    await attribution_log.publish(sale)
    await attribution_log.publish(adjusted)
    await attribution_log.publish(adjusted)
    await attribution_log.publish(attributed(partner, "0.01"))

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("7.36")})
    entry = ledger.reads.entry(sale.payload.conversion_id)
    assert entry is not None
    assert (entry.amount, entry.decided_amount, entry.event_id) == \
        (Decimal("7.35"), Decimal("12.00"), sale.event_id)


async def test_a_held_sale_approved_moves_from_pending_to_accrued(
    payouts: RunningPayouts, attribution_log: Publisher
) -> None:
    partner = new_id("partner")
    held = attributed(partner, "3.00", status=ConversionStatus.PENDING)
    await attribution_log.publish(held)
    await eventually(lambda: payouts.balances(partner) == {"USD": usd(pending="3.00")})

    await attribution_log.publish(status_changed(held, StatusChange.APPROVED,
                                                 previous=ConversionStatus.PENDING))

    await eventually(lambda: payouts.balances(partner) == {"USD": usd(accrued="3.00")})


async def test_a_conversion_rejected_by_a_rule_is_credited_on_appeal_from_the_moment_of_the_appeal(
    payouts: RunningPayouts, attribution_log: Publisher, ledger: PayoutsStore
) -> None:
    partner = new_id("partner")
    rejection = rejected(partner, RejectionReason.FRAUD_TOO_FAST)
    await attribution_log.publish(rejection)
    await attribution_log.publish(attributed(partner, "0.01"))  # sentinel
    await eventually(lambda: ledger.reads.rejections(partner) != [])

    decision = attributed(partner, "4.20", conversion_id=rejection.payload.conversion_id)
    appeal = Envelope.wrap(decision.payload.model_copy(update={"appeal": Appeal(
        rejected_reason=RejectionReason.FRAUD_TOO_FAST, by="staff:ann", reason="a regular customer")}),
        producer="test")
    await attribution_log.publish(appeal)

    await eventually(lambda: payouts.balances(partner) == {"USD": usd("4.21")})
    assert ledger.reads.rejections(partner) == []  # credited now: no longer a conversion that earns nothing
    before_appeal = (appeal.occurred_at - timedelta(seconds=1)).isoformat()
    assert (await asyncio.to_thread(payouts.balances, partner, as_of=before_appeal)) == {"USD": usd("0.01")}
    await attribution_log.publish(status_changed(appeal, StatusChange.REVERSED))  # reviewed like any other
    await eventually(lambda: payouts.balances(partner) == {"USD": usd("0.01")})


@pytest.fixture
def store(database_url: str) -> Iterator[PayoutsStore]:
    app = open_store(PayoutsStore, database_url, "payouts")
    yield app
    app.close()


def test_a_review_of_a_commission_not_recorded_yet_is_parked(store: PayoutsStore) -> None:
    sale = attributed("p-1", "5.00")
    with pytest.raises(RetryLater, match=sale.payload.conversion_id):
        store.apply_run(run_of(ATTRIBUTION.name, [status_changed(sale, StatusChange.REVERSED)]))

    store.apply_run(run_of(ATTRIBUTION.name, [sale, status_changed(sale, StatusChange.REVERSED)]))

    assert store.reads.balances("p-1") == {"USD": Balance("USD")}
    entry = store.reads.entry(sale.payload.conversion_id)
    assert entry is not None and entry.bucket.value == "void"


def test_a_review_of_a_conversion_rejected_at_attribution_is_unprocessable(store: PayoutsStore) -> None:
    rejection = rejected("p-1")
    store.apply_run(run_of(ATTRIBUTION.name, [rejection]))
    as_if_attributed = attributed("p-1", "5.00", conversion_id=rejection.payload.conversion_id)

    with pytest.raises(Unprocessable, match="rejected at attribution"):
        review = status_changed(as_if_attributed, StatusChange.APPROVED)
        store.apply_run(run_of(ATTRIBUTION.name, [review], 1))


def test_a_ledger_created_before_reviews_learns_the_void_bucket_at_start(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA payouts")
        connection.execute(
            "CREATE TABLE payouts.ledger_entries (conversion_id text PRIMARY KEY, partner_id text NOT NULL, "
            "offer_id text NOT NULL, amount numeric NOT NULL, currency text NOT NULL, bucket text NOT NULL "
            "CHECK (bucket IN ('pending', 'accrued', 'payable', 'paid')), converted_at timestamptz NOT NULL, "
            "recorded_from text NOT NULL, event_id uuid NOT NULL)")
    app = open_store(PayoutsStore, database_url, "payouts")
    try:
        sale = attributed("p-1", "5.00")
        app.apply_run(run_of(ATTRIBUTION.name, [sale, status_changed(sale, StatusChange.REJECTED)]))
        assert app.reads.balances("p-1") == {"USD": Balance("USD")}
    finally:
        app.close()
