"""Blocked keys, as every consumer's store holds them (``afflux dlq blocked``, ``redrive
--key``, ``discard``).

A consumer that dead-letters a keyed record holds it in its store's
``<store>_dead_letters`` table, and the key's later records wait behind it until its
redriven copy is applied (``afflux_plumbing.blocking``). Those rows, not the DLQ topics,
say what is still held: the topics keep every letter ever sent, including ones applied
or discarded since. The tables are found in every schema the database user can read, as
``afflux lag`` finds the positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

FIND_DEAD_LETTER_TABLES = """
SELECT c.table_schema, c.table_name FROM information_schema.columns c
WHERE c.table_name LIKE '%\\_dead\\_letters' AND c.column_name = 'digest'
  AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.table_schema, c.table_name
"""
COLUMNS = ("id, topic, key, digest, source_partition, source_offset, dead_letter, reason, consumer, letters, "
           "held_at")


@dataclass(frozen=True)
class HeldLetter:
    """A dead letter a consumer holds: its key waits for it."""

    store: str
    """``schema.store``: whose position moved past it (as ``afflux lag`` names consumers)."""
    group: str
    """The consumer group that dead-lettered it (the letter's ``dlq.consumer``)."""
    topic: str
    key: bytes
    digest: bytes
    partition: int
    offset: int
    """Where the record was first read."""
    dead_letter: str
    """Its latest letter: ``<topic>.dlq#partition@offset``."""
    reason: str
    letters: int
    """How often it was dead-lettered (more than once: a redrive failed again)."""
    held_at: datetime

    @property
    def source(self) -> str:
        return f"{self.topic}#{self.partition}@{self.offset}"

    @property
    def key_text(self) -> str:
        return self.key.decode(errors="replace")


def held_letters(database_url: str, topic: str | None = None, key: bytes | None = None) -> list[HeldLetter]:
    """Every held letter (of ``topic``, of ``key``): per store, each key's in its order."""
    found: list[HeldLetter] = []
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        for table, store in _tables(conn):
            rows = conn.execute(sql.SQL(
                "SELECT " + COLUMNS + " FROM {} WHERE status = 'held' "
                "AND (%(topic)s::text IS NULL OR topic = %(topic)s) "
                "AND (%(key)s::bytea IS NULL OR key = %(key)s) ORDER BY id").format(table),
                {"topic": topic, "key": key}).fetchall()
            found += [_held(store, row) for row in rows]
    return sorted(found, key=lambda h: (h.store, h.topic, h.key, h.partition, h.offset))


def discard(database_url: str, topic: str, key: bytes, digest: bytes,
            store: str | None = None) -> list[HeldLetter]:
    """Stop holding the letter of these bytes (in ``store``, else in every store): its key's
    later records no longer wait for it. The letters discarded."""
    discarded: list[HeldLetter] = []
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        for table, name in _tables(conn):
            if store is not None and name != store:
                continue
            rows = conn.execute(sql.SQL(
                "UPDATE {} SET status = 'discarded', settled_at = now() WHERE topic = %s AND key = %s "
                "AND digest = %s AND status = 'held' RETURNING " + COLUMNS).format(table),
                (topic, key, digest)).fetchall()
            discarded += [_held(name, row) for row in rows]
    return discarded


def in_key_order(held: list[HeldLetter]) -> list[HeldLetter]:
    """The held letters of one key, one per record (stores holding the same bytes hold the
    same record), in the order the key's records were first read."""
    first: dict[bytes, HeldLetter] = {}
    for letter in sorted(held, key=lambda h: (h.partition, h.offset, h.held_at)):
        first.setdefault(letter.digest, letter)
    return list(first.values())


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[sql.Identifier, str]]:
    rows = conn.execute(FIND_DEAD_LETTER_TABLES).fetchall()
    return [(sql.Identifier(row["table_schema"], row["table_name"]),
             f"{row['table_schema']}.{row['table_name'].removesuffix('_dead_letters')}") for row in rows]


def _held(store: str, row: dict[str, Any]) -> HeldLetter:
    return HeldLetter(store, row["consumer"], row["topic"], bytes(row["key"]), bytes(row["digest"]),
                      row["source_partition"], row["source_offset"], row["dead_letter"], row["reason"],
                      row["letters"], row["held_at"])
