"""Dead letters told to staff: the digest a topic's count makes (``domain/digests.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from afflux_notifications.domain.mailing import Mail, to_staff


@dataclass(frozen=True)
class DeadLetterCount:
    """What a DLQ topic collected since its last digest."""

    topic: str
    pending: int
    reasons: dict[str, int]
    first_at: datetime | None
    last_at: datetime | None
    number: int
    """This digest's number for the topic (1 for its first)."""


class Digests(Protocol):
    def take_due(self, every: timedelta, mails_for: Callable[[DeadLetterCount], Sequence[Mail]]) -> int:
        """For each topic whose digest is due (``domain.digests.digest_due``): queue
        ``mails_for`` it and start counting anew, in one transaction; how many topics."""
        ...


def digest_mails(staff: Sequence[str]) -> Callable[[DeadLetterCount], list[Mail]]:
    """The staff's mails of one topic's digest (one per staff address; none without staff)."""

    def mails_for(count: DeadLetterCount) -> list[Mail]:
        reasons = "; ".join(f"{reason} ({n})" for reason, n in count.reasons.items())
        return to_staff("staff_dead_letters", staff, {
            "topic": count.topic, "count": count.pending, "reasons": reasons or "none given",
            "first_at": _iso(count.first_at), "last_at": _iso(count.last_at),
        }, source=f"digest:{count.topic}:{count.number}")

    return mails_for


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else "unknown"
