"""A tiny service for exercising the plumbing: it counts partners by name, and a
double-applied event would show as a count of 2."""

from __future__ import annotations

from typing import Any, ClassVar

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
