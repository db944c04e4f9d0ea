"""The delivery worker: owed deliveries get their URL, due ones get called.

Each round it first *resolves* a batch of owed deliveries: the postback in force
(the relationship's, else the partner's global one) filled with the decision's facts
(the click's subs among them), or skipped; what the views do not know yet is resolved
after one catch-up with the partners log for the whole batch. Then it
*dispatches* due ones, each call a task of its own under its host's semaphore: up to
``per_host`` calls in flight per host, and claims of ``AHEAD`` times that at once for
a host whose claimed calls fell to half of it, so a fast partner's queue never runs
dry between rounds and a round is not spent on a handful; a host with more claimed
is left out of the next claims, so a slow partner fills only its own slots and every
other host's postbacks go on. A claim that waited so long for a slot that its lease
could end during the call is released unsent (claimed again next round), so no other
instance can call it too. Calls that end together are recorded in one transaction;
a worker that dies leaves its claimed rows to be claimed again when their lease ends
(at-least-once: the ``Idempotency-Key`` lets the partner drop a repeat).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from afflux_plumbing.outage import OUTAGES, Backoff, Health
from afflux_postbacks.application.schedule import Delivery, Recorded, Schedule, record_calls, resolve_owed
from afflux_postbacks.domain.macros import idempotency_key
from afflux_postbacks.domain.retries import AttemptResult, RetryPolicy
from afflux_postbacks.domain.routing import ATTRIBUTED

log = logging.getLogger(__name__)

ATTEMPTS = Counter("afflux_postback_attempts_total", "Partner postback calls", ["outcome"])
OUTCOMES = Counter("afflux_postback_outcomes_total", "Partner postbacks ended", ["status"])
HOST_PAUSES = Counter("afflux_postback_host_pauses_total",
                      "Hosts paused after failing until a postback was given up (alert on it)")
PAUSED_HOSTS = Gauge("afflux_postback_paused_hosts",
                     "Partner hosts paused now, waiting for an operator to resume them (alert while > 0)")
PAUSED_EVERY = 10.0
"""Seconds between readings of the paused hosts for the gauge (they are in PostgreSQL, so
the gauge is right after a restart and whichever instance resumed them)."""
CALL_SECONDS = Histogram("afflux_postback_call_seconds", "Partner postback call latency",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

Call = Callable[[str, str, bytes | None], Awaitable[AttemptResult]]
"""(url, idempotency key, JSON body or None for a GET) -> what the call gave."""
AHEAD = 16
"""A host's claims come ``AHEAD * per_host`` at a time, when it has half that or fewer: a
fast host's calls end faster than a round claims, a slow host's tail waits too long and
is released (see ``_deliver``)."""


class CatchUp(Protocol):
    async def caught_up(self, timeout: float) -> bool: ...


class DeliveryWorker:
    """Delivers the store's owed postbacks through ``call``."""

    def __init__(self, store: Schedule, call: Call, policy: RetryPolicy, *, per_host: int,
                 partners_log: CatchUp, lease: float, call_timeout: float,
                 batch: int = 500, idle_delay: float = 0.05) -> None:
        """``lease``: how long a claimed delivery stays this worker's (how long a crash
        delays what was claimed); a claim is called only while a whole ``call_timeout``
        still fits in it."""
        self.store = store
        self.call = call
        self.policy = policy
        self.per_host = per_host
        self.partners_log = partners_log
        self.batch = batch
        self.lease = lease
        self.call_timeout = call_timeout
        self.idle_delay = idle_delay
        self.health = Health()
        self.in_flight: dict[str, int] = defaultdict(int)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._ended: asyncio.Queue[tuple[Delivery, AttemptResult, asyncio.Future[Recorded]]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_up = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused_read_at = float("-inf")

    def wake(self) -> None:
        """Look for work now (something was committed: a decision owed, a host resumed)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_up.set)

    async def run(self) -> None:
        """Resolve and dispatch until cancelled; outages are waited out (not-ready meanwhile)."""
        self._loop = asyncio.get_running_loop()
        backoff = Backoff()
        recorder = asyncio.create_task(self._recorder(), name="postback recorder")
        try:
            while True:
                try:
                    resolved = await self._resolve_owed()
                    dispatched = await self._dispatch_due()
                    await self._count_paused()
                    self.health.recovered()
                    backoff.reset()
                except OUTAGES as error:
                    self.health.failed("postback worker", error)
                    await backoff.wait()
                    continue
                except Exception as error:  # a bug must not stop deliveries silently
                    log.exception("postback worker round failed")
                    self.health.failed("postback worker", error)
                    await backoff.wait()
                    continue
                if resolved == 0 and dispatched == 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake_up.wait(), self.idle_delay)
                    self._wake_up.clear()
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with suppress(asyncio.CancelledError, Exception):
                    await task
            recorder.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await recorder

    async def _count_paused(self) -> None:
        now = asyncio.get_running_loop().time()
        if now >= self._paused_read_at + PAUSED_EVERY:
            PAUSED_HOSTS.set(await asyncio.to_thread(self.store.paused_count))
            self._paused_read_at = now

    async def _resolve_owed(self) -> int:
        owed = await asyncio.to_thread(self.store.claim_owed, self.batch, self.lease)
        if owed:
            unresolved, skipped = await asyncio.to_thread(resolve_owed, self.store, owed, final=False)
            if unresolved:
                skipped += await self._resolve_after_catching_up(unresolved)
            if skipped:
                OUTCOMES.labels("skipped").inc(skipped)
        return len(owed)

    async def _resolve_after_catching_up(self, owed: list[Delivery]) -> int:
        """Deliveries whose postback or offer the views lack: the decision may have come
        before them, so read the partners log to its end before concluding they are not
        there. Returns how many were skipped."""
        if not await self.partners_log.caught_up(3.0):
            await asyncio.to_thread(self.store.defer, [delivery.delivery_id for delivery in owed], 1.0)
            return 0
        _, skipped = await asyncio.to_thread(resolve_owed, self.store, owed, final=True)
        return skipped

    async def _dispatch_due(self) -> int:
        claimable = self.per_host * AHEAD
        busy = [host for host, count in self.in_flight.items() if count > claimable // 2]
        due = await asyncio.to_thread(self.store.claim_due, busy, claimable, self.batch, self.lease)
        # A whole call must fit in the lease, with a margin for recording it.
        usable_until = asyncio.get_running_loop().time() + self.lease - self.call_timeout - 1.0
        for delivery in due:
            host = delivery.host or ""
            self.in_flight[host] += 1
            task = asyncio.create_task(self._deliver(delivery, host, usable_until))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _deliver(self, delivery: Delivery, host: str, usable_until: float) -> None:
        try:
            assert delivery.url is not None
            slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
            async with slots:  # claims go beyond the host's free slots: they wait here
                if asyncio.get_running_loop().time() > usable_until:
                    await asyncio.to_thread(self.store.defer, [delivery.delivery_id], 0.0)
                    return
                result = await self.call(delivery.url, _idempotency_key(delivery),
                                         delivery.body.encode() if delivery.body is not None else None)
            CALL_SECONDS.observe(result.latency)
            ATTEMPTS.labels("ok" if result.ok else "refused" if result.refused else "error").inc()
            recorded = await self._record(delivery, result)
            if recorded.status != "pending":
                OUTCOMES.labels(recorded.status).inc()
            if recorded.paused:
                HOST_PAUSES.inc()
                self._paused_read_at = float("-inf")  # the gauge follows at the next round
                log.error("postbacks to host %s are paused: they kept failing until conversion %s was "
                          "given up (%s); resume with POST /v1/postbacks/paused-hosts/%s/resume",
                          host, delivery.conversion_id, result.error, host)
            if recorded.status == "failed":
                log.warning("postback %s of conversion %s to partner %s failed for good: %s",
                            delivery.delivery_id, delivery.conversion_id, delivery.partner_id, result.error)
        except Exception:
            log.exception("delivering %s failed; it is claimed again when its lease ends",
                          delivery.delivery_id)
        finally:
            self.in_flight[host] -= 1
            left = self.in_flight[host]
            if left <= 0:
                del self.in_flight[host]
                self._slots.pop(host, None)
            if left <= self.per_host * AHEAD // 2:  # the host takes claims again
                self.wake()

    async def _record(self, delivery: Delivery, result: AttemptResult) -> Recorded:
        """Hand the call to the recorder, which writes the calls that ended meanwhile together."""
        recorded: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        await self._ended.put((delivery, result, recorded))
        return await recorded

    async def _recorder(self) -> None:
        while True:
            batch = [await self._ended.get()]
            while not self._ended.empty() and len(batch) < self.batch:
                batch.append(self._ended.get_nowait())
            calls = [(delivery, result) for delivery, result, _ in batch]
            backoff = Backoff()
            while True:
                try:
                    statuses = await asyncio.to_thread(record_calls, self.store, calls, self.policy,
                                                       datetime.now(UTC))
                    break
                except OUTAGES as error:
                    self.health.failed(f"recording {len(calls)} postback calls", error)
                    await backoff.wait()
                except Exception as error:
                    statuses = []
                    for _, _, recorded in batch:
                        if not recorded.done():
                            recorded.set_exception(error)
                    break
            for (_, _, recorded), status in zip(batch, statuses, strict=False):
                if not recorded.done():
                    recorded.set_result(status)


def _idempotency_key(delivery: Delivery) -> str:
    """Stable across retries: from the conversion and URL for its attribution (as it always
    was), from the delivery itself for a status change (its URL may not differ)."""
    assert delivery.url is not None
    subject = delivery.conversion_id if delivery.kind == ATTRIBUTED else delivery.delivery_id
    return idempotency_key(subject, delivery.url)
