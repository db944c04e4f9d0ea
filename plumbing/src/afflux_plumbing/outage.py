"""Riding out outages: a broker or database that is away for a while never ends a
service. Its workers retry with capped exponential backoff, report not-ready on
/readyz while they fail, and resume where they stopped once it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from aiokafka.errors import KafkaError
from eventsourcing.persistence import InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, psycopg.OperationalError,
                                                 psycopg.InterfaceError)
"""What PostgreSQL raises while it cannot be reached (eventsourcing wraps psycopg's)."""
OUTAGES: tuple[type[Exception], ...] = (*DATABASE_OUTAGES, KafkaError, asyncio.TimeoutError, OSError)
"""What a worker retries rather than dies of: the database or the broker is away."""


@dataclass
class Backoff:
    """Waits that double from ``first`` up to ``cap`` seconds, with jitter so that a
    fleet of workers does not return in lock-step; ``reset`` after a success."""

    first: float = 0.2
    cap: float = 10.0
    failures: int = 0

    def reset(self) -> None:
        self.failures = 0

    async def wait(self) -> None:
        delay = min(self.cap, self.first * 2 ** min(self.failures, 16))
        self.failures += 1
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))


@dataclass
class Health:
    """Whether a worker can reach what it needs; readiness is the AND of its workers'."""

    failing_since: float | None = None
    last_error: str = field(default="")

    @property
    def ok(self) -> bool:
        return self.failing_since is None

    def failed(self, what: str, error: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = f"{what}: {error!r}"
        log.warning("%s failed, retrying: %r", what, error)

    def recovered(self) -> None:
        if self.failing_since is not None:
            log.info("recovered after %.1fs (%s)", time.monotonic() - self.failing_since, self.last_error)
        self.failing_since = None


async def retrying(call: Callable[[], Awaitable[T]], health: Health, what: str,
                   errors: tuple[type[Exception], ...] = OUTAGES, backoff: Backoff | None = None) -> T:
    """``await call()`` until it stops raising one of ``errors``, reporting on ``health``."""
    backoff = backoff or Backoff()
    while True:
        try:
            result = await call()
        except errors as error:
            health.failed(what, error)
            await backoff.wait()
            continue
        health.recovered()
        return result
