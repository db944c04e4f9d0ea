"""What the partner sees of each conversion (and of each priced click or thousand
impressions), and how every decision about it moves the report's figures. Pure.

The rules, in the order of the log:
- an attributed conversion (approved or pending) is shown with its payout and counted
  in the hour it converted, its click's subs and its click's visitor (country, device):
  one conversion, its payout and revenue;
- a rejected one is shown with its reason and counts nothing;
- an attributed conversion after a rejection of the same ``conversion_id`` (staff
  approved it on appeal) is shown as attributed now, and counted then;
- the same decision published again (another event_id) changes nothing;
- a review moves it: rejected or reversed, its conversion and money leave the figures;
  adjusted, its payout changes by the difference (and a pending one is approved);
  approved, it is approved;
- priced traffic (a CPC click, a CPM thousand) is shown under payouts' id for it and adds
  its payout and revenue, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from afflux_contracts import StatusChange

NO_SUBS = ("", "", "", "", "")
NO_VISITOR = ("", "")
"""A click's visitor as the reports group it: (country, device); ``""`` is unknown."""
COUNTED = frozenset({"approved", "attributed", "pending"})
"""Statuses whose conversion is in the figures (``rejected`` and ``reversed`` are not)."""


class Kind(StrEnum):
    CONVERSION = "conversion"
    CPC = "cpc"
    CPM = "cpm"


def hour_of(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Conversion:
    """One row of the partner's conversions: a conversion, or priced traffic."""

    conversion_id: str
    partner_id: str | None
    offer_id: str | None
    transaction_id: str | None
    event: str | None
    kind: Kind
    status: str
    reason: str | None
    payout: Decimal | None
    revenue: Decimal | None
    currency: str | None
    converted_at: datetime
    subs: tuple[str, ...] = NO_SUBS
    visitor: tuple[str, str] = NO_VISITOR

    @property
    def hour(self) -> datetime:
        return hour_of(self.converted_at)


@dataclass(frozen=True)
class Move:
    """What one change adds to the figures of one (partner, offer, hour, subs, visitor)."""

    partner_id: str
    offer_id: str
    hour: datetime
    subs: tuple[str, ...]
    conversions: int
    payout: Decimal
    revenue: Decimal
    visitor: tuple[str, str] = NO_VISITOR


Step = tuple[Conversion | None, Move | None]
"""A rule's answer: the conversion as it is now (None: unchanged), and the figures' move."""


def _counted(row: Conversion, sign: int, conversions: int) -> Move | None:
    if row.partner_id is None or row.offer_id is None:
        return None
    return Move(
        row.partner_id,
        row.offer_id,
        row.hour,
        row.subs,
        sign * conversions,
        sign * (row.payout or Decimal(0)),
        sign * (row.revenue or Decimal(0)),
        row.visitor,
    )


def attributed(current: Conversion | None, decision: Conversion) -> Step:
    """A new conversion, or one credited on appeal after its rejection; else a re-publish."""
    if current is not None and current.status != "rejected":
        return None, None
    return decision, _counted(decision, 1, 1)


def rejected(current: Conversion | None, rejection: Conversion) -> Step:
    """Shown with its reason; a rejection of a conversion already shown changes nothing."""
    return (rejection, None) if current is None else (None, None)


def priced(current: Conversion | None, traffic: Conversion) -> Step:
    """Priced traffic, once however often its record is published."""
    return (traffic, _counted(traffic, 1, 0)) if current is None else (None, None)


def reviewed(current: Conversion, change: StatusChange, payout: Decimal, reason: str | None) -> Step:
    """An advertiser's review of a shown conversion (nothing moves one no longer counted)."""
    if current.status not in COUNTED:
        return None, None
    if change in (StatusChange.REJECTED, StatusChange.REVERSED):
        return replace(current, status=change.value, reason=reason, payout=payout), _counted(current, -1, 1)
    if change is StatusChange.ADJUSTED:
        moved = _counted(
            replace(current, payout=payout - (current.payout or Decimal(0)), revenue=Decimal(0)), 1, 0
        )
        status = "approved" if current.status in ("attributed", "pending") else current.status
        return replace(current, status=status, reason=reason, payout=payout), moved
    return replace(current, status=change.value, reason=reason, payout=payout), None
