"""Catching a store up with the end of a topic: "a service that catches up to the log's
end sees every write acknowledged before".

Tracking asks before it refuses a link (the link may have been handed out, or its offer
resumed, a moment ago); attribution asks before it decides. A catch-up reads the topic's
end offsets *after* the caller arrived, then waits until the store's committed
positions reach them.

Callers share rounds: a round is joinable until its offsets request is sent, one
request is in flight at a time, and the next is sent no sooner than ``ROUND_INTERVAL``
after it, so callers arriving meanwhile share the next. A stream of refused clicks costs
a request per 5 ms at most, not one per click. What a caller pays is mostly latency,
and on a busy event loop each hand-off between tasks waits a turn of the loop: a round
is one task that asks the broker directly (one request per broker, no task per request)
and wakes each caller through its own future (measured in
docs/decisions/fail-traffic-and-smart-links.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from contextlib import suppress
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, LeaderNotAvailableError, for_code
from aiokafka.protocol.offset import OffsetRequest

from afflux_plumbing.kafka_security import client_security

log = logging.getLogger(__name__)

POLL_SECONDS = 0.01
LATEST = -1
"""ListOffsets' timestamp for "the offset the next record will get"."""
ROUND_SECONDS = 60.0
"""A round nobody waits for any more ends by itself."""
ROUND_INTERVAL = 0.005
"""Seconds from one round's offsets request to the next one's, at least: callers arriving
meanwhile share the next. Each ListOffsets costs the embedded broker 110-140 µs of CPU
whatever the partitions asked (2026-12-07), and with one request in flight a stream of
refused clicks on a quick broker still asked about once per click (the fail-traffic bench:
+122 µs of broker CPU a click over the plain link). A caller after a quiet spell does not
wait; one in a stream waits at most this much more."""


class Positions(Protocol):
    """Where a reader of the topic is: a ``TrackedConsumer`` (from memory, cheap) or its
    ``TrackedApplication`` (the committed positions in PostgreSQL)."""

    def stored_offset(self, topic: str, partition: int) -> int | None: ...

    @property
    def positions_in_memory(self) -> bool:
        """``stored_offset`` answers from memory: asked on the event loop, not a thread."""
        ...


class _Round:
    """One catch-up: joinable until its offsets request is sent; each caller waits on a
    future of its own (a caller that gives up cancels only its own)."""

    def __init__(self) -> None:
        self.sent = False
        self.done = False
        self.waiters: list[asyncio.Future[bool]] = []

    def settle(self, result: bool | BaseException) -> None:
        self.done = True
        for waiter in self.waiters:
            if waiter.done():
                continue
            if isinstance(result, BaseException):
                waiter.set_exception(result)
            else:
                waiter.set_result(result)


class TopicEnds:
    """A topic's end offsets (the offset its next record will get, per partition), asked
    of the brokers that lead its partitions: one ListOffsets per broker, from the caller's
    own task (aiokafka's ``end_offsets`` adds a task per request and a retry loop)."""

    def __init__(self, topic: str, bootstrap_servers: str) -> None:
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self._client: AIOKafkaClient | None = None
        self._bootstrapped = False

    @property
    def client(self) -> AIOKafkaClient:
        """The client, made on first use: it belongs to the event loop that asks."""
        if self._client is None:
            self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap_servers, **client_security())
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            with suppress(KafkaError):
                await self._client.close()

    async def ask(self) -> dict[TopicPartition, int]:
        """The ends now; a leader that moved is looked up again, for up to a minute."""
        if not self._bootstrapped:
            await self.client.bootstrap()  # raises while no broker answers: asked again next time
            self._bootstrapped = True
        deadline = time.monotonic() + ROUND_SECONDS
        while True:
            try:
                return await self._ask(await self._leaders())
            except KafkaError as error:
                if not error.retriable or time.monotonic() > deadline:
                    raise
                await self.client.force_metadata_update()

    async def _leaders(self) -> dict[int, list[int]]:
        """The topic's partitions by the broker that leads them."""
        cluster = self.client.cluster
        if not cluster.partitions_for_topic(self.topic):
            await self.client.add_topic(self.topic)  # metadata of a topic not tracked yet
        by_leader: dict[int, list[int]] = defaultdict(list)
        for partition in sorted(cluster.partitions_for_topic(self.topic) or ()):
            leader = cluster.leader_for_partition(TopicPartition(self.topic, partition))
            if leader is None or leader < 0:
                raise LeaderNotAvailableError(f"no leader known for {self.topic}#{partition}")
            by_leader[leader].append(partition)
        return by_leader

    async def _ask(self, leaders: dict[int, list[int]]) -> dict[TopicPartition, int]:
        requests = [self.client.send(node, self._request(parts)) for node, parts in leaders.items()]
        if len(requests) > 1:
            responses = await asyncio.gather(*requests)
        else:  # one broker leads them all (or the topic has no partition yet: nothing to ask)
            responses = [await request for request in requests]
        ends: dict[TopicPartition, int] = {}
        for response in responses:
            for topic, partitions in response.topics:
                for partition, error_code, *answer in partitions:
                    if error_code:
                        raise for_code(error_code)(f"{topic}#{partition}")
                    # v0: a list of offsets; v1 and later: timestamp, offset (then leader epoch)
                    end = answer[1] if response.API_VERSION else answer[0][0]
                    ends[TopicPartition(topic, partition)] = end
        return ends

    def _request(self, partitions: list[int]) -> OffsetRequest:
        """Replica -1 (a client, not a follower), isolation 0 (read uncommitted: the
        design uses no transactions), the latest offset of each partition."""
        return OffsetRequest(-1, 0, [(self.topic, [(partition, LATEST) for partition in partitions])])


class LogCatchUp:
    """Waits until ``store`` has applied ``topic`` up to the end it has now."""

    def __init__(self, store: Positions, topic: str, bootstrap_servers: str,
                 interval: float = ROUND_INTERVAL) -> None:
        self.store = store
        self.topic = topic
        self.interval = interval
        self.ends = TopicEnds(topic, bootstrap_servers)
        self._next_round_at = 0.0
        self._round: _Round | None = None
        self._rounds: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._in_memory = store.positions_in_memory

    async def stop(self) -> None:
        for task in list(self._rounds):
            task.cancel()
        await self.ends.close()

    async def caught_up(self, timeout: float) -> bool:
        """True once every record on the topic when this was called is applied; False if
        that cannot be shown within ``timeout`` seconds (broker or database away)."""
        current = self._round
        if current is None or current.sent or current.done:
            current = self._round = _Round()
            task = asyncio.create_task(self._run(current))
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        current.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except (TimeoutError, KafkaError, OSError) as error:
            log.warning("could not catch up with %s within %.1fs: %r", self.topic, timeout, error)
            return False

    async def _run(self, round_: _Round) -> None:
        try:
            round_.settle(await self._catch_up(round_))
        except asyncio.CancelledError:
            round_.settle(KafkaError("the catch-up was stopped"))
            raise
        except Exception as error:  # every waiter learns why
            round_.settle(error)

    async def _catch_up(self, round_: _Round) -> bool:
        ends = await self._end_offsets(round_)
        deadline = time.monotonic() + ROUND_SECONDS
        while time.monotonic() < deadline:
            applied = (self._applied_through(ends) if self._in_memory
                       else await asyncio.to_thread(self._applied_through, ends))
            if applied:
                return True
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _end_offsets(self, round_: _Round) -> dict[TopicPartition, int]:
        """The topic's end offsets, asked once every caller of ``round_`` has arrived (the
        lock: the request before it is answered first; then ``interval`` after it was sent)."""
        async with self._lock:
            wait = self._next_round_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # callers arriving meanwhile join this round
            round_.sent = True
            self._next_round_at = time.monotonic() + self.interval
            return await self.ends.ask()

    def _applied_through(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if end == 0:
                continue
            stored = self.store.stored_offset(tp.topic, tp.partition)
            if stored is None or stored < end - 1:
                return False
        return True
