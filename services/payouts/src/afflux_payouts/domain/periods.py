"""Billing periods: when a partner's billing frequency ends a period (UTC).

A period end is the boundary instant (midnight UTC) that starts the next period;
a statement gathers what happened *at or before* it. The boundaries:

- ``weekly``: every Monday 00:00 (a week runs Monday to Sunday);
- ``biweekly``: every second Monday, counted from Monday 1970-01-05;
- ``bimonthly``: the 16th and the 1st of each month (the 1st to the 15th, the 16th to the month end);
- ``monthly``: the 1st of each month;
- ``two_months``: the 1st of January, March, May, July, September and November;
- ``quarterly``: the 1st of January, April, July and October;
- ``manual``: never (only an admin closes it, naming the partner).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from afflux_contracts import BillingFrequency

_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_MONTH_STEP = {BillingFrequency.MONTHLY: 1, BillingFrequency.TWO_MONTHS: 2, BillingFrequency.QUARTERLY: 3}


def last_period_end(frequency: BillingFrequency, now: datetime) -> datetime | None:
    """The latest period end at or before ``now`` (None for ``manual``)."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency is BillingFrequency.MANUAL:
        return None
    if frequency is BillingFrequency.WEEKLY:
        return midnight - timedelta(days=midnight.weekday())
    if frequency is BillingFrequency.BIWEEKLY:
        weeks = (midnight - _EPOCH_MONDAY).days // 7
        return _EPOCH_MONDAY + timedelta(weeks=weeks - weeks % 2)
    if frequency is BillingFrequency.BIMONTHLY:
        return midnight.replace(day=16 if now.day >= 16 else 1)
    step = _MONTH_STEP[frequency]
    month_index = now.year * 12 + now.month - 1
    month_index -= month_index % step
    return datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=UTC)
