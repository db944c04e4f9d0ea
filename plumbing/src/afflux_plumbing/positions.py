"""A consumer's place in the log: one tracking row per (topic, partition)."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import Tracking


@dataclass(frozen=True)
class Position:
    """The offset of one record in one partition of one topic."""

    topic: str
    partition: int
    offset: int

    @property
    def tracking_name(self) -> str:
        return tracking_name(self.topic, self.partition)

    def tracking(self) -> Tracking:
        return Tracking(application_name=self.tracking_name, notification_id=self.offset)

    def __str__(self) -> str:
        return f"{self.topic}#{self.partition}@{self.offset}"


def tracking_name(topic: str, partition: int) -> str:
    return f"{topic}#{partition}"
