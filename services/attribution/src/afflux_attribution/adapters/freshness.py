"""Deciding with the partners view caught up: "a decision can be explained and
reproduced".

The tracking consumer, after each fetch that brought records, asks the partners log
for its end offsets and waits (a bounded time) until the partners consumer has
applied them. Every record of that fetch was on the tracking log before the question
was asked, so any partners write acknowledged before a conversion was reported is in
the view when the conversion is decided. When the view cannot be shown caught up in
time, ``fresh`` is False for that fetch: conversions (and clicks to price) of it are
parked and retried, never decided with older terms. One offsets request per fetch
(up to hundreds of records), not one per record.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.consume import TrackedConsumer

log = logging.getLogger(__name__)


class PartnersFreshness:
    """Whether the records being applied were fetched before the partners view last
    caught up with its log (set by ``GatedConsumer``, read by the handler's thread)."""

    def __init__(self) -> None:
        self.fresh = False

    def __call__(self) -> bool:
        return self.fresh


class GatedConsumer(TrackedConsumer):
    """A ``TrackedConsumer`` that catches the partners view up after each fetch."""

    def __init__(self, *, catch_up: LogCatchUp, freshness: PartnersFreshness, timeout: float,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catch_up, self.freshness, self.timeout = catch_up, freshness, timeout

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batches = await super()._fetch()
        if batches:
            self.freshness.fresh = await self.catch_up.caught_up(self.timeout)
            if not self.freshness.fresh:
                log.info("partners view not caught up within %.1fs: deciding later", self.timeout)
        return batches

    async def stop_catch_up(self) -> None:
        await self.catch_up.stop()

