"""The delivery worker: owed deliveries get their URL, due ones get called.

Each round it first *resolves* owed deliveries: the relationship's postback URL
(caught up with the partners log before concluding there is none) filled with the
decision's facts and the click's subs (caught up with the tracking log when the URL
uses a sub the view does not have), then *dispatches* due ones, each call a task of
its own under its host's semaphore. A host with ``per_host`` calls in flight is
left out of the next claims, so a slow partner fills only its own slots and every
other host's postbacks go on. Outcomes are recorded by the store; a worker that
dies leaves its claimed rows to be claimed again when their lease ends
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

from prometheus_client import Counter, Histogram

from afflux_plumbing.outage import OUTAGES, Backoff, Health
from afflux_postbacks.application.postbacks import Delivery, Postbacks
from afflux_postbacks.domain.macros import idempotency_key, uses_subs
from afflux_postbacks.domain.retries import AttemptResult, RetryPolicy

log = logging.getLogger(__name__)

ATTEMPTS = Counter("afflux_postback_attempts_total", "Partner postback calls", ["outcome"])
OUTCOMES = Counter("afflux_postback_outcomes_total", "Partner postbacks ended", ["status"])
HOST_PAUSES = Counter("afflux_postback_host_pauses_total",
                      "Hosts paused after failing until a postback was given up (alert on it)")
CALL_SECONDS = Histogram("afflux_postback_call_seconds", "Partner postback call latency",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

Call = Callable[[str, str], Awaitable[AttemptResult]]


class CatchUp(Protocol):
    async def caught_up(self, timeout: float) -> bool: ...


class DeliveryWorker:
    """Delivers the store's owed postbacks through ``call``."""

    def __init__(self, store: Postbacks, call: Call, policy: RetryPolicy, *, per_host: int,
                 partners_log: CatchUp, tracking_log: CatchUp, lease: float, batch: int = 200,
                 idle_delay: float = 0.05) -> None:
        """``lease``: how long a claimed delivery stays this worker's; longer than a call
        and its wait for a slot, and how long a crash delays what was claimed."""
        self.store = store
        self.call = call
        self.policy = policy
        self.per_host = per_host
        self.partners_log = partners_log
        self.tracking_log = tracking_log
        self.batch = batch
        self.lease = lease
        self.idle_delay = idle_delay
        self.health = Health()
        self.in_flight: dict[str, int] = defaultdict(int)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._ended: asyncio.Queue[tuple[Delivery, AttemptResult, asyncio.Future[tuple[str, bool]]]] = (
            asyncio.Queue())
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_up = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        store.on_commit(self._wake)

    def _wake(self) -> None:
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

    async def _resolve_owed(self) -> int:
        owed = await asyncio.to_thread(self.store.claim_owed, self.batch, self.lease)
        if owed:
            unresolved = await asyncio.to_thread(self.store.resolve_known, owed)
            await asyncio.gather(*(self._resolve(delivery) for delivery in unresolved))
        return len(owed)

    async def _resolve(self, delivery: Delivery) -> None:
        """One delivery whose facts the views lack: catch up with the log that brings them."""
        template = await asyncio.to_thread(self.store.postback_url, delivery.offer_id, delivery.partner_id)
        if not template:
            # The decision came after its relationship: catch up before saying there is none.
            if not await self.partners_log.caught_up(3.0):
                await asyncio.to_thread(self.store.defer, delivery, 1.0)
                return
            template = await asyncio.to_thread(self.store.postback_url, delivery.offer_id,
                                               delivery.partner_id)
        if not template:
            await asyncio.to_thread(self.store.skip, delivery, "the relationship has no postback URL")
            OUTCOMES.labels("skipped").inc()
            return
        subs = None
        if uses_subs(template):
            transaction_id = delivery.facts.get("transaction_id") or ""
            subs = await asyncio.to_thread(self.store.click_subs, transaction_id)
            if subs is None and await self.tracking_log.caught_up(2.0):
                subs = await asyncio.to_thread(self.store.click_subs, transaction_id)
        await asyncio.to_thread(self.store.resolve, delivery, template, subs)

    async def _dispatch_due(self) -> int:
        busy = [host for host, count in self.in_flight.items() if count >= self.per_host]
        due = await asyncio.to_thread(self.store.claim_due, busy, self.per_host, self.batch,
                                      self.lease)
        for delivery in due:
            host = delivery.host or ""
            self.in_flight[host] += 1
            task = asyncio.create_task(self._deliver(delivery, host))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _deliver(self, delivery: Delivery, host: str) -> None:
        try:
            assert delivery.url is not None
            slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
            async with slots:  # a claim may go beyond the host's free slots: it waits here
                result = await self.call(delivery.url, idempotency_key(delivery.conversion_id, delivery.url))
            CALL_SECONDS.observe(result.latency)
            ATTEMPTS.labels("ok" if result.ok else "refused" if result.refused else "error").inc()
            status, paused = await self._record(delivery, result)
            if status != "pending":
                OUTCOMES.labels(status).inc()
            if paused:
                HOST_PAUSES.inc()
                log.error("postbacks to host %s are paused: they kept failing until conversion %s was "
                          "given up (%s); resume with POST /v1/postbacks/paused-hosts/%s/resume",
                          host, delivery.conversion_id, result.error, host)
            if status == "failed":
                log.warning("postback %s of conversion %s to partner %s failed for good: %s",
                            delivery.delivery_id, delivery.conversion_id, delivery.partner_id, result.error)
        except Exception:
            log.exception("delivering %s failed; it is claimed again when its lease ends",
                          delivery.delivery_id)
        finally:
            self.in_flight[host] -= 1
            if self.in_flight[host] <= 0:
                del self.in_flight[host]
                self._slots.pop(host, None)
            self._wake()

    async def _record(self, delivery: Delivery, result: AttemptResult) -> tuple[str, bool]:
        """Hand the call to the recorder, which writes the calls that ended meanwhile together."""
        recorded: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
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
                    statuses = await asyncio.to_thread(self.store.record_attempts, calls, self.policy,
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
