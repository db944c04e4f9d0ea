"""Unique clicks: the first click of a visitor on a link within the unique-click period.

A visitor is known by its ``afx_v`` cookie (the one it sent, or the one its first click
sets) and by its IP address and user agent: a click is unique only if neither was seen on
the link within the period (cookie-less clients are told apart by IP and user agent).

The memory is this process's (bounded, oldest forgotten first): behind a load balancer,
route a link's traffic to one instance (or accept that a visitor who lands on two
instances is counted unique on each).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

MAX_REMEMBERED = 1_000_000


class UniqueClicks:
    """Remembers when each (visitor, link) was last counted unique."""

    def __init__(self, period_seconds: float, max_remembered: int = MAX_REMEMBERED) -> None:
        self.period = period_seconds
        self.max_remembered = max_remembered
        self._first_seen: OrderedDict[bytes, float] = OrderedDict()

    def is_unique(self, visitor: tuple[str, ...], offer_id: str, partner_id: str, now: float) -> bool:
        """True if none of the ``visitor``'s keys had a unique click on the link within the
        period before ``now`` (seconds on any monotonic clock); every key is remembered."""
        keys = [hashlib.blake2b(f"{key}\x1f{offer_id}\x1f{partner_id}".encode(), digest_size=16).digest()
                for key in visitor]
        unique = True
        for key in keys:
            seen = self._first_seen.get(key)
            if seen is not None and now - seen < self.period:
                unique = False
            else:
                self._first_seen[key] = now
                self._first_seen.move_to_end(key)
        while len(self._first_seen) > self.max_remembered:
            self._first_seen.popitem(last=False)
        return unique
