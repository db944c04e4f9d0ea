"""A mail's way from queued to sent, and the rule that sends it at most once.

States: ``queued`` (due at ``next_attempt_at``) → ``sending`` (claimed by a worker,
before any byte of the message left) → ``handing_over`` (recorded, committed, just
before the SMTP ``DATA`` command) → ``sent`` | ``failed`` | ``uncertain``. ``skipped``
(opted out) never leaves the store.

The rule: a mail's ``DATA`` is begun only from ``handing_over``, and a row enters
``handing_over`` only from its own claim (a compare-and-set on the claim, committed
before ``DATA``): so no two conversations ever hand the same mail over. Anything that
goes wrong *before* ``DATA`` (no connection, TLS, authentication, a refused sender, a
4xx) is retried with backoff: an SMTP server accepts a message only at the end of its
``DATA``, so nothing can have been delivered. A reply that is not 2xx to ``DATA`` or
to its content is a refusal too. Only one case is ambiguous: the message was handed
over and no reply came (the connection dropped, the reply timed out, the process was
killed). That mail is ``uncertain``: it may have arrived, so it is never sent again on
its own; it is reported (``NotificationFailed`` with ``outcome_unknown``) and carries a
``Message-ID`` that is the same on any resend an operator makes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    HANDING_OVER = "handing_over"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"


ENDED = frozenset({Status.SENT, Status.FAILED, Status.UNCERTAIN, Status.SKIPPED})

UNKNOWN_OUTCOME = ("handed over, but no answer came (the connection or the process ended): it may have "
                   "arrived, so it is not sent again")


class Stage(StrEnum):
    """How far an SMTP conversation got before it ended."""

    CONNECT = "connect"
    """Connecting, greeting, STARTTLS, authenticating."""
    SENDER = "sender"
    RECIPIENT = "recipient"
    DATA = "data"
    """The DATA command was sent: the message may be the server's."""


@dataclass(frozen=True)
class Attempt:
    """What one SMTP conversation gave: where it ended, the last reply's code (None: no
    reply), and the error, if any."""

    stage: Stage
    code: int | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return (self.stage is Stage.DATA and self.error is None and self.code is not None
                and 200 <= self.code < 300)


@dataclass(frozen=True)
class Verdict:
    status: Status
    retry_at: datetime | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with jitter: the n-th retry waits ``first * 2**(n-1)`` seconds (at most
    ``cap``), times a factor in [0.5, 1]; a mail still failing ``give_up_after`` seconds
    after it was queued is given up."""

    first: float
    cap: float
    give_up_after: float

    def retry_at(self, attempts: int, queued_at: datetime, now: datetime,
                 rng: random.Random | None = None) -> datetime | None:
        delay = min(self.cap, self.first * 2 ** min(max(attempts - 1, 0), 32))
        at = now + timedelta(seconds=delay * (rng or random).uniform(0.5, 1.0))
        return None if at > queued_at + timedelta(seconds=self.give_up_after) else at


def after(attempt: Attempt, attempts: int, queued_at: datetime, now: datetime,
          policy: RetryPolicy) -> Verdict:
    """What follows the ``attempts``-th conversation of a mail queued at ``queued_at``."""
    if attempt.accepted:
        return Verdict(Status.SENT)
    if attempt.stage is Stage.DATA and attempt.code is None:
        return Verdict(Status.UNCERTAIN, error=f"{UNKNOWN_OUTCOME}: {attempt.error}")
    if _refused_for_good(attempt):
        return Verdict(Status.FAILED, error=attempt.error)
    retry_at = policy.retry_at(attempts, queued_at, now)
    if retry_at is None:
        given_up = f"{attempt.error}; still failing after {attempts} attempts, given up"
        return Verdict(Status.FAILED, error=given_up)
    return Verdict(Status.QUEUED, retry_at, attempt.error)


def _refused_for_good(attempt: Attempt) -> bool:
    """A 5xx to the recipient or to the message is the server's final word on this mail.
    A 5xx earlier (the sender, authentication) is the sending side's configuration, which
    an operator fixes: those are retried until the mail's time runs out."""
    return (attempt.code is not None and 500 <= attempt.code < 600
            and attempt.stage in (Stage.RECIPIENT, Stage.DATA))
