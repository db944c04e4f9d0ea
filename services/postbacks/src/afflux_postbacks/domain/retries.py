"""When a failed postback is tried again, and when it is given up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""4xx answers that mean "not now" rather than "never"."""


def retryable(status_code: int | None) -> bool:
    """A call that got no answer, a 5xx or a "not now" 4xx is tried again; any other 4xx
    or a 3xx (redirects are not followed) is the partner's final word."""
    return status_code is None or status_code >= 500 or status_code in RETRYABLE_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th retry waits ``first * 2**(n-1)`` seconds
    (at most ``cap``), times a random factor in [0.5, 1] so that a host's backlog does
    not come back in lock-step; a delivery still failing ``give_up_after`` seconds after
    it was owed is given up."""

    first: float
    cap: float
    give_up_after: float

    def next_attempt(self, attempts: int, owed_at: datetime, now: datetime,
                     rng: random.Random | None = None) -> datetime | None:
        """When to try again after ``attempts`` failed calls; None: give up."""
        factor = (rng or random).uniform(0.5, 1.0)
        delay = min(self.cap, self.first * 2 ** min(attempts - 1, 32)) * factor
        at = now + timedelta(seconds=delay)
        if at > owed_at + timedelta(seconds=self.give_up_after):
            return None
        return at

    def after(self, result: AttemptResult, attempt: int, owed_at: datetime, now: datetime) -> Verdict:
        """What follows the ``attempt``-th call of a delivery owed since ``owed_at``: a 2xx
        is ``delivered``; a refusal or a final answer ``failed`` at once; anything else
        ``pending`` until the policy's time runs out, then ``failed`` and given up (which
        pauses its host)."""
        if result.ok:
            return Verdict("delivered", None, None)
        if result.refused or not retryable(result.status_code):
            return Verdict("failed", None, result.error)
        retry_at = self.next_attempt(attempt, owed_at, now)
        if retry_at is None:
            error = f"{result.error}; still failing after {attempt} attempts, given up"
            return Verdict("failed", None, error, given_up=True)
        return Verdict("pending", retry_at, result.error)


@dataclass(frozen=True)
class Verdict:
    """A delivery's status after a call, when it is tried again (pending only), the error
    it keeps, and whether it was given up because its host kept failing."""

    status: str
    retry_at: datetime | None
    error: str | None
    given_up: bool = False


@dataclass(frozen=True)
class AttemptResult:
    """What one call gave: a status (None: no answer), an error, how long it took, and
    whether it was refused before anything was sent."""

    status_code: int | None
    error: str | None
    latency: float
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
