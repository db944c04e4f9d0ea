"""View tables declared once: their DDL and their statements, in batch form only.

A service's adapters declare each view table as a ``Table`` (its columns with their
SQL types, its key) and get from it everything they write and most of what they
read, so statements are built one way across services:

- ``insert``: many rows as **one JSON parameter** (``json_to_recordset``): a run's rows
  travel as one value; binding them as parallel arrays, or one ``execute`` per row,
  costs the client more than the server's insert. A lone row is a batch of one.
- ``upsert``: the same, ``ON CONFLICT (key) DO UPDATE`` with the columns named (or
  expressions such as ``n = {table}.n + excluded.n`` for counters).
- ``select``: the rows matching many keys at once (a join on the keys' JSON), so a run
  reads what all its records need in one round trip.
- ``update``: rows matched on the key get the named columns.

Rows are mappings of column name to value; ``Decimal``, ``UUID``, times and enums go
as their exact text (``numeric`` reads ``"5.00"`` back as ``5.00``: the scale of an
amount is kept). Statements are composed once per (table, schema, shape), rendered to
their text and cached: psycopg composes a ``Composed`` of identifiers anew on every
execute (tens of microseconds per statement), its text costs nothing to send.

``ddl()`` gives ``CREATE TABLE IF NOT EXISTS`` with every column, then ``ADD COLUMN
IF NOT EXISTS`` for each, so a column added to the declaration reaches an existing
deployment's table as well (indexes and checks stay in the service's own DDL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import sql

from afflux_plumbing.store import Write

_CONSTRAINTS = (" NOT NULL", " DEFAULT ", " CHECK ", " REFERENCES ", " PRIMARY KEY", " UNIQUE", " GENERATED ")


@dataclass(frozen=True)
class Column:
    """One column: ``"amount numeric NOT NULL DEFAULT 0"`` → name, bare type, the rest."""

    name: str
    type: str
    constraints: str = ""

    @classmethod
    def parse(cls, spec: str) -> Column:
        name, _, rest = spec.strip().partition(" ")
        cut = min((i for i in (rest.upper().find(c) for c in _CONSTRAINTS) if i >= 0), default=len(rest))
        return cls(name, rest[:cut].strip(), rest[cut:].strip())

    @property
    def definition(self) -> str:
        return f"{self.name} {self.type} {self.constraints}".strip()


@dataclass(frozen=True)
class Table:
    """A view table: ``Table("clicks", ("transaction_id text", "offer_id text NOT NULL"),
    key=("transaction_id",))``."""

    name: str
    specs: tuple[str, ...]
    key: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(Column.parse(spec) for spec in self.specs))
        unknown = [name for name in self.key if name not in self.column_names]
        if unknown:
            raise ValueError(f"{self.name}: key columns {unknown} are not declared")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    # -- DDL -------------------------------------------------------------------------

    def ddl(self) -> list[str]:
        """``view_ddl`` statements (with the ``{schema}`` placeholder the store fills in)."""
        body = [column.definition for column in self.columns]
        if self.key:
            body.append(f"PRIMARY KEY ({', '.join(self.key)})")
        create = f"CREATE TABLE IF NOT EXISTS {{schema}}.{self.name} ({', '.join(body)})"
        added = [f"ALTER TABLE {{schema}}.{self.name} ADD COLUMN IF NOT EXISTS {column.definition}"
                 for column in self.columns if column.name not in self.key]
        return [create, *added]

    # -- statements (composed once, cached) -------------------------------------------

    def ident(self, schema: str) -> sql.Identifier:
        return sql.Identifier(schema, self.name)

    def insert(self, schema: str, columns: Sequence[str] | None = None, *,
               skip_existing: bool = True) -> sql.Composed:
        """Insert many rows (one JSON parameter); ``skip_existing``: a row whose key exists
        is left as it is (``ON CONFLICT (key) DO NOTHING``), so a redelivery changes nothing."""
        return _insert(self, schema, tuple(columns or self.column_names), skip_existing)

    def upsert(self, schema: str, update: Sequence[str] | Mapping[str, str],
               columns: Sequence[str] | None = None) -> sql.Composed:
        """Insert many rows; a row whose key exists gets ``update``: column names (set to
        the new row's value) or ``{column: expression}`` where the expression may name
        ``{table}`` (the existing row) and ``excluded`` (the new one), e.g.
        ``{"n": "{table}.n + excluded.n"}``."""
        pairs = tuple(update.items()) if isinstance(update, Mapping) else tuple(
            (name, f"excluded.{name}") for name in update)
        return _upsert(self, schema, tuple(columns or self.column_names), pairs)

    def update(self, schema: str, columns: Sequence[str], by: Sequence[str] | None = None) -> sql.Composed:
        """Rows matched on ``by`` (default: the key) get ``columns`` from many rows at once."""
        return _update(self, schema, tuple(columns), tuple(by or self.key))

    def select(self, schema: str, by: Sequence[str] | None = None, columns: Sequence[str] | None = None,
               order_by: Sequence[str] = ()) -> sql.Composed:
        """The rows matching any of many keys (one JSON parameter of ``by`` values)."""
        return _select(self, schema, tuple(by or self.key), tuple(columns or self.column_names),
                       tuple(order_by))

    def delete(self, schema: str, by: Sequence[str] | None = None) -> sql.Composed:
        """Delete the rows matching any of many keys."""
        return _delete(self, schema, tuple(by or self.key))

    # -- parameters --------------------------------------------------------------------

    def write(self, statement: sql.Composed, rows: Iterable[Mapping[str, Any]]) -> Write | None:
        """``statement`` with ``rows`` as its one parameter; ``None`` for no rows."""
        listed = list(rows)
        return Write(statement, (json_rows(listed),)) if listed else None

    def recordset(self, columns: Sequence[str], alias: str = "r") -> sql.Composed:
        """``json_to_recordset(%s::json) AS alias(col type, ...)`` for hand-made reads."""
        return _recordset(self, tuple(columns), alias)


def json_rows(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as a JSON array of objects, each value as its exact text."""
    return json.dumps(list(rows), default=_text, separators=(",", ":"))


def keys_param(rows: Iterable[Mapping[str, Any]] | Iterable[Any], by: Sequence[str]) -> tuple[str]:
    """The one parameter of ``select``/``delete``: mappings, or bare values for one column."""
    listed = [row if isinstance(row, Mapping) else {by[0]: row} for row in rows]
    return (json_rows(listed),)


def _text(value: object) -> str | int | float | bool:
    if isinstance(value, Enum):
        return value.value  # type: ignore[no-any-return]
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON text here")


def _rendered(statement: sql.Composed) -> sql.Composed:
    """``statement`` as one piece of text (still a ``Composed``, for the callers' types)."""
    return sql.Composed([sql.SQL(statement.as_string(None))])


@cache
def _recordset(table: Table, columns: tuple[str, ...], alias: str) -> sql.Composed:
    typed = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(table.column(name).type)) for name in columns)
    return sql.SQL("json_to_recordset(%s::json) AS {}({})").format(sql.Identifier(alias), typed)


def _pairs(template: str, columns: Sequence[str], joiner: str) -> sql.Composed:
    """``template`` (two ``{}``) filled with each column's name twice, joined."""
    return sql.SQL(joiner).join(sql.SQL(template).format(sql.Identifier(name), sql.Identifier(name))
                                for name in columns)


def _names(columns: Sequence[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in columns)


@cache
def _insert(table: Table, schema: str, columns: tuple[str, ...], skip_existing: bool) -> sql.Composed:
    conflict = (sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(_names(table.key))
                if skip_existing and table.key else sql.SQL(""))
    return _rendered(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}{}").format(
        table.ident(schema), _names(columns), _names(columns, "r"), _recordset(table, columns, "r"),
        conflict))


@cache
def _upsert(table: Table, schema: str, columns: tuple[str, ...],
            update: tuple[tuple[str, str], ...]) -> sql.Composed:
    if not table.key:
        raise ValueError(f"{table.name} has no key to upsert on")
    target = table.ident(schema)
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.SQL(expression.replace("{table}", "{t}")).format(
            t=target)) for name, expression in update)
    upsert = "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
    return _rendered(sql.SQL(upsert).format(
        target, _names(columns), _names(columns, "r"), _recordset(table, columns, "r"), _names(table.key),
        sets))


@cache
def _update(table: Table, schema: str, columns: tuple[str, ...], by: tuple[str, ...]) -> sql.Composed:
    sets, match = _pairs("{} = r.{}", columns, ", "), _pairs("t.{} = r.{}", by, " AND ")
    return _rendered(sql.SQL("UPDATE {} AS t SET {} FROM {} WHERE {}").format(
        table.ident(schema), sets, _recordset(table, (*by, *columns), "r"), match))


@cache
def _select(table: Table, schema: str, by: tuple[str, ...], columns: tuple[str, ...],
            order_by: tuple[str, ...]) -> sql.Composed:
    order = (sql.SQL(" ORDER BY {}").format(_names(order_by, "t")) if order_by else sql.SQL(""))
    match = _pairs("t.{} = k.{}", by, " AND ")
    return _rendered(sql.SQL("SELECT {} FROM {} AS t JOIN (SELECT DISTINCT * FROM {}) AS k ON {}{}").format(
        _names(columns, "t"), table.ident(schema), _recordset(table, by, "k"), match, order))


@cache
def _delete(table: Table, schema: str, by: tuple[str, ...]) -> sql.Composed:
    match = _pairs("t.{} = k.{}", by, " AND ")
    return _rendered(sql.SQL("DELETE FROM {} AS t USING {} WHERE {}").format(
        table.ident(schema), _recordset(table, by, "k"), match))
