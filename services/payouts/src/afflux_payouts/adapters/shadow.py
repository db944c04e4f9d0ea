"""Shadow projections in PostgreSQL (``application/shadows.py``'s ``Shadows``): scratch
schemas, a consistent copy of the live projection, and a generic row-by-row diff of two
schemas.

The diff knows no table of the ledger by name: it compares the tables the projection
names (the rest of its schema is not the fold's: the event store's bookkeeping, the
plumbing's ``log_cluster``, the staff view a served service keeps there), each row by
its primary key (a table without one is compared as a multiset of rows), every column
as text, so ``5.0`` and ``5.00`` differ: a fold must be byte-identical, not
merely equal in value. A column whose default is the clock (``DEFAULT now()``)
records when a row was written, not what the log says, and is left out.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from afflux_payouts.application.shadows import RowDiff, TableDiff, TableShape

CLOCK_DEFAULT = re.compile(r"now\(\)|clock_timestamp|current_timestamp|statement_timestamp|"
                           r"transaction_timestamp|localtimestamp", re.IGNORECASE)
SAMPLE_LIMIT = 20
"""Differing rows shown per table (every one is counted)."""


@contextmanager
def connect(database_url: str) -> Iterator[psycopg.Connection[dict[str, object]]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


class PostgresShadows:
    """``Shadows`` in the database at ``database_url``."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def scratch_schema(self, kind: str) -> str:
        """A fresh schema name for a shadow projection, e.g. ``payouts_replay_3f9a1c``."""
        return f"payouts_{kind}_{secrets.token_hex(4)}"

    def schema_exists(self, schema: str) -> bool:
        with connect(self.database_url) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
            return found is not None

    def drop_schema(self, schema: str) -> None:
        with connect(self.database_url) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def projection_tables(self, schema: str, names: Sequence[str]) -> list[TableShape]:
        """The tables of ``schema`` among ``names`` (those it has)."""
        with connect(self.database_url) as conn:
            tables = conn.execute(
                "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", (schema,)).fetchall()
            shapes = []
            for table in tables:
                name = str(table["relname"])
                if name not in names:
                    continue
                shapes.append(TableShape(name, _columns(conn, table["oid"]), _key(conn, table["oid"])))
            return shapes

    def snapshot(self, live: str, into: str, tables: Sequence[TableShape],
                     tracking_table: str) -> dict[str, int]:
        """Copy ``tables`` of the live schema into ``into`` and return the live positions
        (``topic#partition`` -> last applied offset), all from one snapshot of the database:
        the copy is exactly what the live projection held at those positions, even while it
        goes on consuming."""
        with connect(self.database_url) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            positions = {
                str(row["application_name"]): int(str(row["last"]))
                for row in conn.execute(sql.SQL(
                    "SELECT application_name, max(notification_id) AS last FROM {} GROUP BY application_name"
                ).format(sql.Identifier(live, tracking_table))).fetchall()
            }
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(into)))
            for table in tables:
                conn.execute(sql.SQL("CREATE TABLE {} AS TABLE {}").format(
                    sql.Identifier(into, table.name), sql.Identifier(live, table.name)))
            return positions

    def diff_schemas(self, live: str, replay: str, names: Sequence[str],
                         limit: int = SAMPLE_LIMIT) -> list[TableDiff]:
        """Compare every projection table of ``live`` with ``replay``'s, ordered by table."""
        live_tables = {t.name: t for t in self.projection_tables(live, names)}
        replay_tables = {t.name: t for t in self.projection_tables(replay, names)}
        diffs = []
        with connect(self.database_url) as conn:
            for name in sorted(set(live_tables) | set(replay_tables)):
                shape, other = live_tables.get(name), replay_tables.get(name)
                if shape is None or other is None:
                    side = "replay" if shape is None else "live"
                    found = shape or other
                    assert found is not None
                    count = _count(conn, live if shape else replay, name)
                    diffs.append(TableDiff(name, found.key, count, problem=f"table only in {side}"))
                    continue
                diffs.append(_diff_table(conn, live, replay, shape, other, limit))
        return diffs

    def partner_ids(self, schemas: Sequence[str], names: Sequence[str]) -> list[str]:
        """Every partner_id any projection table of ``schemas`` holds, sorted."""
        found: set[str] = set()
        with connect(self.database_url) as conn:
            for schema in schemas:
                for table in self.projection_tables(schema, names):
                    if "partner_id" not in table.columns:
                        continue
                    statement = sql.SQL("SELECT DISTINCT partner_id FROM {} WHERE partner_id IS NOT NULL")
                    rows = conn.execute(statement.format(sql.Identifier(schema, table.name))).fetchall()
                    found.update(str(row["partner_id"]) for row in rows)
        return sorted(found)



def _columns(conn: psycopg.Connection[dict[str, object]], oid: object) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS default FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attname", (oid,)).fetchall()
    return tuple(str(r["attname"]) for r in rows if not CLOCK_DEFAULT.search(str(r["default"] or "")))


def _key(conn: psycopg.Connection[dict[str, object]], oid: object) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "ON true JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n", (oid,)).fetchall()
    return tuple(str(r["attname"]) for r in rows)


def _count(conn: psycopg.Connection[dict[str, object]], schema: str, table: str) -> int:
    statement = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, table))
    row = conn.execute(statement).fetchone()
    return int(str(row["n"])) if row else 0


def _diff_table(conn: psycopg.Connection[dict[str, object]], live: str, replay: str, shape: TableShape,
                other: TableShape, limit: int) -> TableDiff:
    columns = [c for c in shape.columns if c in other.columns]
    missing = sorted(set(shape.columns) ^ set(other.columns))
    # A copy of the live table (``snapshot``) has no constraints: the key is the replay's.
    primary = shape.key or other.key
    key = list(primary) or columns  # no key: the whole row is its identity
    statement = _diff_statement(live, replay, shape.name, key, columns, keyed=bool(primary))
    rows = conn.execute(statement, {"limit": limit}).fetchall()
    result = TableDiff(shape.name, primary, int(str(rows[0]["total"])) if rows else 0)
    if missing:
        result.problem = "columns not on both sides: " + ", ".join(missing)
    for row in rows:
        live_values, replay_values = row["live_values"], row["replay_values"]
        result.rows.append(RowDiff(
            key={k: _text(row["live_key"] or row["replay_key"], i) for i, k in enumerate(key)},
            live=_named(columns, live_values),
            replay=_named(columns, replay_values),
        ))
    return result


def _named(columns: Sequence[str], values: object) -> dict[str, str | None] | None:
    return dict(zip(columns, values, strict=True)) if isinstance(values, list) else None


def _text(values: object, index: int) -> str | None:
    assert isinstance(values, list)
    value = values[index]
    return None if value is None else str(value)


def _diff_statement(live: str, replay: str, table: str, key: Sequence[str], columns: Sequence[str],
                    *, keyed: bool) -> sql.Composed:
    """Rows whose key is on one side only, or whose columns differ as text; the first
    %(limit)s in key order, each with the total count. A table without a key is
    compared as a multiset: a row repeated a different number of times differs."""
    as_text = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in key)
    values = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
    # Without a key, number identical rows so that duplicates pair up one to one.
    ordinal = sql.SQL("" if keyed else ", row_number() OVER (PARTITION BY ARRAY[{}] ) AS dup").format(values)
    match = sql.SQL("l.k = r.k" if keyed else "l.k = r.k AND l.dup = r.dup")
    side = sql.SQL("SELECT ARRAY[{keys}] AS k, ARRAY[{values}] AS v{ordinal} FROM {table}")
    return sql.SQL(
        "WITH l AS ({left}), r AS ({right}) "
        "SELECT l.k AS live_key, r.k AS replay_key, l.v AS live_values, r.v AS replay_values, "
        "count(*) OVER () AS total FROM l FULL JOIN r ON {match} "
        "WHERE l.v IS DISTINCT FROM r.v ORDER BY coalesce(l.k, r.k) LIMIT %(limit)s"
    ).format(
        left=side.format(keys=as_text, values=values, ordinal=ordinal, table=sql.Identifier(live, table)),
        right=side.format(keys=as_text, values=values, ordinal=ordinal, table=sql.Identifier(replay, table)),
        match=match,
    )
