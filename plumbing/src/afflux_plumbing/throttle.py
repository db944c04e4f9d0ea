"""Slowing down guessing: failures counted per *source* in a sliding window.

Past ``limit`` failures within ``period`` seconds a source is told to wait
(``retry_after``); its caller answers 429 with ``Retry-After``. What a source is, and
whether a right credential still gets through while its source waits, is the caller's
rule: the gateway counts failed API keys per address and key prefix and always admits a
valid key (a key cannot be guessed); the console counts failed sign-ins per address and
per email and refuses every attempt of a waiting source (a password can be).

Held in memory per process (a restart forgets, which only helps a guesser by one
window); the table is bounded, oldest sources first out. Not thread-safe: callers in
threads hold a lock around it.
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
