"""The audit trail: every event on the log that a person or a token caused.

The console reads every topic whose producers act for someone (all but tracking's, whose
events are a visitor's or an advertiser server's and never carry an actor; reading it
would cost a row in the inbox per click) and keeps, of each event with an ``actor``,
who (the actor, the role it acted in, and the person: a token's owner), what (the event
type), to which objects (``domain.audit``), and when. ``GET /v1/audit`` lists them,
newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from afflux_console.domain.audit import subjects_of
from afflux_contracts import ALL_TOPICS, BOOTSTRAP_OWNER, EVENT_TYPES, TRACKING, Topic
from afflux_plumbing.runs import Handlers, Run
from afflux_plumbing.store import Changes, Write

AUDITED_TOPICS: tuple[Topic, ...] = tuple(topic for topic in ALL_TOPICS if topic is not TRACKING)


@dataclass(frozen=True)
class Entry:
    """One audited event."""

    event_id: str
    at: datetime
    topic: str
    action: str
    actor_kind: str
    actor_id: str
    role: str | None
    person: str | None
    """The staff user behind it: the actor itself, or a token's owner (``admin``: the
    bootstrap owner)."""
    subject: str | None
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    subject: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[Entry]
    next_after: int | None


class AuditTables(Protocol):
    def token_owners(self, token_ids: Sequence[str]) -> Mapping[str, str]:
        """The owner of each of these API tokens that the console issued."""
        ...

    def entries_written(self, entries: Sequence[Entry]) -> Sequence[Write]: ...

    def entries(self, query: AuditQuery, after: int | None, limit: int) -> AuditPage: ...


class Audit:
    """The run handler of every audited topic."""

    def __init__(self, tables: AuditTables) -> None:
        self.tables = tables

    @property
    def handlers(self) -> Handlers:
        """One handler for every event type."""
        return Handlers(dict.fromkeys(EVENT_TYPES.values(), self.on_events))

    def on_events(self, run: Run) -> Changes:
        acted = [record for record in run if record.envelope.actor is not None]
        if not acted:
            return Changes()
        tokens = [r.envelope.actor.id for r in acted if r.envelope.actor and r.envelope.actor.kind == "token"]
        owners = self.tables.token_owners(tokens) if tokens else {}
        entries = []
        for record in acted:
            actor = record.envelope.actor
            assert actor is not None
            subjects = subjects_of(record.payload.model_dump())
            entries.append(
                Entry(
                    event_id=str(record.event_id),
                    at=record.occurred_at,
                    topic=record.position.topic,
                    action=record.envelope.event_type,
                    actor_kind=actor.kind,
                    actor_id=actor.id,
                    role=actor.role,
                    person=_person(actor.kind, actor.id, owners),
                    subject=subjects[0] if subjects else None,
                    subjects=tuple(subjects),
                )
            )
        return Changes(writes=self.tables.entries_written(entries))

    def page(self, query: AuditQuery, after: int | None, limit: int) -> AuditPage:
        return self.tables.entries(query, after, limit)


def _person(kind: str, actor_id: str, owners: Mapping[str, str]) -> str | None:
    if kind == "staff":
        return actor_id
    if kind == "admin":
        return BOOTSTRAP_OWNER
    if kind == "token":
        return owners.get(actor_id)
    return None
