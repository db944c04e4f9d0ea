"""A partner's balance per currency: the fold of its ledger entries' buckets.

Money is summed as ``Decimal`` (never float) and shown in the currency's minor
units ("9.60" USD, "1200" JPY, "0.000" KWD), as strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from afflux_contracts import round_money
from afflux_payouts.domain.ledger import Bucket, LedgerEntry

ZERO = Decimal(0)


def format_money(amount: Decimal, currency: str) -> str:
    """The JSON form of an amount: a plain decimal string in the currency's minor units."""
    return format(round_money(amount, currency), "f")


@dataclass(frozen=True)
class Balance:
    """What a partner has in one currency, by bucket (the buckets do not overlap)."""

    currency: str
    accrued: Decimal = ZERO
    pending: Decimal = ZERO
    payable: Decimal = ZERO
    paid: Decimal = ZERO

    def add(self, bucket: Bucket, amount: Decimal) -> Balance:
        """This balance with ``amount`` more in ``bucket``."""
        field = bucket.value
        return replace(self, **{field: getattr(self, field) + amount})

    def formatted(self) -> dict[str, str]:
        return {
            bucket.value: format_money(getattr(self, bucket.value), self.currency)
            for bucket in (Bucket.ACCRUED, Bucket.PENDING, Bucket.PAYABLE, Bucket.PAID)
        }


BucketTotal = tuple[str, Bucket, Decimal]
"""(currency, bucket, sum of the amounts of the entries in that bucket)."""


def balances_from_totals(totals: Iterable[BucketTotal]) -> dict[str, Balance]:
    """Fold per-bucket totals (as the store sums them in SQL) into one balance per currency.
    Void commissions count in no bucket, but their currency is shown (at zero when nothing
    else is left: a reversed sale leaves a zero balance, not none)."""
    balances: dict[str, Balance] = {}
    for currency, bucket, amount in totals:
        balance = balances.get(currency, Balance(currency))
        balances[currency] = balance if bucket is Bucket.VOID else balance.add(bucket, amount)
    return dict(sorted(balances.items()))


def fold_balances(entries: Iterable[LedgerEntry]) -> dict[str, Balance]:
    """A partner's balances from its commissions alone (no statements): the pure fold
    the properties are checked on."""
    return balances_from_totals((e.currency, e.bucket, e.amount) for e in entries)


@dataclass(frozen=True)
class Sums:
    """What the store sums for one partner in one currency (``statements_sql.select_balance``)."""

    currency: str
    pending: Decimal
    earned: Decimal
    """Approved commissions and adjustments."""
    claimed: Decimal
    """What payable and paid statements hold."""
    paid: Decimal


def balance_from_sums(sums: Sums) -> Balance:
    """Buckets from sums: what statements claimed is payable until paid; the rest of what
    was earned is accrued (negative after a claw back of a paid commission)."""
    return Balance(sums.currency, accrued=sums.earned - sums.claimed, pending=sums.pending,
                   payable=sums.claimed - sums.paid, paid=sums.paid)


def formatted_balances(balances: Mapping[str, Balance]) -> dict[str, dict[str, str]]:
    return {currency: balance.formatted() for currency, balance in balances.items()}
