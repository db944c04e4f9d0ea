"""Slowing down guessing without locking anyone out: failed key checks counted per
*source* (the client address and the presented key's prefix) in a sliding window.

Past ``limit`` failures within ``period`` seconds a source's failed attempts are
answered 429 with ``Retry-After`` instead of 401. A valid key is never refused because
of failures: the key is checked first, and a right one always gets through. So ten bad
keys from behind one load balancer (one address for everyone) throttle only those
guesses, and a partner typing its key wrong sees its own 401s, not others' 429s.

Why per prefix as well as per address: behind a proxy every caller has the proxy's
address; the prefix (``afx_live_`` and the key's first characters, public in the
partner's key list) splits the callers a guesser cannot impersonate cheaply.

Held in memory per process (a restart forgets, which only helps a guesser by one
window); the table is bounded, oldest sources first out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

PREFIX_CHARS = 12
"""As much of a presented key as names its source (the prefix the partners log keeps)."""


def source_of(address: str, presented: str | None) -> str:
    """The throttle's bucket for a key presented from an address."""
    prefix = (presented or "")[:PREFIX_CHARS]
    return f"{address}|{prefix.encode('unicode_escape').decode()}"


class FailureThrottle:
    def __init__(
        self,
        limit: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] | None = None,
        max_sources: int = 100_000,
    ) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock or time.monotonic
        self.max_sources = max_sources
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, source: str) -> int | None:
        """Seconds ``source``'s failures must wait to be answered 401 again, or None."""
        failures = self._recent(source)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.period - self.clock()))

    def failed(self, source: str) -> None:
        failures = self._recent(source)
        if failures is None:
            failures = self._failures[source] = deque()
            while len(self._failures) > self.max_sources:
                self._failures.popitem(last=False)
        failures.append(self.clock())
        self._failures.move_to_end(source)

    def forget(self, source: str) -> None:
        self._failures.pop(source, None)

    def _recent(self, source: str) -> deque[float] | None:
        failures = self._failures.get(source)
        if failures is None:
            return None
        horizon = self.clock() - self.period
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
