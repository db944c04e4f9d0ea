"""Driving attribution's store the way its consumers do, without a broker: records in
runs (a lone record is a run of one), each run committed by ``apply_run``."""

from __future__ import annotations

import itertools
from typing import Any

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import Envelope
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Record, record_of

offsets = itertools.count()


def records(*messages: Envelope[Any], partition: int = 0) -> list[Record[Any]]:
    """``messages`` as consecutive records of one partition of their topic."""
    return [record_of(m, Position(m.payload.topic.name, partition, next(offsets))) for m in messages]


def deliver(store: Attribution, *messages: Envelope[Any], partition: int = 0) -> list[bool]:
    """Apply ``messages`` as one run, as the consumer does."""
    return store.apply_run(records(*messages, partition=partition))


def one_by_one(store: Attribution, *messages: Envelope[Any], partition: int = 0) -> None:
    """Apply ``messages`` as runs of one (the consumer's path after a failed run)."""
    for message in messages:
        deliver(store, message, partition=partition)
