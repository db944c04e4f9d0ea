"""A service's PostgreSQL store: event store, consumer positions, inbox and views,
written together in one transaction.

Everything one consumed message changes (new domain events of the service's
aggregates, rows of its views, its position in the log and the event_id it
applied) commits in a single transaction, so a crash anywhere leaves either
all of it or none of it. We build that on eventsourcing's process recorder,
whose ``_insert_events`` hook already runs inside the event-store transaction.

A *run* of consecutive records of one partition can also commit as one
transaction (``apply_run``): a commit per record would cap a consumer at the
database's commit rate. Inside a run every read of the store from the applying
thread (views and aggregates alike) goes through the run's own connection, so a
record sees what the records before it in the run wrote, exactly as if each had
committed on its own. A run's view writes wait until a read (or the run's end) needs
them, and then go in order, consecutive writes of one statement as one ``executemany``,
all in pipeline mode: a run costs a round trip per read, not one per statement. So a
handler must read the store only through it (``query``, the datastore's
``get_connection``), never through a connection of its own, to see its run's writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, ProcessRecorder, StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import Connection, Cursor, sql
from psycopg.rows import DictRow

from afflux_plumbing.actors import ActorMapper
from afflux_plumbing.positions import Position, tracking_name
from afflux_plumbing.runs import Handlers, Run

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


class _RunConnection(threading.local):
    """The connection of the run the current thread is applying, if any, and the view
    writes its records made that no read has needed yet."""

    connection: Connection[DictRow] | None = None
    cursor: Cursor[DictRow] | None = None
    pending: list[Write] | None = None


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
        # The library sends a run's new events as one array of its composite type, dumped
        # as text: psycopg escapes every event's state with a regex (~40 µs an event, a
        # tenth of a decision's CPU). Dumped in binary, nothing is escaped.
        self.insert_events_statement = _binary_parameters(self.insert_events_statement)
        self.inbox_table = sql.Identifier(
            datastore.schema or "public", events_table_name.removesuffix("_events") + "_inbox"
        )
        self.sql_create_statements.append(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (event_id uuid PRIMARY KEY, "
                "position text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(self.inbox_table)
        )
        prefix = events_table_name.removesuffix("_events")
        self.dead_letters_table = sql.Identifier(datastore.schema or "public", prefix + "_dead_letters")
        self.sql_create_statements += _dead_letters_ddl(self.dead_letters_table, prefix)
        self._run = _RunConnection()
        self._pooled_connection = datastore.get_connection
        # Every read and write of this store goes through ``get_connection``: inside a run,
        # hand out the run's connection, so the run's handlers see its uncommitted writes.
        datastore.get_connection = self._connection  # type: ignore[method-assign]

    @contextmanager
    def _connection(self) -> Iterator[Connection[DictRow]]:
        if self._run.connection is not None:
            self._flush()  # a read in the run sees every write before it
            yield self._run.connection  # the run returns it to the pool when it ends
        else:
            with self._pooled_connection() as connection:
                yield connection

    @contextmanager
    def run_transaction(self) -> Iterator[Cursor[DictRow]]:
        """One transaction on a pooled connection that this thread's reads share until it ends."""
        with self.datastore.transaction(commit=True) as curs:
            self._run.connection, self._run.cursor, self._run.pending = curs.connection, curs, []
            try:
                yield curs
            finally:
                self._run.connection, self._run.cursor, self._run.pending = None, None, None

    def _flush(self) -> None:
        """Send the run's pending view writes, in order; consecutive writes of one
        statement go as one ``executemany`` (a click per record of a run of clicks
        becomes one statement with many parameter sets)."""
        pending, curs = self._run.pending, self._run.cursor
        if not pending or curs is None:
            return
        self._run.pending = []
        start = 0
        while start < len(pending):
            statement, end = pending[start].statement, start + 1
            while end < len(pending) and _same(pending[end].statement, statement):
                end += 1
            if end - start == 1:
                curs.execute(statement, pending[start].params)
            else:
                curs.executemany(statement, [write.params for write in pending[start:end]])
            start = end

    def in_run(self) -> bool:
        """Whether this thread is inside ``run_transaction`` (its reads see the run's writes)."""
        return self._run.connection is not None

    def claim_inbox(self, curs: Cursor[DictRow], event_id: UUID, position: Position) -> bool:
        """Record ``event_id`` as applied at ``position``; False if it already was."""
        curs.execute(
            sql.SQL(
                "INSERT INTO {} (event_id, position) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING event_id"
            ).format(self.inbox_table),
            (event_id, str(position)),
        )
        return curs.fetchone() is not None

    def claim_inbox_run(self, curs: Cursor[DictRow], run: Sequence[tuple[UUID, Position]]) -> list[bool]:
        """Record every (event_id, position) of ``run`` as applied, in one statement; per
        record, False if its event_id already was (before, or earlier in the run)."""
        curs.execute(
            sql.SQL(
                "INSERT INTO {} (event_id, position) SELECT * FROM unnest(%b::uuid[], %b::text[]) "
                "ON CONFLICT DO NOTHING RETURNING position"
            ).format(self.inbox_table),
            ([event_id for event_id, _ in run], [str(position) for _, position in run]),
        )
        claimed = {row["position"] for row in curs.fetchall()}
        return [str(position) in claimed for _, position in run]

    def insert_in_run(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                      writes: Sequence[Write]) -> None:
        """One record's new domain events (in notification order) and view writes; the
        writes wait in the run's pending list until a read or the run's end sends them."""
        if stored_events:
            self._flush()
            self._insert_stored_events(curs, stored_events)
        if self._run.pending is None:
            _execute(curs, writes)
        else:
            self._run.pending.extend(writes)

    def track_run(self, curs: Cursor[DictRow], tracking: Tracking) -> None:
        self._flush()
        self._insert_tracking(curs, tracking)

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[Any], **kwargs: Any) -> None:
        inbox: tuple[UUID, Position] | None = kwargs.get("inbox")
        if inbox is not None:
            event_id, position = inbox
            if not self.claim_inbox(curs, event_id, position):
                raise AlreadyApplied(f"event {event_id} was already applied ({position})")
        super()._insert_events(curs, stored_events, **kwargs)
        _execute(curs, kwargs.get("writes", ()))

    def has_inbox_entry(self, event_id: UUID) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            statement = sql.SQL("SELECT 1 FROM {} WHERE event_id = %s").format(self.inbox_table)
            curs.execute(statement, (event_id,))
            return curs.fetchone() is not None


def _binary_parameters(statement: sql.Composable) -> sql.Composed:
    """``statement`` with its ``%s`` parameters sent in binary (``%b``)."""
    return sql.Composed([sql.SQL(statement.as_string(None).replace("%s", "%b"))])


def _claimed(recorder: TrackedRecorder, curs: Cursor[DictRow], records: Run,
             handlers: Handlers) -> list[bool]:
    """Per record, whether it is handled: its event_id claimed in the inbox now (False: it
    was before, or earlier in the run), or its type one its handler keeps idempotently
    (``runs.handles``), never claimed."""
    claimed = [record for record in records if handlers.claims(record)]
    if not claimed:
        return [True] * len(records)
    answers = iter(recorder.claim_inbox_run(curs, [(r.event_id, r.position) for r in claimed]))
    return [next(answers) if handlers.claims(record) else True for record in records]


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
        self._on_commit: list[Callable[[], None]] = []
        self._create_views()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the committing thread) after each commit that may have
        recorded new domain events: the outbox relay wakes on it instead of polling."""
        self._on_commit.append(callback)

    def _notify(self, recordings: Any) -> None:
        super()._notify(recordings)
        self._committed()

    def _committed(self) -> None:
        for callback in self._on_commit:
            callback()

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def construct_mapper(self) -> Mapper[Any]:
        """The mapper that records who acted with each new event (``actors``)."""
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=ActorMapper)

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

    def apply_run(self, records: Run, handlers: Handlers | None = None,
                  also: Sequence[Write] = ()) -> list[bool]:
        """Commit a run of consecutive records of one partition in one transaction, with
        the last one's position; return, per record, whether it was applied (False: its
        event_id had been applied before, or earlier in the run).

        The run's event_ids are claimed in the inbox by one statement (not those of a type
        its handler keeps idempotently, ``runs.handles``: always handed over); the fresh records
        go to ``handlers`` (default: this store's ``@handles`` methods) segment by
        segment (``runs.Handlers``), each segment's changes written before the next is
        handled. The run is sent in pipeline mode: a write does not wait for its answer,
        so the writes queued since the last read travel with the next read (or the
        commit) in one round trip. Whatever a handler raises propagates with nothing of
        the run committed: the caller applies the records again as runs of one. ``also``:
        writes of the plumbing's own that commit with the run (a held dead letter settled
        by its redriven copy, ``blocking``)."""
        chosen = handlers if handlers is not None else self.handlers
        recorder = self.tracked_recorder
        with recorder.run_transaction() as curs, curs.connection.pipeline():
            applied = _claimed(recorder, curs, records, chosen)
            fresh = [record for record, new in zip(records, applied, strict=True) if new]
            for handler, segment in chosen.segments(fresh):
                self._insert_in_run(curs, handler(segment))
            recorder.insert_in_run(curs, (), also)
            recorder.track_run(curs, records[-1].position.tracking())
        self._committed()
        return applied

    @property
    def handlers(self) -> Handlers:
        """This store's ``@handles`` methods (collected once)."""
        found: Handlers | None = self.__dict__.get("_handlers")
        if found is None:
            found = self.__dict__["_handlers"] = Handlers.of(self)
        return found

    def _insert_in_run(self, curs: Cursor[DictRow], changes: Changes) -> None:
        events = [e for aggregate in changes.aggregates for e in aggregate.collect_events()]
        self.tracked_recorder.insert_in_run(curs, [self.mapper.to_stored_event(e) for e in events],
                                            changes.writes)

    def record_position(self, position: Position, also: Sequence[Write] = ()) -> None:
        """Move past ``position`` without applying it, with ``also``'s writes in the same
        transaction (a dead letter held for its key, ``blocking``): a crash keeps both or
        neither. A position recorded before is left as it is."""
        recorder = self.tracked_recorder
        try:
            if not also:
                recorder.insert_tracking(position.tracking())
                return
            with recorder.datastore.transaction(commit=True) as curs:
                _execute(curs, also)
                recorder._insert_tracking(curs, position.tracking())
        except IntegrityError:
            if not self.tracked_recorder.has_tracking_id(position.tracking_name, position.offset):
                raise

    positions_in_memory = False
    """``stored_offset`` reads the database (a catch-up asks it from a worker thread)."""

    def stored_offset(self, topic: str, partition: int) -> int | None:
        """The last offset of ``topic#partition`` this service applied, if any."""
        stored: int | None = self.tracked_recorder.max_tracking_id(tracking_name(topic, partition))
        return stored

    def has_applied(self, event_id: UUID) -> bool:
        return self.tracked_recorder.has_inbox_entry(event_id)

    def aggregates(self, ids: Sequence[UUID]) -> dict[UUID, Any]:
        """The aggregates of ``ids`` that exist, from their events read in one statement: a
        page of a list loads 50 aggregates in one round trip where ``repository.get``
        would make 50 (no snapshots are kept, so the events are the whole story)."""
        if not ids:
            return {}
        events = self.table(self.tracked_recorder.events_table_name)
        statement = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(events)
        stories: dict[UUID, list[Any]] = {}
        for row in self.query(statement, (list(ids),)):
            stored = StoredEvent(
                row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
            )
            stories.setdefault(row["originator_id"], []).append(self.mapper.to_domain_event(stored))
        return {key: project_aggregate(None, story) for key, story in stories.items()}

    def query(self, statement: sql.Composed | sql.SQL, params: Params = ()) -> list[DictRow]:
        """Read view rows (outside any applying transaction)."""
        with self.tracked_recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return curs.fetchall()


def _dead_letters_ddl(table: sql.Identifier, prefix: str) -> list[sql.Composed]:
    """The store's dead letters (``blocking``): one row per record its consumer sent to a
    DLQ with a key, ``held`` while the key's later records must wait behind it. A held
    letter is known by its key and the digest of its bytes, so a redriven copy finds it."""
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, topic text NOT NULL, "
            "key bytea NOT NULL, digest bytea NOT NULL, source_partition int NOT NULL, "
            "source_offset bigint NOT NULL, dead_letter text NOT NULL, reason text NOT NULL, "
            "consumer text NOT NULL, letters int NOT NULL DEFAULT 1, "
            "status text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'applied', 'discarded')), "
            "held_at timestamptz NOT NULL DEFAULT now(), settled_at timestamptz)"
        ).format(table),
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (topic, key, digest) WHERE status = 'held'")
        .format(sql.Identifier(f"{prefix}_dead_letters_held"), table),
    ]


def _same(one: sql.Composable, other: sql.Composable) -> bool:
    return one is other or one == other


def _execute(curs: Cursor[DictRow], writes: Sequence[Write]) -> None:
    for write in writes:
        curs.execute(write.statement, write.params)
