"""A tiny service for exercising the plumbing: it counts partners by name, and a
double-applied event would show as a count of 2."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from psycopg import sql

from afflux_contracts import Envelope, Event, PartnerCreated
from afflux_plumbing.store import Changes, TrackedApplication, Write


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str) -> None:
        self.text = text


class Tally(TrackedApplication):
    name = "Tally"
    view_ddl: ClassVar = [
        "CREATE TABLE IF NOT EXISTS {schema}.name_counts (name text PRIMARY KEY, n int NOT NULL)"
    ]

    def handle(self, envelope: Envelope[Event]) -> Changes:
        payload = envelope.payload
        if not isinstance(payload, PartnerCreated):
            return Changes()
        count = Write(
            sql.SQL(
                "INSERT INTO {} (name, n) VALUES (%s, 1) ON CONFLICT (name) DO UPDATE SET n = {}.n + 1"
            ).format(self.table("name_counts"), self.table("name_counts")),
            (payload.name,),
        )
        return Changes(aggregates=[Note(payload.name)], writes=[count])

    def counts(self) -> dict[str, int]:
        rows = self.query(sql.SQL("SELECT name, n FROM {}").format(self.table("name_counts")))
        return {row["name"]: row["n"] for row in rows}

    def note_texts(self) -> list[str]:
        notifications = self.recorder.select_notifications(None, 1000)
        return [self.mapper.to_domain_event(n).text for n in notifications]


def partner_created(name: str, **envelope: Any) -> Envelope[PartnerCreated]:
    return Envelope.wrap(
        PartnerCreated(partner_id=f"p-{name}", name=name, email=f"{name}@example.com"),
        producer="test",
        **envelope,
    )


class NameCard(Aggregate):
    """One per name, ever: its id is derived from the name."""

    @event("Issued")
    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"name-card:{name}")


class Roster(Tally):
    """A store whose every change depends on what it has already applied: each arrival
    records how many of its name came before, and a name gets its card only once. Applied
    in a run, a record that did not see the records before it would show."""

    view_ddl: ClassVar = [
        *Tally.view_ddl,
        "CREATE TABLE IF NOT EXISTS {schema}.arrivals "
        "(name text, seen_before int, PRIMARY KEY (name, seen_before))",
    ]

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.refusals: dict[str, Exception] = {}
        """Names whose records raise this instead of applying (while they are here)."""
        self.attempts: Counter[str] = Counter()

    def handle(self, envelope: Envelope[Event]) -> Changes:
        payload = envelope.payload
        assert isinstance(payload, PartnerCreated)
        self.attempts[payload.name] += 1
        if payload.name in self.refusals:
            raise self.refusals[payload.name]
        counted = super().handle(envelope)
        arrival = Write(
            sql.SQL("INSERT INTO {} (name, seen_before) VALUES (%s, %s)").format(self.table("arrivals")),
            (payload.name, self.counts().get(payload.name, 0)),
        )
        card = [] if NameCard.create_id(payload.name) in self.repository else [NameCard(payload.name)]
        return Changes(aggregates=[*card, *counted.aggregates], writes=[*counted.writes, arrival])

    def arrivals(self) -> list[tuple[str, int]]:
        rows = self.query(sql.SQL("SELECT name, seen_before FROM {} ORDER BY name, seen_before").format(
            self.table("arrivals")))
        return [(row["name"], row["seen_before"]) for row in rows]

    def cards(self) -> list[str]:
        notifications = self.recorder.select_notifications(None, 1000)
        events = [self.mapper.to_domain_event(n) for n in notifications]
        return [e.name for e in events if isinstance(e, NameCard.Issued)]
