"""What payouts answers about a partner's money, as the admin API and the replay read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from afflux_payouts.domain.balance import Balance
from afflux_payouts.domain.ledger import LedgerEntry, Rejection


@dataclass(frozen=True)
class PageKey:
    """Where a page of commissions ends: the listing's sort key of its last entry."""

    converted_at: datetime
    conversion_id: str


@dataclass(frozen=True)
class CommissionPage:
    entries: list[LedgerEntry]
    next: PageKey | None


class PayoutsReads(Protocol):
    def balances(self, partner_id: str, as_of: datetime | None = None,
                 as_known_on: datetime | None = None) -> dict[str, Balance]:
        """The partner's balance per currency from the facts that happened by ``as_of`` and
        were recorded by ``as_known_on`` (both: everything)."""
        ...

    def claims(self, partner_id: str) -> dict[str, tuple[Decimal, Decimal]]:
        """conversion_id -> (claimed by payable or paid statements, of which paid)."""
        ...

    def commissions(self, partner_id: str, limit: int, after: PageKey | None = None) -> CommissionPage:
        """One page of the partner's commissions in (converted_at, conversion_id) order."""
        ...

    def rejections(self, partner_id: str) -> list[Rejection]:
        """The partner's conversions that earned nothing (and were not credited on appeal since)."""
        ...

    def entry(self, conversion_id: str) -> LedgerEntry | None: ...

    def statements(self, partner_id: str | None, status: str | None, limit: int) -> list[Mapping[str, Any]]:
        """Statements by period end (then partner and currency), without their lines."""
        ...

    def statement(self, statement_id: str) -> Mapping[str, Any] | None: ...

    def statement_lines(self, statement_id: str) -> list[Mapping[str, Any]]: ...
