"""Parking: a record waiting for a fact (``RetryLater``) holds back only its own partition,
and only for a bounded time.

The log itself keeps the parked record: its partition is paused and sought back
to it, so neither it nor anything after it on the partition is applied out of
order, while the consumer's other partitions go on. The partition is resumed
(and the record retried) after a backoff; a record still waiting after
``limit`` seconds goes to the DLQ with its reason, from where an operator can
redrive it (``afflux dlq redrive``) once what it waited for exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from afflux_plumbing.positions import Position


class Parked(Exception):
    """Stop applying this record's partition at ``position``; retry it after ``delay`` s."""

    def __init__(self, position: Position, delay: float, reason: str) -> None:
        super().__init__(f"{position} parked for {delay:.1f}s: {reason}")
        self.position = position
        self.delay = delay


@dataclass
class Parking:
    """When each parked record first waited, and when each paused partition is due."""

    limit: float
    first_delay: float = 0.2
    max_delay: float = 5.0
    since: dict[Position, float] = field(default_factory=dict)
    attempts: dict[Position, int] = field(default_factory=dict)
    due: dict[TopicPartition, float] = field(default_factory=dict)

    def expired(self, position: Position) -> bool:
        """Whether ``position`` has waited ``limit`` seconds (its wait starts now if new)."""
        return time.monotonic() - self.since.setdefault(position, time.monotonic()) >= self.limit

    def park(self, position: Position, reason: str) -> Parked:
        attempt = self.attempts.get(position, 0)
        self.attempts[position] = attempt + 1
        delay = min(self.max_delay, self.first_delay * 2 ** min(attempt, 16))
        self.due[TopicPartition(position.topic, position.partition)] = time.monotonic() + delay
        return Parked(position, delay, reason)

    def settled(self, position: Position) -> None:
        """``position`` was applied or dead-lettered: forget its wait."""
        self.since.pop(position, None)
        self.attempts.pop(position, None)

    def take_due(self) -> list[TopicPartition]:
        """The paused partitions whose parked record is due for another try."""
        now = time.monotonic()
        ready = [tp for tp, at in self.due.items() if at <= now]
        for tp in ready:
            del self.due[tp]
        return ready
