"""The commission ledger's rule: which attribution decision becomes which ledger entry.

Payouts never re-price: the amount is the payout attribution decided at
conversion time. A commission is money that will be paid, so it is held in the
currency's minor units with the one shared rounding rule (a no-op for amounts
attribution already rounded). Each entry sits in exactly one bucket; balances
are the sums of the buckets (see ``balance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from afflux_contracts import ConversionAttributed, ConversionRejected, ConversionStatus, round_money


class Bucket(StrEnum):
    """Where a commission stands on its way to the partner's bank account.

    The buckets are disjoint: *pending* waits for review, *accrued* is earned
    and not yet on a statement, *payable* is on an issued statement, *paid* has
    been paid. Statements (a later step) move entries from accrued to payable
    to paid; the balance is always read from the entries' buckets.
    """

    PENDING = "pending"
    ACCRUED = "accrued"
    PAYABLE = "payable"
    PAID = "paid"


class NotCommissionable(ValueError):
    """A ConversionAttributed that cannot be a commission (it contradicts itself).

    It is dead-lettered with this reason rather than guessed at: a ledger entry
    that was wrongly created or wrongly skipped would change a payout silently.
    """


# The status a ConversionAttributed carries -> the bucket its commission starts in.
# "attributed" is a decision that needs no review, so it earns like "approved".
_OPENING_BUCKET = {
    ConversionStatus.APPROVED: Bucket.ACCRUED,
    ConversionStatus.ATTRIBUTED: Bucket.ACCRUED,
    ConversionStatus.PENDING: Bucket.PENDING,
}


@dataclass(frozen=True)
class LedgerEntry:
    """One conversion's commission: the unit the ledger counts at most once.

    ``event_id`` is the decision it came from. ``recorded_from`` is where on the
    log (``topic#partition@offset``) the store read that decision: a fact of
    delivery, not of the decision, so the rule leaves it unset and the store
    fills it in when it records the entry.
    """

    conversion_id: str
    partner_id: str
    offer_id: str
    amount: Decimal
    currency: str
    bucket: Bucket
    converted_at: datetime
    event_id: UUID
    recorded_from: str | None = None

    def same_commission(self, other: LedgerEntry) -> bool:
        """True if ``other`` is the same decision, maybe re-published under another event_id."""
        return (
            self.conversion_id, self.partner_id, self.offer_id, self.amount, self.currency,
            self.bucket, self.converted_at,
        ) == (
            other.conversion_id, other.partner_id, other.offer_id, other.amount, other.currency,
            other.bucket, other.converted_at,
        )


@dataclass(frozen=True)
class Rejection:
    """A conversion that earns nothing, kept so that its absence from the ledger is explained."""

    conversion_id: str
    partner_id: str | None
    offer_id: str | None
    reason: str
    message: str
    converted_at: datetime
    event_id: UUID


def commission_for(decision: ConversionAttributed, event_id: UUID) -> LedgerEntry:
    """The ledger entry a ConversionAttributed earns; ``NotCommissionable`` if it cannot earn."""
    bucket = _OPENING_BUCKET.get(decision.status)
    if bucket is None:
        raise NotCommissionable(
            f"conversion {decision.conversion_id} is attributed with status "
            f"{decision.status.value!r}, which earns no commission"
        )
    if decision.payout.amount < 0:
        raise NotCommissionable(
            f"conversion {decision.conversion_id} is attributed with a negative payout "
            f"{decision.payout.amount} {decision.payout.currency}"
        )
    return LedgerEntry(
        conversion_id=decision.conversion_id,
        partner_id=decision.partner_id,
        offer_id=decision.offer_id,
        amount=round_money(decision.payout.amount, decision.payout.currency),
        currency=decision.payout.currency,
        bucket=bucket,
        converted_at=decision.converted_at,
        event_id=event_id,
    )


def rejection_for(decision: ConversionRejected, event_id: UUID) -> Rejection:
    """The record a ConversionRejected leaves: a reason, and no money."""
    return Rejection(
        conversion_id=decision.conversion_id,
        partner_id=decision.partner_id,
        offer_id=decision.offer_id,
        reason=decision.reason.value,
        message=decision.message,
        converted_at=decision.converted_at,
        event_id=event_id,
    )
