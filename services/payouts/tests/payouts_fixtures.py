"""Builders of attribution decisions and a restartable payouts service, for the tests."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from aiokafka.structs import ConsumerRecord

from afflux_contracts import (
    ATTRIBUTION,
    Billing,
    BillingConversion,
    BillingFrequency,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    Envelope,
    Money,
    PartnerCreated,
    RejectionReason,
    StatementIssued,
    StatusChange,
)
from afflux_infra.testing import RunningService, read_topic
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.statements import Statements
from afflux_payouts.entrypoints.main import build
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.auth import service_token_entry
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Record, RetryLater, Unprocessable, record_of

ADMIN_TOKEN = "payouts-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GATEWAY_TOKEN = "payouts-test-gateway-token"
"""A service credential scoped to reading balances, as the gateway holds one."""
GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def attributed(
    partner_id: str,
    amount: str,
    currency: str = "USD",
    *,
    conversion_id: str | None = None,
    status: ConversionStatus = ConversionStatus.APPROVED,
    converted_at: datetime = BASE_TIME,
    offer_id: str = "offer-1",
) -> Envelope[ConversionAttributed]:
    """A ConversionAttributed as attribution would publish it, paying ``amount``."""
    decision = ConversionAttributed(
        conversion_id=conversion_id or new_id("conv"),
        transaction_id=new_id("tx"),
        partner_id=partner_id,
        offer_id=offer_id,
        event="sale",
        payout=Money(amount=Decimal(amount), currency=currency),
        status=status,
        clicked_at=converted_at - timedelta(minutes=5),
        converted_at=converted_at,
    )
    return Envelope.wrap(decision, producer="test")


def rejected(
    partner_id: str, reason: RejectionReason = RejectionReason.DUPLICATE
) -> Envelope[ConversionRejected]:
    decision = ConversionRejected(
        conversion_id=new_id("conv"),
        reason=reason,
        message="order already paid",
        partner_id=partner_id,
        offer_id="offer-1",
        converted_at=BASE_TIME,
    )
    return Envelope.wrap(decision, producer="test")


def republished(envelope: Envelope[Any]) -> Envelope[Any]:
    """The same decision under a new event_id, as a re-publishing producer would send it."""
    return Envelope.wrap(envelope.payload, producer="test")


class RunningPayouts(RunningService[PayoutsSettings]):
    """The payouts service as its tests run it: the test admin token, the gateway's balance
    credential admitted, no scheduled close (tests close by hand)."""

    headers = ADMIN

    def __init__(self, database_url: str, kafka_bootstrap: str, group_prefix: str = "",
                 **settings: Any) -> None:
        """``settings``: more of the service's settings by alias (``AFFLUX_PAYOUTS_TAX_GATE``)."""
        super().__init__(
            PayoutsSettings, build, database_url, kafka_bootstrap, group_prefix,
            AFFLUX_ADMIN_TOKEN=ADMIN_TOKEN, AFFLUX_PAYOUTS_CLOSE_INTERVAL=0,
            AFFLUX_SERVICE_TOKENS=service_token_entry("gateway", GATEWAY_TOKEN, ["payouts.balance.read"]),
            **settings,
        )

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """An admin POST from the test's event loop (closing a period may take a while)."""
        async with self.client(timeout=30) as client:
            return await client.post(path, json=body)

    def balances(self, partner_id: str, **params: str) -> dict[str, dict[str, str]]:
        """The partner's buckets per currency (blocking: from a thread)."""
        balance = self.get_json(f"/v1/partners/{partner_id}/balance", **params)
        body: dict[str, dict[str, str]] = balance["balances"]
        return body


def usd(accrued: str = "0.00", pending: str = "0.00") -> dict[str, str]:
    return {"accrued": accrued, "pending": pending, "payable": "0.00", "paid": "0.00"}


async def dead_letters(bootstrap: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the attribution DLQ so far."""
    return await read_topic(bootstrap, ATTRIBUTION.dlq, ATTRIBUTION.partitions)


def status_changed(
    decision: Envelope[ConversionAttributed], status: StatusChange, amount: str | None = None,
    previous: ConversionStatus = ConversionStatus.APPROVED,
) -> Envelope[ConversionStatusChanged]:
    """The review of ``decision`` as attribution would publish it: its payout afterwards is
    ``amount`` (an adjustment's new one), else the decision's."""
    made = decision.payload
    change = ConversionStatusChanged(
        conversion_id=made.conversion_id, partner_id=made.partner_id, offer_id=made.offer_id,
        status=status, previous_status=previous,
        payout=Money(amount=Decimal(amount), currency=made.payout.currency) if amount else made.payout,
        reason="review", changed_at=made.converted_at + timedelta(days=3),
    )
    return Envelope.wrap(change, producer="test")


def partner_created(partner_id: str, *, minimum: str = "0", frequency: str = "monthly",
                    currency: str = "USD", conversion: str = "none") -> Envelope[PartnerCreated]:
    """The partner's billing terms, as the partners service publishes them (``conversion``:
    paid in ``currency`` at recorded rates, ``earned_day`` or ``period_end``)."""
    billing = Billing(currency=currency, frequency=BillingFrequency(frequency),
                      minimum_payout=Decimal(minimum), conversion=BillingConversion(conversion))
    return Envelope.wrap(PartnerCreated(partner_id=partner_id, name=f"Partner {partner_id}",
                                        email=f"{partner_id}@example.com", billing=billing), producer="test")


def buckets(accrued: str = "0.00", pending: str = "0.00", payable: str = "0.00", paid: str = "0.00"
            ) -> dict[str, str]:
    return {"accrued": accrued, "pending": pending, "payable": payable, "paid": paid}


def run_of(topic: str, envelopes: Sequence[Envelope[Any]], start: int = 0) -> list[Record[Any]]:
    """``envelopes`` as consecutive records of partition 0 of ``topic``, from offset ``start``."""
    return [record_of(envelope, Position(topic, 0, offset))
            for offset, envelope in enumerate(envelopes, start)]


def one_by_one(store: PayoutsStore, records: Sequence[Record[Any]]) -> list[str]:
    """Each record as a run of one, as the consumer applies a run that failed: what the rules
    refuse (or what still waits at the end of the log) is dead-lettered, i.e. only its
    position is recorded. Returns the reasons of the dead letters."""
    dead = []
    for record in records:
        try:
            store.apply_run([record])
        except (Unprocessable, RetryLater) as error:
            store.record_position(record.position)
            dead.append(f"{record.position}: {error}")
    return dead


def closed(store: PayoutsStore, partner_id: str, period_end: datetime) -> StatementIssued:
    """The statement the close rules issue for ``partner_id`` on ``store`` as folded so far
    (with its log position), as payouts' close decides it."""
    [issued] = Statements(store).close(period_end, partner_id)
    return issued


def profile_folded(payouts: RunningPayouts, partner_id: str) -> bool:
    """The service folded the partner's tax and payment profile from the partners log (a
    close, a payment run decide from what was folded; blocking: from a thread)."""
    with psycopg.connect(payouts.database_url) as conn:
        row = conn.execute("SELECT 1 FROM payouts.payout_profiles WHERE partner_id = %s",
                           (partner_id,)).fetchone()
    return row is not None



def terms_folded(payouts: RunningPayouts, partner_id: str) -> bool:
    """The service folded the partner's billing terms from the partners log (a close converts
    by them; blocking: from a thread)."""
    with psycopg.connect(payouts.database_url) as conn:
        row = conn.execute("SELECT 1 FROM payouts.partner_terms WHERE partner_id = %s",
                           (partner_id,)).fetchone()
    return row is not None
