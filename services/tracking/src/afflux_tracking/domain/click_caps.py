"""Hard click caps, enforced at the edge: a click over its offer's (or the partner's)
cap for the period is refused (``over_cap``), recorded, and sent to the fallback URL.

Counting happens in each tracking instance's memory, so the hot path never waits on a
database or the broker. The bound, said plainly: with ``instances`` set to the number
of tracking instances behind the load balancer, each admits at most
``ceil(limit / instances)`` valid clicks per cap and period, so all of them together
admit at most ``limit + instances - 1`` (exactly ``limit`` with one instance). Counts
start at zero when an instance starts, so an instance restarted mid-period may admit
its share again. Soft click caps are only alerts: they never refuse a click.
Periods are UTC calendar periods (day, ISO week, month) or lifetime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class ClickCap:
    """A hard limit of valid clicks per ``period``, offer-wide or per partner."""

    period: str
    limit: Decimal
    per_partner: bool = False


def bucket(period: str, at: datetime) -> str:
    """The UTC day, ISO week, month or lifetime bucket ``at`` falls in."""
    if period == "day":
        return at.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return at.strftime("%Y-%m")
    return "lifetime"


@dataclass
class ClickCounter:
    """Valid clicks admitted by this instance, per offer (and partner), cap period and bucket."""

    instances: int = 1
    counts: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def share(self, cap: ClickCap) -> int:
        """How many clicks this instance may admit under ``cap`` in one period."""
        return math.ceil(cap.limit / self.instances)

    def admit(self, offer_id: str, partner_id: str, caps: Sequence[ClickCap], at: datetime) -> bool:
        """Count one valid click unless a cap is reached (then count nothing). Called on
        the event loop only, so check-and-count cannot interleave."""
        keys = [(offer_id, partner_id if cap.per_partner else "", cap.period, bucket(cap.period, at))
                for cap in caps]
        if any(self.counts.get(key, 0) >= self.share(cap) for key, cap in zip(keys, caps, strict=True)):
            return False
        for key in keys:
            self.counts[key] = self.counts.get(key, 0) + 1
        return True
