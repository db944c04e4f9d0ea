"""What a replay needs from outside: scratch schemas beside the live projection, a
consistent copy of it, a row-by-row diff (``Shadows``), and the log read partition by
partition up to given offsets (``LogReader``). ``adapters/shadow.py`` and
``adapters/shadow_log.py`` provide them on PostgreSQL and Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from afflux_plumbing.blocking import LogRecord


class LogShorterThanPositions(Exception):
    """The log does not hold the records the live projection says it applied."""


@dataclass(frozen=True)
class Stretch:
    """Offsets ``first`` to ``last`` (inclusive) of one partition."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return max(0, self.last - self.first + 1)


class LogReader(Protocol):
    def read(self, stretches: Sequence[Stretch], *,
             known_by: datetime | None = None) -> AsyncIterator[tuple[tuple[str, int], Sequence[LogRecord]]]:
        """Each stretch's records in offset order, batch by batch, as ((topic, partition),
        records); a stretch ends early at its first record appended after ``known_by``.
        ``LogShorterThanPositions`` if the log ends before a stretch does."""
        ...


@dataclass(frozen=True)
class TableShape:
    """A projection table as the diff sees it: its compared columns and its key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    """The primary key's columns; empty when the table has none."""


@dataclass(frozen=True)
class RowDiff:
    """One row that differs: its key, and the differing columns' values on each side
    (``live``/``replay`` is None when the row is missing on that side)."""

    key: dict[str, str | None]
    live: dict[str, str | None] | None
    replay: dict[str, str | None] | None

    @property
    def kind(self) -> str:
        if self.replay is None:
            return "only in live"
        if self.live is None:
            return "only in replay"
        return "differs"

    def changed(self) -> list[tuple[str, str | None, str | None]]:
        """(column, live value, replay value) of each column that differs."""
        live, replay = self.live or {}, self.replay or {}
        return [(c, live.get(c), replay.get(c)) for c in sorted(set(live) | set(replay))
                if live.get(c) != replay.get(c)]


@dataclass
class TableDiff:
    table: str
    key: tuple[str, ...]
    mismatched: int = 0
    rows: list[RowDiff] = field(default_factory=list)
    problem: str | None = None
    """A difference of the table itself: missing on one side, or other columns."""

    @property
    def equal(self) -> bool:
        return self.mismatched == 0 and self.problem is None


class Shadows(Protocol):
    """Scratch schemas of the live projection's database."""

    def scratch_schema(self, kind: str) -> str:
        """A fresh schema name for a shadow projection (not created)."""
        ...

    def schema_exists(self, schema: str) -> bool: ...

    def drop_schema(self, schema: str) -> None: ...

    def projection_tables(self, schema: str, names: Sequence[str]) -> list[TableShape]:
        """The tables of ``schema`` among ``names``: the projection's (the rest of a schema,
        the event store's bookkeeping, the plumbing's, is not the fold's)."""
        ...

    def snapshot(self, live: str, into: str, tables: Sequence[TableShape],
                 tracking_table: str) -> dict[str, int]:
        """Copy ``tables`` of the live schema into ``into`` and return the live positions
        (``topic#partition`` -> last applied offset), all from one snapshot."""
        ...

    def diff_schemas(self, live: str, replay: str, names: Sequence[str]) -> list[TableDiff]:
        """Compare the tables ``names`` of ``live`` with ``replay``'s, row by row, as text."""
        ...

    def partner_ids(self, schemas: Sequence[str], names: Sequence[str]) -> list[str]:
        """Every partner_id the tables ``names`` of ``schemas`` hold, sorted."""
        ...


@dataclass(frozen=True)
class Replaying:
    """The two sides of a replay: the database's schemas and the log."""

    shadows: Shadows
    log: LogReader
