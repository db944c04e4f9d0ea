"""A tiny service for exercising the plumbing: it counts partners by name, and a
double-applied event would show as a count of 2."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from psycopg import sql

from afflux_contracts import Envelope, PartnerCreated, PartnerStatus, PartnerStatusChanged
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, TrackedApplication, Write
from afflux_plumbing.tables import Table

NAME_COUNTS = Table("name_counts", ("name text", "n int NOT NULL"), key=("name",))
ARRIVALS = Table("arrivals", ("name text", "seen_before int"), key=("name", "seen_before"))
STATUSES = Table("statuses", ("name text", "status text NOT NULL", "seen_count int NOT NULL"), key=("name",))


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str) -> None:
        self.text = text


class Tally(TrackedApplication):
    name = "Tally"
    view_ddl: ClassVar = NAME_COUNTS.ddl()

    @handles(PartnerCreated)
    def on_partners_created(self, run: Run) -> Changes:
        """A note per partner, and each name's count: one upsert for the run."""
        names = [record.payload.name for record in run]
        return Changes(aggregates=[Note(name) for name in names], writes=[self._count(names)])

    def _count(self, names: list[str]) -> Write:
        added = Counter(names)
        statement = NAME_COUNTS.upsert(self.schema, {"n": "{table}.n + excluded.n"})
        write = NAME_COUNTS.write(statement, ({"name": name, "n": n} for name, n in sorted(added.items())))
        assert write is not None
        return write

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
    records how many of its name came before, and a name gets its card only once; a
    status change records how many of its name had arrived when it was applied. A run
    that did not fold its records in order, or a segment that did not see the segments
    before it, would show."""

    view_ddl: ClassVar = [*Tally.view_ddl, *ARRIVALS.ddl(), *STATUSES.ddl()]

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.refusals: dict[str, Exception] = {}
        """Names whose records raise this instead of applying (while they are here)."""
        self.attempts: Counter[str] = Counter()
        self.segments: list[int] = []
        """The length of every run (segment) the handler was given."""

    @handles(PartnerCreated)
    def on_partners_created(self, run: Run) -> Changes:
        self.segments.append(len(run))
        names = [record.payload.name for record in run]
        for name in names:
            self.attempts[name] += 1
            if name in self.refusals:
                raise self.refusals[name]
        seen = self.counts()  # one read for the run, then folded in order
        arrivals, cards = [], []
        for name in names:
            if seen.get(name, 0) == 0 and NameCard.create_id(name) not in self.repository:
                cards.append(NameCard(name))
            arrivals.append({"name": name, "seen_before": seen.get(name, 0)})
            seen[name] = seen.get(name, 0) + 1
        arrived = ARRIVALS.write(ARRIVALS.insert(self.schema, skip_existing=False), arrivals)
        assert arrived is not None
        return Changes(aggregates=[*cards, *(Note(name) for name in names)],
                       writes=[self._count(names), arrived])

    @handles(PartnerStatusChanged)
    def on_status_changes(self, run: Run) -> Changes:
        """Reads the counts the partners-created segments before it wrote in the run."""
        self.segments.append(len(run))
        counts = self.counts()
        rows = [{"name": record.payload.partner_id.removeprefix("p-"), "status": record.payload.status.value,
                 "seen_count": counts.get(record.payload.partner_id.removeprefix("p-"), 0)} for record in run]
        write = STATUSES.write(STATUSES.upsert(self.schema, ("status", "seen_count")), rows)
        return Changes(writes=[write] if write is not None else [])

    def statuses(self) -> dict[str, tuple[str, int]]:
        rows = self.query(sql.SQL("SELECT name, status, seen_count FROM {}").format(self.table("statuses")))
        return {row["name"]: (row["status"], row["seen_count"]) for row in rows}

    def arrivals(self) -> list[tuple[str, int]]:
        rows = self.query(sql.SQL("SELECT name, seen_before FROM {} ORDER BY name, seen_before").format(
            self.table("arrivals")))
        return [(row["name"], row["seen_before"]) for row in rows]

    def applied_order(self) -> list[str]:
        """The names of the partners-created records applied, in the order they were (their
        notes' order in the notification log)."""
        notifications = self.recorder.select_notifications(None, 1000)
        events = [self.mapper.to_domain_event(n) for n in notifications]
        return [e.text for e in events if isinstance(e, Note.Written)]

    def cards(self) -> list[str]:
        notifications = self.recorder.select_notifications(None, 1000)
        events = [self.mapper.to_domain_event(n) for n in notifications]
        return [e.name for e in events if isinstance(e, NameCard.Issued)]


def status_changed(name: str, status: str = "suspended") -> Envelope[PartnerStatusChanged]:
    return Envelope.wrap(PartnerStatusChanged(partner_id=f"p-{name}", status=PartnerStatus(status)),
                         producer="test")
