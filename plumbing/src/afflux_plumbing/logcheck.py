"""Is this the log our positions came from? Checks a consumer makes before and while
it reads, so that a reset, truncated or replaced log stops it instead of being
silently skipped or re-read.

A stored position is an offset into one particular log. If the log was reset
(a broker's storage wiped, a topic deleted and re-created) or replaced (another
cluster behind the same address), the same offsets name other records: applying
them would skip records or drop new ones as "already applied". Each sign of this
raises a ``LogMismatch``; an operator decides (restore the log, or reset the
service's projection and replay).
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from psycopg import sql

from afflux_plumbing.kafka_security import client_security
from afflux_plumbing.store import TrackedApplication

REMEDY = ("Refusing to consume: reset the service's projection (or restore the log) "
          "and restart.")


class LogMismatch(RuntimeError):
    """The log is not the one this service's stored positions came from."""


class PositionBeyondLogEnd(LogMismatch):
    """The stored position is past the end of the log: the log was reset or truncated.

    Consuming on would either skip records or re-read old ones into a store that
    already has them, so the consumer stops and an operator decides."""


class LogStartPastPosition(LogMismatch):
    """The log now starts after the next record we need: records we never applied
    were deleted (retention, or a truncation), and consuming on would skip them."""


class RecordBehindPosition(LogMismatch):
    """A record at or before the stored position arrived after we sought past it: the
    client rewound (the log was reset under it), so its offsets name other records."""


class ClusterChanged(LogMismatch):
    """The broker answering is another cluster than the one the positions came from."""


def check_stored_position(tp: TopicPartition, stored: int, beginning: int, store: str) -> None:
    """Raise ``LogStartPastPosition`` if the record after ``stored`` is gone from the log."""
    if beginning > stored + 1:
        raise LogStartPastPosition(
            f"log {tp.topic}#{tp.partition} now starts at {beginning}, but {store} needs "
            f"{stored + 1} next: records it never applied were deleted. {REMEDY}"
        )


def check_record_offset(tp: TopicPartition, offset: int, expected: int, store: str) -> None:
    """Raise ``RecordBehindPosition`` if ``offset`` is before the next one we expect."""
    if offset < expected:
        raise RecordBehindPosition(
            f"record {tp.topic}#{tp.partition}@{offset} arrived, but {store} is past it "
            f"(next expected: {expected}): the log was reset under the consumer. {REMEDY}"
        )


async def cluster_id(bootstrap_servers: str) -> str:
    """The id of the cluster behind ``bootstrap_servers`` (from its metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000,
                                **client_security())
    await admin.start()
    try:
        return str((await admin.describe_cluster())["cluster_id"])
    finally:
        await admin.close()


def remember_cluster(store: TrackedApplication, seen: str) -> None:
    """Record the cluster id the first time; raise ``ClusterChanged`` if it differs later.

    The id lives in the service's own schema, beside the positions it vouches for, so a
    projection reset (dropping the schema) forgets it with them."""
    table = sql.Identifier(store.schema, "log_cluster")
    with store.tracked_recorder.datastore.transaction(commit=True) as curs:
        # A service's consumers start together: one at a time may create the table.
        curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"afflux-log-cluster:{store.schema}",))
        curs.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), "
            "cluster_id text NOT NULL, first_seen timestamptz NOT NULL DEFAULT now())").format(table))
        curs.execute(sql.SQL("INSERT INTO {} (cluster_id) VALUES (%s) ON CONFLICT DO NOTHING").format(table),
                     (seen,))
        curs.execute(sql.SQL("SELECT cluster_id FROM {}").format(table))
        row = curs.fetchone()
    recorded = row["cluster_id"] if row is not None else seen
    if recorded != seen:
        raise ClusterChanged(
            f"{store.name} consumed from cluster {recorded!r}, but the broker now answering is "
            f"cluster {seen!r}: its offsets name other records. {REMEDY}"
        )
