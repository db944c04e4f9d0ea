"""How long a consumer lets the broker hold an empty fetch: short on a conversion's way to
the balance (a hop's latency), longer elsewhere (an idle consumer's cost)."""

from __future__ import annotations

from afflux_contracts import ATTRIBUTION, NOTIFICATIONS, PARTNERS, PAYOUTS, POSTBACKS, TRACKING
from afflux_plumbing.consume import FETCH_WAIT_MS, QUICK_FETCH_WAIT_MS, fetch_wait_ms


def test_consumers_on_the_way_from_postback_to_balance_fetch_with_the_short_wait() -> None:
    assert fetch_wait_ms([TRACKING.name]) == fetch_wait_ms([ATTRIBUTION.name]) == QUICK_FETCH_WAIT_MS
    assert fetch_wait_ms([PARTNERS.name, TRACKING.name]) == QUICK_FETCH_WAIT_MS


def test_consumers_of_the_other_topics_ask_less_often() -> None:
    for topic in (PARTNERS, PAYOUTS, POSTBACKS, NOTIFICATIONS):
        assert fetch_wait_ms([topic.name]) == FETCH_WAIT_MS > QUICK_FETCH_WAIT_MS
