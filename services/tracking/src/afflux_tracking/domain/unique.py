"""Unique clicks at the edge: the first click of a visitor on a link within its offer's
``unique_click_hours``.

A visitor is its visitor id (``visitors.visitor_id``: its ``afx_v`` cookie, else its IP
address and user agent), the one attribution counts by.

This is the edge's mark, for reports; what is paid is attribution's decision, which
counts unique clicks exactly (``visitor_id`` on the log, across instances and
restarts). The memory here is this process's, bounded (oldest forgotten first), so the
mark is exact for one instance that has not restarted within the window, and over
counts otherwise: a visitor is marked unique at most once per instance it reaches, once
more after each restart of that instance, and again once ``max_remembered`` newer
(visitor, link) pairs have pushed it out. It never under counts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

MAX_REMEMBERED = 1_000_000


class UniqueClicks:
    """Remembers when each (visitor, link) was last counted unique."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self.max_remembered = max_remembered
        self._first_seen: OrderedDict[bytes, float] = OrderedDict()

    def is_unique(self, visitor_id: str, offer_id: str, partner_id: str, now: float, window: float) -> bool:
        """True if the visitor had no unique click on the link within ``window`` seconds
        before ``now`` (any monotonic clock); then this click is remembered as its first."""
        key = hashlib.blake2b(f"{visitor_id}\x1f{offer_id}\x1f{partner_id}".encode(), digest_size=16).digest()
        seen = self._first_seen.get(key)
        if seen is not None and now - seen < window:
            return False
        self._first_seen[key] = now
        self._first_seen.move_to_end(key)
        while len(self._first_seen) > self.max_remembered:
            self._first_seen.popitem(last=False)
        return True
