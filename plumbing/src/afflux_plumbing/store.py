"""A service's PostgreSQL store: event store, consumer positions, inbox and views,
written together in one transaction.

Everything one consumed message changes (new domain events of the service's
aggregates, rows of its views, its position in the log and the event_id it
applied) commits in a single transaction, so a crash anywhere leaves either
all of it or none of it. We build that on eventsourcing's process recorder,
whose ``_insert_events`` hook already runs inside the event-store transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProcessRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import Cursor, sql
from psycopg.rows import DictRow

from afflux_plumbing.positions import Position, tracking_name

Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class Write:
    """One SQL statement against a view, to run inside the applying transaction."""

    statement: sql.Composed | sql.SQL
    params: Params = ()


@dataclass
class Changes:
    """What applying one message changes: aggregates with new events, and view writes."""

    aggregates: Sequence[Aggregate] = ()
    writes: Sequence[Write] = field(default_factory=list)


class AlreadyApplied(Exception):
    """The message's event_id is in the inbox: it was applied before, under another offset."""


class TrackedRecorder(PostgresProcessRecorder):
    """Process recorder that also keeps an inbox of applied event_ids and runs view
    writes, all in the transaction that records the events and the position."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ):
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        self.inbox_table = sql.Identifier(
            datastore.schema or "public", events_table_name.removesuffix("_events") + "_inbox"
        )
        self.sql_create_statements.append(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (event_id uuid PRIMARY KEY, "
                "position text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(self.inbox_table)
        )

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[Any], **kwargs: Any) -> None:
        inbox: tuple[UUID, Position] | None = kwargs.get("inbox")
        if inbox is not None:
            event_id, position = inbox
            curs.execute(
                sql.SQL(
                    "INSERT INTO {} (event_id, position) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING event_id"
                ).format(self.inbox_table),
                (event_id, str(position)),
            )
            if curs.fetchone() is None:
                raise AlreadyApplied(f"event {event_id} was already applied ({position})")
        super()._insert_events(curs, stored_events, **kwargs)
        for write in kwargs.get("writes", ()):
            curs.execute(write.statement, write.params)

    def has_inbox_entry(self, event_id: UUID) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            statement = sql.SQL("SELECT 1 FROM {} WHERE event_id = %s").format(self.inbox_table)
            curs.execute(statement, (event_id,))
            return curs.fetchone() is not None


class TrackedApplication(Application[Any]):
    """A service's event-sourced application whose store can also apply consumed messages.

    Subclasses pin ``name`` (it names the tables) and list their view tables in
    ``view_ddl`` with ``{schema}`` placeholders; the tables are created at start.
    """

    env: ClassVar[dict[str, str]] = {
        "PROCESS_RECORDER_TOPIC": "afflux_plumbing.store:TrackedRecorder",
    }
    view_ddl: ClassVar[Sequence[str]] = ()

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._create_views()

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def tracked_recorder(self) -> TrackedRecorder:
        assert isinstance(self.recorder, TrackedRecorder)
        return self.recorder

    @property
    def schema(self) -> str:
        return self.tracked_recorder.datastore.schema or "public"

    def table(self, name: str) -> sql.Identifier:
        """The schema-qualified identifier of one of this service's view tables."""
        return sql.Identifier(self.schema, name)

    def _create_views(self) -> None:
        if not self.view_ddl:
            return
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            for ddl in self.view_ddl:
                curs.execute(sql.SQL(ddl).format(schema=sql.Identifier(self.schema)))

    def apply(self, changes: Changes, position: Position, event_id: UUID | None) -> bool:
        """Commit ``changes`` with the position and event_id; False if the event_id had
        already been applied (only the position is recorded then)."""
        processing: ProcessingEvent[Any] = ProcessingEvent(position.tracking())
        inbox = (event_id, position) if event_id is not None else None
        processing.collect_events(*changes.aggregates, inbox=inbox, writes=changes.writes)
        try:
            recordings = self._record(processing)
        except AlreadyApplied:
            self.record_position(position)
            return False
        self._notify(recordings)
        return True

    def record_position(self, position: Position) -> None:
        try:
            self.tracked_recorder.insert_tracking(position.tracking())
        except IntegrityError:
            if not self.tracked_recorder.has_tracking_id(position.tracking_name, position.offset):
                raise

    def stored_offset(self, topic: str, partition: int) -> int | None:
        """The last offset of ``topic#partition`` this service applied, if any."""
        stored: int | None = self.tracked_recorder.max_tracking_id(tracking_name(topic, partition))
        return stored

    def has_applied(self, event_id: UUID) -> bool:
        return self.tracked_recorder.has_inbox_entry(event_id)

    def query(self, statement: sql.Composed | sql.SQL, params: Params = ()) -> list[DictRow]:
        """Read view rows (outside any applying transaction)."""
        with self.tracked_recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return curs.fetchall()
