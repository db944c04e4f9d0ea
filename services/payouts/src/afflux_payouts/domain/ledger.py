"""The commission ledger's rule: which attribution decision becomes which ledger entry.

Payouts never re-price: the amount is the payout attribution decided at
conversion time. A commission is money that will be paid, so it is held in the
currency's minor units with the one shared rounding rule (a no-op for amounts
attribution already rounded). Each entry sits in exactly one bucket; balances
are the sums of the buckets (see ``balance.py``).

The advertiser's review (ConversionStatusChanged) then moves a commission
(``review``): approved → accrued; rejected or reversed → void (it counts
nowhere); adjusted → the new amount. Statements never rewrite a commission: they
*claim* amounts of it (``statements.py``), so a review after a statement simply
changes what the conversion earns, and the next statement pays the difference
(a reversal after payment is a negative line: clawed back).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from afflux_contracts import (
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    ImpressionsPriced,
    StatusChange,
    round_money,
)


class Bucket(StrEnum):
    """Where a commission stands on its way to the partner's bank account.

    The buckets are disjoint: *pending* waits for review, *accrued* is earned
    and not yet on a statement, *payable* is on an issued statement, *paid* has
    been paid. A commission's own bucket is pending, accrued or void; the amounts
    statements claimed of it are payable or paid (see ``statements.py``).
    """

    PENDING = "pending"
    ACCRUED = "accrued"
    PAYABLE = "payable"
    PAID = "paid"
    VOID = "void"
    """Rejected or reversed before it was settled: kept for the record, counted nowhere."""


class Refused(ValueError):
    """A record the ledger's rule can never apply (it would change a payout silently):
    the consumer dead-letters it with this reason."""


class NotCommissionable(Refused):
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
    delivery, not of the decision, which the fold (``ledger_fold.py``) passes on.
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


class ReviewMismatch(Refused):
    """A status change that names another partner, offer or currency than the commission."""


def review(entry: LedgerEntry, change: ConversionStatusChanged, event_id: UUID) -> LedgerEntry:
    """The commission ``entry`` after ``change``.

    Pure and total: it does not judge the transition (attribution did), it only makes
    the commission hold what the conversion now earns: the change's payout if approved
    or adjusted, nothing (void) if rejected or reversed."""
    if (change.partner_id, change.offer_id, change.payout.currency) != \
            (entry.partner_id, entry.offer_id, entry.currency):
        raise ReviewMismatch(
            f"status change {event_id} of conversion {entry.conversion_id} names {change.partner_id}, "
            f"{change.offer_id}, {change.payout.currency}; its commission is {entry.partner_id}, "
            f"{entry.offer_id}, {entry.currency}"
        )
    if change.status not in (StatusChange.APPROVED, StatusChange.ADJUSTED):
        return entry.moved(entry.amount, Bucket.VOID)
    payout = round_money(change.payout.amount, entry.currency)
    # Approved (also on appeal) accrues; an adjustment keeps the bucket it finds.
    keep = change.status is StatusChange.ADJUSTED and entry.bucket is not Bucket.VOID
    return entry.moved(payout, entry.bucket if keep else Bucket.ACCRUED)


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
    recorded_from: str | None = None
    """Where on the log the rejection was read (as ``LedgerEntry.recorded_from``)."""


def commission_for(decision: ConversionAttributed, event_id: UUID,
                   recorded_from: str | None = None) -> LedgerEntry:
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
        recorded_from=recorded_from,
    )


def commission_for_traffic(priced: ClickPriced | ImpressionsPriced, event_id: UUID,
                           recorded_from: str | None = None) -> LedgerEntry:
    """The ledger entry a priced click (CPC) or a priced thousand impressions (CPM) earns.

    Traffic is paid as attribution priced it, approved at once (there is nothing to
    review), and keyed so the same click or thousand is one commission however often its
    record is delivered: ``click:<transaction_id>``, ``cpm:<offer>:<partner>:<block>``.
    """
    if priced.payout.amount < 0:
        raise NotCommissionable(f"{traffic_ref(priced)} is priced with a negative payout "
                                f"{priced.payout.amount} {priced.payout.currency}")
    happened_at = priced.clicked_at if isinstance(priced, ClickPriced) else priced.last_impressed_at
    return LedgerEntry(
        conversion_id=traffic_ref(priced),
        partner_id=priced.partner_id,
        offer_id=priced.offer_id,
        amount=round_money(priced.payout.amount, priced.payout.currency),
        currency=priced.payout.currency,
        bucket=Bucket.ACCRUED,
        converted_at=happened_at,
        event_id=event_id,
        recorded_from=recorded_from,
    )


def traffic_ref(priced: ClickPriced | ImpressionsPriced) -> str:
    """The ledger key of a priced click or thousand impressions (never a conversion id's shape)."""
    if isinstance(priced, ClickPriced):
        return f"click:{priced.transaction_id}"
    return f"cpm:{priced.offer_id}:{priced.partner_id}:{priced.block}"


def rejection_for(decision: ConversionRejected, event_id: UUID,
                  recorded_from: str | None = None) -> Rejection:
    """The record a ConversionRejected leaves: a reason, and no money."""
    return Rejection(
        conversion_id=decision.conversion_id,
        partner_id=decision.partner_id,
        offer_id=decision.offer_id,
        reason=decision.reason.value,
        message=decision.message,
        converted_at=decision.converted_at,
        event_id=event_id,
        recorded_from=recorded_from,
    )
