"""A dead letter blocks its key: the key's later records wait behind it, in order.

Kafka orders records per key only. A consumer that dead-lettered a record and went on
would apply the key's later records before it (a conversion's status change before the
conversion). So when a consumer sends a keyed record to ``<topic>.dlq`` its store
records the letter as *held* (the store's ``<name>_dead_letters`` table), in the
transaction that moves its position past the record: a crash keeps both or neither.
While a key has held letters, each later record of it goes to the DLQ too, with the
reason ``behind <topic>#<partition>@<offset>`` (the key's first held record, its
*head*), and is held in its turn; other keys' records flow on, so the partition never
stalls.

A held letter is known by its key and the digest of its bytes: a redrive re-publishes
the same bytes, so its copy is recognised at whatever offset it lands. The head's copy
is applied, settling its row in the same transaction (or, failing again, goes back to
the DLQ and stays the head); a copy of any other held letter goes behind the head again.
The key is free once its last held letter is settled: applied, or discarded by an
operator (``afflux dlq discard``), after which a copy of that letter is a record like
any other.

What never blocks and is never held: a record without a key (Kafka gives keyless records
no order: a producer spreads them over the partitions, and blocking their partition
would stall every key on it), and a record of a type the consumer has no handler for
(it changes nothing here, so there is no order to keep).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from psycopg import sql

from afflux_plumbing.metrics import BLOCKED_KEYS
from afflux_plumbing.positions import Position
from afflux_plumbing.store import TrackedApplication, Write

Key = tuple[str, bytes]
"""(topic, key bytes): what a dead letter blocks."""


class LogRecord(Protocol):
    """A record as read from the log (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Held:
    """A held dead letter: its row, the bytes' digest, where the record was first read,
    and where on the DLQ its latest letter is."""

    id: int
    digest: bytes
    source: Position
    dead_letter: str


def digest(value: bytes | None) -> bytes:
    """What identifies a record's bytes (a tombstone's are empty)."""
    return hashlib.sha256(value or b"").digest()


HEAD, BEHIND, FREE = "head", "behind", "free"


def verdict(held: Sequence[Held], value: bytes | None, handled: bool) -> str:
    """What a record of a key with ``held`` letters is: ``HEAD``, the copy of the key's
    first held letter (apply it, settling that letter); ``BEHIND``, to be held behind the
    head; or ``FREE``, a record like any other (nothing is held, or the record changes
    nothing here: ``handled`` is False for a decoded record of a type without a handler)."""
    if not held:
        return FREE
    if digest(value) == held[0].digest:
        return HEAD
    return BEHIND if handled else FREE


class KeyBlocks:
    """The keys one consumer's store holds dead letters of.

    The rows in PostgreSQL say what is held; the set in memory (``blocked``) lets the
    hot path pay a set lookup per record instead of a query per run. Only the consumer
    that owns a partition holds its keys, so the set misses nothing once loaded at each
    (re)assignment; a key an operator freed meanwhile is found free at its next record."""

    def __init__(self, store: TrackedApplication, group_id: str, topics: Sequence[str], *,
                 counted: bool = True) -> None:
        """``counted``: report the blocked keys on the ``afflux_blocked_keys`` gauge (not
        for a shadow fold, whose blocks are a replay's)."""
        self.store = store
        self.group_id = group_id
        self.topics = list(topics)
        self.counted = counted
        self.blocked: set[Key] = set()
        self._table = store.tracked_recorder.dead_letters_table

    def may_block(self, record: LogRecord) -> bool:
        """Whether ``record``'s key may have held letters (then ``held`` says for sure)."""
        return record.key is not None and (record.topic, record.key) in self.blocked

    def load(self) -> None:
        """The consumer's blocked keys, from its store (in a worker thread)."""
        rows = self.store.query(sql.SQL(
            "SELECT DISTINCT topic, key FROM {} WHERE status = 'held' AND topic = ANY(%s)"
        ).format(self._table), (self.topics,))
        self.blocked = {(row["topic"], bytes(row["key"])) for row in rows}
        self._count()

    def held(self, topic: str, key: bytes) -> list[Held]:
        """The key's held letters, head first (in a worker thread)."""
        rows = self.store.query(sql.SQL(
            "SELECT id, digest, source_partition, source_offset, dead_letter FROM {} "
            "WHERE topic = %s AND key = %s AND status = 'held' ORDER BY id"
        ).format(self._table), (topic, key))
        return [Held(row["id"], bytes(row["digest"]),
                     Position(topic, row["source_partition"], row["source_offset"]), row["dead_letter"])
                for row in rows]

    def holding(self, record: LogRecord, dead_letter: str, reason: str) -> Write:
        """Hold ``record``'s letter (written with its position). A letter of the same bytes
        already held (the head failing again, a copy redriven too early) keeps its place
        and takes the new letter and reason."""
        assert record.key is not None
        return Write(sql.SQL(
            "INSERT INTO {} (topic, key, digest, source_partition, source_offset, dead_letter, reason, "
            "consumer) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (topic, key, digest) WHERE status = 'held' DO UPDATE SET "
            "dead_letter = excluded.dead_letter, reason = excluded.reason, letters = {}.letters + 1"
        ).format(self._table, self._table), (record.topic, record.key, digest(record.value), record.partition,
                                             record.offset, dead_letter, reason, self.group_id))

    def settling(self, held: Held) -> Write:
        """Mark ``held`` applied (written with the run that applies its copy)."""
        return Write(sql.SQL("UPDATE {} SET status = 'applied', settled_at = now() WHERE id = %s "
                             "AND status = 'held'").format(self._table), (held.id,))

    def block(self, topic: str, key: bytes) -> None:
        self.blocked.add((topic, key))
        self._count()

    def free(self, topic: str, key: bytes) -> None:
        self.blocked.discard((topic, key))
        self._count()

    def _count(self) -> None:
        if not self.counted:
            return
        for topic in self.topics:
            BLOCKED_KEYS.labels(self.group_id, topic).set(sum(1 for t, _ in self.blocked if t == topic))
