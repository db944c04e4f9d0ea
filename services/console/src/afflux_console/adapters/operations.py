"""What the operations page shows: consumer lag, dead letters and blocked keys, through
the ``afflux`` CLI's own code (``afflux_infra.lag``, ``afflux_infra.dlq`` and
``afflux_infra.blocked``), so the console and ``afflux lag`` / ``afflux dlq`` can never
disagree, and a key redriven from the page goes back in the order ``afflux dlq redrive
--key`` keeps.

Lag is read from the positions every consumer stores in PostgreSQL (the tracking
tables of every service schema the console's database user can read: all of them when
the services share a database, as ``make run`` does) against the broker's end offsets.
A dead-letter topic is read only when its end offset says it holds something, so the
page costs one metadata round trip when there are none (the usual case).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from itertools import groupby

from afflux_infra import blocked, dlq, lag
from afflux_infra.provision import afflux_topics


@dataclass(frozen=True)
class Letter:
    """One dead letter, as the page lists it."""

    topic: str
    """The topic it was read from (``afflux.x.v1``): where a redrive sends it back."""
    partition: int
    offset: int
    source: str
    reason: str
    event_type: str | None
    event_id: str | None


@dataclass(frozen=True)
class BlockedKey:
    """A key whose later records wait, in one consumer's store, behind its first held letter."""

    store: str
    """``schema.store``: the consumer's store, as the lag table names it."""
    group: str
    topic: str
    key: bytes
    held: int
    """How many of the key's records the store holds (the first and those behind it)."""
    first: blocked.HeldLetter
    """The letter the others wait for: its reason is why the key is blocked."""


class Operations:
    def __init__(self, database_url: str, bootstrap_servers: str) -> None:
        self.database_url = database_url
        self.bootstrap = bootstrap_servers

    async def lag(self) -> list[lag.PartitionLag]:
        positions = await asyncio.to_thread(lag.stored_positions, self.database_url)
        ends = await lag.end_offsets(self.bootstrap, {topic for _, topic in positions})
        return lag.lag_report(positions, ends)

    async def dead_letters(self, limit: int = 200) -> list[Letter]:
        topics = [name for name, _ in afflux_topics() if name.endswith(dlq.DLQ_SUFFIX)]
        ends = await lag.end_offsets(self.bootstrap, topics)
        holding = sorted({tp.topic for tp, end in ends.items() if end > 0})
        # Read at once: each read waits a second for more after its last letter.
        read = await asyncio.gather(
            *(dlq.dead_letters(self.bootstrap, name, idle_polls=1) for name in holding)
        )
        letters = [
            _letter(name.removesuffix(dlq.DLQ_SUFFIX), one)
            for name, found in zip(holding, read, strict=True)
            for one in found
        ]
        return letters[:limit]

    async def redrive(self, topic: str, partition: int, offset: int) -> tuple[str, int, int]:
        """Send the dead letter at ``partition``/``offset`` of ``topic``'s DLQ back to its
        source topic: where it landed."""
        letter = await dlq.dead_letter(self.bootstrap, topic, partition, offset)
        landed = await dlq.redrive(self.bootstrap, letter)
        return landed.topic, landed.partition, landed.offset

    async def blocked_keys(self) -> list[BlockedKey]:
        """Every blocked key of every store, by store, topic and key (``afflux dlq blocked``
        per key). The query runs in a worker thread: psycopg's connection is synchronous."""
        held = await asyncio.to_thread(blocked.held_letters, self.database_url)
        keys = groupby(held, key=lambda h: (h.store, h.topic, h.key))
        return [_blocked_key(store, topic, key, list(letters)) for (store, topic, key), letters in keys]

    async def held_letter(self, store: str, topic: str, key: bytes, digest: bytes) -> blocked.HeldLetter:
        """The letter ``store`` holds for the record of these bytes of ``key``; a LookupError
        when it holds none (applied or discarded meanwhile)."""
        held = await asyncio.to_thread(blocked.held_letters, self.database_url, topic, key)
        for letter in held:
            if (letter.store, letter.digest) == (store, digest):
                return letter
        raise LookupError(f"{store} holds no such letter of key {key.decode(errors='replace')!r} of {topic}")

    async def redrive_key(self, topic: str, key: bytes) -> list[tuple[str, str, int, int]]:
        """Send back every letter the stores hold for ``key`` of ``topic``, in the key's
        order, each acknowledged before the next (``dlq.held_for_key`` and ``redrive_all``,
        as ``afflux dlq redrive --key``): (the letter's DLQ position, where it landed).
        A LookupError, before anything is sent, when none is held or one left the DLQ."""
        letters = await dlq.held_for_key(self.bootstrap, self.database_url, topic, key)
        landed = await dlq.redrive_all(self.bootstrap, letters)
        return [
            (letter.position, m.topic, m.partition, m.offset)
            for letter, m in zip(letters, landed, strict=True)
        ]

    async def discard(self, store: str, topic: str, key: bytes, digest: bytes) -> str | None:
        """Stop holding, in ``store``, the letter of these bytes of ``key`` (``afflux dlq
        discard --store``): never applied, its key no longer waits for it. What the key
        still waits for in that store (the next held letter's source), or None: free. A
        LookupError when the store holds no such letter."""
        gone = await asyncio.to_thread(blocked.discard, self.database_url, topic, key, digest, store)
        if not gone:
            raise LookupError(f"{store} holds no such letter of key {key.decode(errors='replace')!r}")
        still = [
            h
            for h in await asyncio.to_thread(blocked.held_letters, self.database_url, topic, key)
            if h.store == store
        ]
        return blocked.in_key_order(still)[0].source if still else None


def _blocked_key(store: str, topic: str, key: bytes, letters: list[blocked.HeldLetter]) -> BlockedKey:
    ordered = blocked.in_key_order(letters)
    return BlockedKey(store, ordered[0].group, topic, key, len(ordered), ordered[0])


def _letter(topic: str, letter: dlq.DeadLetter) -> Letter:
    event_type = event_id = None
    try:
        document = json.loads(letter.record.value or b"")
        if isinstance(document, dict):
            event_type = str(document.get("event_type")) if document.get("event_type") else None
            event_id = str(document.get("event_id")) if document.get("event_id") else None
    except (ValueError, UnicodeDecodeError):
        pass
    return Letter(
        topic,
        letter.record.partition,
        letter.record.offset,
        letter.source,
        letter.reason,
        event_type,
        event_id,
    )
