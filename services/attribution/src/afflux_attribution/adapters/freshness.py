"""What the tracking consumer waits for before it judges: "a decision can be explained
and reproduced", and no conversion is lost to timing.

The partners view. After each fetch that brought records, the consumer asks the partners
log for its end offsets and waits (a bounded time) until the partners consumer has
applied them. Every record of that fetch was on the tracking log before the question
was asked, so any partners write acknowledged before a conversion was reported is in
the view when the conversion is decided. When the view cannot be shown caught up in
time, ``fresh`` is False for that fetch: its conversions (and the traffic it would
price) are parked and retried, never judged with older terms. One offsets request per
fetch (up to hundreds of records), not one per record.

The tracking log itself (``TrackingEnds``, a ``ClickWait``). A report whose click is not
indexed waits until every other tracking partition is applied up to its end as seen
after the report was read: a click acknowledged before the report is then indexed, on
whichever partition it is. Asked only for such reports, and once per report (the ends
are kept with the parked report).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from afflux_contracts import TRACKING
from afflux_plumbing.catch_up import LogCatchUp, Positions, TopicEnds
from afflux_plumbing.consume import TrackedConsumer

log = logging.getLogger(__name__)


class PartnersFreshness:
    """Whether the records being applied were fetched before the partners view last
    caught up with its log (set by ``GatedConsumer``, read by the handler's thread)."""

    def __init__(self) -> None:
        self.fresh = False

    def __call__(self) -> bool:
        return self.fresh


class TrackingEnds:
    """The tracking log's end offsets, asked from a handler's worker thread on the
    consumer's event loop (``bind``), and whether the store's committed positions reach them."""

    def __init__(self, store: Positions, bootstrap_servers: str, timeout: float = 2.0) -> None:
        self.store, self.timeout = store, timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ends = TopicEnds(TRACKING.name, bootstrap_servers)

    def bind(self) -> None:
        """Ask on the running loop (the consumer's)."""
        self._loop = asyncio.get_running_loop()

    def ends(self) -> Mapping[int, int] | None:
        if self._loop is None:
            return None
        try:
            return asyncio.run_coroutine_threadsafe(self._asked(), self._loop).result(self.timeout)
        except (TimeoutError, KafkaError, OSError) as error:
            log.warning("could not read the tracking log's end offsets: %r", error)
            return None

    async def _asked(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in (await self._ends.ask()).items()}

    def applied(self, ends: Mapping[int, int], own_partition: int) -> bool:
        for partition, end in ends.items():
            if partition == own_partition or end == 0:
                continue
            stored = self.store.stored_offset(TRACKING.name, partition)
            if stored is None or stored < end - 1:
                return False
        return True

    async def stop(self) -> None:
        await self._ends.close()


class GatedConsumer(TrackedConsumer):
    """A ``TrackedConsumer`` that catches the partners view up after each fetch."""

    def __init__(self, *, catch_up: LogCatchUp, freshness: PartnersFreshness, timeout: float,
                 tracking_ends: TrackingEnds, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catch_up, self.freshness, self.timeout = catch_up, freshness, timeout
        self.tracking_ends = tracking_ends

    async def run(self) -> None:
        self.tracking_ends.bind()
        await super().run()

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batches = await super()._fetch()
        if batches:
            self.freshness.fresh = await self.catch_up.caught_up(self.timeout)
            if not self.freshness.fresh:
                log.info("partners view not caught up within %.1fs: deciding later", self.timeout)
        return batches

    async def stop_catch_up(self) -> None:
        await self.catch_up.stop()
        await self.tracking_ends.stop()
