"""Slowing down guessing: failed sign-ins per client address in a sliding window.

After ``limit`` failures within ``period`` seconds, an address is refused (429 with
``Retry-After``) until its oldest counted failure leaves the window, whatever key it
presents meanwhile. Held in memory per process (a restart forgets, which only
helps the caller by one window); the table is bounded, oldest addresses first out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        limit: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] | None = None,
        max_addresses: int = 100_000,
    ) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock or time.monotonic
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Seconds ``address`` must wait before trying again, or None if it may try now."""
        failures = self._recent(address)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.period - self.clock()))

    def failed(self, address: str) -> None:
        failures = self._recent(address)
        if failures is None:
            failures = self._failures[address] = deque()
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        failures.append(self.clock())
        self._failures.move_to_end(address)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self.clock() - self.period
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
