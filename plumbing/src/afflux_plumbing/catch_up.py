"""Catching a store up with the end of a topic: "a service that catches up to the log's
end sees every write acknowledged before".

Tracking asks before it refuses a link it does not know (the link may have been handed
out a moment ago); attribution can ask before it decides. A catch-up reads the topic's
end offsets *after* the caller arrived, then waits until the store's committed
positions reach them. Callers arriving together share one catch-up, so a burst of
clicks on a fresh link costs one offsets request, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from afflux_plumbing.kafka_security import client_security

log = logging.getLogger(__name__)

POLL_SECONDS = 0.01


class Positions(Protocol):
    """Where a reader of the topic is: a ``TrackedConsumer`` (from memory, cheap) or its
    ``TrackedApplication`` (the committed positions in PostgreSQL)."""

    def stored_offset(self, topic: str, partition: int) -> int | None: ...


class _Round:
    """One catch-up: joinable until its offsets request is sent."""

    def __init__(self) -> None:
        self.sent = False
        self.task: asyncio.Task[bool] | None = None


class LogCatchUp:
    """Waits until ``store`` has applied ``topic`` up to the end it has now."""

    def __init__(self, store: Positions, topic: str, bootstrap_servers: str) -> None:
        self.store = store
        self.topic = topic
        self._client = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                        **client_security())
        self._started = False
        self._round: _Round | None = None
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        if self._started:
            with suppress(KafkaError):
                await self._client.stop()

    async def caught_up(self, timeout: float) -> bool:
        """True once every record on the topic when this was called is applied; False if
        that cannot be shown within ``timeout`` seconds (broker or database away)."""
        current = self._round
        if current is None or current.sent or current.task is None or current.task.done():
            current = _Round()
            current.task = asyncio.create_task(self._catch_up(current))
            self._round = current
        assert current.task is not None
        try:
            return await asyncio.wait_for(asyncio.shield(current.task), timeout)
        except (TimeoutError, KafkaError, OSError) as error:
            log.warning("could not catch up with %s within %.1fs: %r", self.topic, timeout, error)
            return False

    async def _catch_up(self, round_: _Round) -> bool:
        ends = await self._end_offsets(round_)
        deadline = time.monotonic() + 60.0  # a round nobody waits for ends by itself
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._applied_through, ends):
                return True
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _end_offsets(self, round_: _Round) -> dict[TopicPartition, int]:
        async with self._lock:
            if not self._started:
                await self._client.start()
                self._started = True
        partitions = self._client.partitions_for_topic(self.topic) or set()
        if not partitions:
            await self._client.topics()  # a client with no subscription fetches metadata on demand
            partitions = self._client.partitions_for_topic(self.topic) or set()
        round_.sent = True
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        ends: dict[TopicPartition, int] = await self._client.end_offsets(tps)
        return ends

    def _applied_through(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if end == 0:
                continue
            stored = self.store.stored_offset(tp.topic, tp.partition)
            if stored is None or stored < end - 1:
                return False
        return True
