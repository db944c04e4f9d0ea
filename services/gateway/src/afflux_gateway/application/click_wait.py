"""How long a conversion waits for its click.

A conversion is counted in its click's subs, and the click precedes the decision on
the log, but on another topic, read by another consumer: at a cold start the
attribution consumer can run ahead of the (much longer) tracking log. So a
conversion whose click is not applied yet waits (``RetryLater``: its partition is
parked, others go on) until the tracking consumer has caught up with the end the
tracking log had *after* the conversion was first seen missing its click. If the
click is still not there then, it never will be (a decision published by a tool,
a click that predates the log): the conversion is counted without subs rather than
held for ever or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from afflux_plumbing.catch_up import LogCatchUp

log = logging.getLogger(__name__)


class ClickWait:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_missing: dict[str, float] = {}
        self._caught_up_as_of = float("-inf")
        self._wanted = threading.Event()

    def found(self, transaction_id: str) -> None:
        with self._lock:
            self._first_missing.pop(transaction_id, None)

    def give_up(self, transaction_id: str) -> bool:
        """True when the tracking log was read to an end taken after this click was first
        missed (so it is not coming); else remember the miss and say wait."""
        now = time.monotonic()
        with self._lock:
            first = self._first_missing.setdefault(transaction_id, now)
            if self._caught_up_as_of > first:
                del self._first_missing[transaction_id]
                return True
        self._wanted.set()
        return False

    async def keep_checking(self, tracking_log: LogCatchUp, every: float = 0.25) -> None:
        """While some conversion waits, note each time tracking is caught up (runs with the app)."""
        while True:
            if not self._wanted.is_set():
                await asyncio.sleep(every)
                continue
            started = time.monotonic()
            if await tracking_log.caught_up(timeout=30.0):
                with self._lock:
                    self._caught_up_as_of = started
                    if not self._first_missing:
                        self._wanted.clear()
            await asyncio.sleep(every)
