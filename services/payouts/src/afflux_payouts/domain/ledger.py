"""The commission ledger's rule: which attribution decision becomes which ledger entry.

Payouts never re-price: the amount is the payout attribution decided at
conversion time. A commission is money that will be paid, so it is held in the
currency's minor units with the one shared rounding rule (a no-op for amounts
attribution already rounded). Each entry sits in exactly one bucket; balances
are the sums of the buckets (see ``balance.py``).

The advertiser's review (ConversionStatusChanged) then moves a commission
(``review``): approved → accrued; rejected or reversed → void (it counts
nowhere); adjusted → the new amount. A commission already settled (payable: on
an issued statement, or paid) is never rewritten, since a statement and a
payment are facts: the change becomes a *correction* in accrued instead, the
difference between what the conversion now earns and what its commission and
earlier corrections hold. A reversal after payment is thus a negative accrued
amount, clawed back from the next statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from afflux_contracts import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    StatusChange,
    round_money,
)


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
    VOID = "void"
    """Rejected or reversed before it was settled: kept for the record, counted nowhere."""


SETTLED = frozenset({Bucket.PAYABLE, Bucket.PAID})
"""Buckets a review never rewrites (it adds a correction instead)."""


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
    decided_amount: Decimal | None = None
    decided_bucket: Bucket | None = None
    """The amount and bucket attribution's decision opened the commission with, which a
    review may have changed since (``None``: unchanged, as ``amount`` and ``bucket``)."""

    @property
    def opened_amount(self) -> Decimal:
        return self.amount if self.decided_amount is None else self.decided_amount

    @property
    def opened_bucket(self) -> Bucket:
        return self.bucket if self.decided_bucket is None else self.decided_bucket

    def decision(self) -> tuple[object, ...]:
        return (self.conversion_id, self.partner_id, self.offer_id, self.opened_amount, self.currency,
                self.opened_bucket, self.converted_at)

    def moved(self, amount: Decimal, bucket: Bucket) -> LedgerEntry:
        """This commission holding ``amount`` in ``bucket``, remembering what it opened with."""
        return replace(self, amount=amount, bucket=bucket, decided_amount=self.opened_amount,
                       decided_bucket=self.opened_bucket)

    def same_commission(self, other: LedgerEntry) -> bool:
        """True if ``other`` is the same decision, maybe re-published under another event_id
        (also after a review moved this commission)."""
        return self.decision() == other.decision()


@dataclass(frozen=True)
class Correction:
    """A change to a settled commission: an amount in accrued (negative: a claw back),
    dated when the review happened. ``event_id`` is the review it came from."""

    conversion_id: str
    partner_id: str
    offer_id: str
    amount: Decimal
    currency: str
    happened_at: datetime
    event_id: UUID
    bucket: Bucket = Bucket.ACCRUED


@dataclass(frozen=True)
class Reviewed:
    """What a review leaves: the commission as it now stands, and a new correction if its
    commission was settled and what it earns changed."""

    entry: LedgerEntry
    correction: Correction | None


class ReviewMismatch(ValueError):
    """A status change that names another partner, offer or currency than the commission."""


def review(entry: LedgerEntry, corrections: Sequence[Correction], change: ConversionStatusChanged,
           event_id: UUID) -> Reviewed:
    """The commission ``entry`` (with its earlier ``corrections``) after ``change``.

    Pure and total: it does not judge the transition (attribution did), it only makes
    the ledger hold what the conversion now earns: the change's payout if approved or
    adjusted, nothing if rejected or reversed."""
    if (change.partner_id, change.offer_id, change.payout.currency) != \
            (entry.partner_id, entry.offer_id, entry.currency):
        raise ReviewMismatch(
            f"status change {event_id} of conversion {entry.conversion_id} names {change.partner_id}, "
            f"{change.offer_id}, {change.payout.currency}; its commission is {entry.partner_id}, "
            f"{entry.offer_id}, {entry.currency}"
        )
    earns = change.status in (StatusChange.APPROVED, StatusChange.ADJUSTED)
    payout = round_money(change.payout.amount, entry.currency)
    if entry.bucket not in SETTLED:
        if not earns:
            return Reviewed(entry.moved(entry.amount, Bucket.VOID), None)
        # Approved (also on appeal) accrues; an adjustment keeps the bucket it finds.
        keep = change.status is StatusChange.ADJUSTED and entry.bucket is not Bucket.VOID
        return Reviewed(entry.moved(payout, entry.bucket if keep else Bucket.ACCRUED), None)
    held = entry.amount + sum((c.amount for c in corrections), Decimal(0))
    difference = (payout if earns else Decimal(0)) - held
    if difference == 0:
        return Reviewed(entry, None)
    return Reviewed(entry, Correction(
        conversion_id=entry.conversion_id, partner_id=entry.partner_id, offer_id=entry.offer_id,
        amount=difference, currency=entry.currency, happened_at=change.changed_at, event_id=event_id,
    ))


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
