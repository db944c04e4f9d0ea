"""The transactional outbox: publish a service's stored events from its notification log.

A state change and its outbox entry are the same row (eventsourcing's
notification log), so nothing is published that was not committed and nothing
committed goes unpublished. The relay publishes in notification order, awaits
every ack, then records how far it got. A crash between the two re-sends the
batch with the same event_ids, which consumers drop.

One relay per service publishes at a time: it holds a PostgreSQL advisory lock on
a connection of its own and checks, before each batch, that the connection lives
and the lock is still its own. If another relay recorded a position first (the
lock changed hands mid-batch), it steps back and waits for the lock again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from afflux_contracts import EVENT_TYPES, Envelope, Event, derived_event_id
from afflux_plumbing.actors import actor_of
from afflux_plumbing.metrics import RELAY_POSITION, RELAYED
from afflux_plumbing.outage import OUTAGES, Backoff, Health
from afflux_plumbing.publish import Publisher
from afflux_plumbing.store import TrackedApplication

log = logging.getLogger(__name__)

ToEnvelope = Callable[[DomainEventProtocol[Any]], Envelope[Any] | None]
"""Maps a stored domain event to the contract envelope to publish (None: internal only)."""

RELAY_TRACKING_NAME = "outbox-relay"


class LockLost(Exception):
    """This relay no longer holds (or never held) the service's relay lock: another may
    be publishing, so it steps back and waits for the lock again."""


class OutboxRelay:
    """Publishes ``app``'s new domain events, mapped by ``to_envelope``, in order."""

    def __init__(
        self,
        app: TrackedApplication,
        publisher: Publisher,
        to_envelope: ToEnvelope,
        *,
        database_url: str,
        batch_size: int = 500,
        idle_delay: float = 0.05,
        lock_poll: float = 1.0,
    ) -> None:
        self.app = app
        self.publisher = publisher
        self.to_envelope = to_envelope
        self.database_url = database_url
        self.batch_size = batch_size
        self.idle_delay = idle_delay
        self.lock_poll = lock_poll
        self.health = Health()
        self.holds_lock = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_events = asyncio.Event()
        app.on_commit(self._wake)

    @property
    def lock_key(self) -> str:
        return f"afflux-outbox-relay:{self.app.schema}.{self.app.name}"

    async def run(self) -> None:
        """Relay until cancelled, but only while this process holds the service's relay
        lock: N instances of a service still publish each event in order, once.

        An outage of the broker or the database is retried with backoff (not-ready
        meanwhile); a lost lock sends the relay back to waiting for it."""
        self._loop = asyncio.get_running_loop()
        backoff = Backoff()
        while True:
            try:
                await self._relay_while_locked(backoff)
            except LockLost as lost:
                log.warning("outbox relay of %s stepped back: %s", self.app.name, lost)
                await asyncio.sleep(self.lock_poll)  # let the relay that took over keep it
            except OUTAGES as error:
                self.health.failed(f"outbox relay of {self.app.name}", error)
                await backoff.wait()

    async def _relay_while_locked(self, backoff: Backoff) -> None:
        async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as lock:
            try:
                await self._wait_for_lock(lock)
                while True:
                    await self._check_lock(lock)
                    published = await self.relay_once()
                    self.health.recovered()
                    backoff.reset()
                    if published == 0:
                        await self._idle()
            finally:
                self.holds_lock = False

    def _wake(self) -> None:
        """From the thread that committed new events: look now, not at the next poll."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._new_events.set)

    async def _idle(self) -> None:
        """Until this process commits new events, or ``idle_delay`` passes (another
        instance of the service may have committed some)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._new_events.wait(), self.idle_delay)
        self._new_events.clear()

    async def _wait_for_lock(self, lock: psycopg.AsyncConnection[Any]) -> None:
        """Session-level advisory lock on ``lock``'s connection: held while it lives."""
        while True:
            cursor = await lock.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.lock_key,))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                self.holds_lock = True
                return  # healthy again only once a batch goes through
            self.health.recovered()  # another relay publishes; waiting for it is healthy
            await asyncio.sleep(self.lock_poll)

    async def _check_lock(self, lock: psycopg.AsyncConnection[Any]) -> None:
        """Before each batch: is our lock connection alive and the lock still ours? A
        dropped connection releases the lock, and another relay may have taken it."""
        try:
            cursor = await lock.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 1 "
                "AND ((classid::bigint << 32) | objid::bigint) = hashtext(%s)::bigint)",
                (self.lock_key,),
            )
            row = await cursor.fetchone()
        except psycopg.Error as error:
            raise LockLost(f"the lock connection failed: {error!r}") from error
        if row is None or not row[0]:
            raise LockLost("the relay lock is no longer held by this relay")

    async def relay_once(self) -> int:
        """Publish the next batch; return how many notifications it covered."""
        recorder = self.app.tracked_recorder
        start = await asyncio.to_thread(recorder.max_tracking_id, RELAY_TRACKING_NAME)
        notifications: list[Notification] = list(
            await asyncio.to_thread(
                recorder.select_notifications, start, self.batch_size, None, (),
                inclusive_of_start=start is None,
            )
        )
        if not notifications:
            return 0
        envelopes = [
            envelope
            for notification in notifications
            if (envelope := self.to_envelope(self.app.mapper.to_domain_event(notification)))
            is not None
        ]
        if envelopes:
            await self.publisher.publish_all(envelopes)
        last = notifications[-1].id
        await self._record_progress(last)
        RELAYED.inc(len(envelopes))
        RELAY_POSITION.set(last)
        return len(notifications)

    async def _record_progress(self, last: int) -> None:
        """Record that everything up to ``last`` is published. If another relay recorded
        this far (or further) already, it holds the lock now: what we sent again is
        dropped by consumers by event_id, and we step back."""
        recorder = self.app.tracked_recorder
        try:
            await asyncio.to_thread(recorder.insert_tracking, Tracking(RELAY_TRACKING_NAME, last))
        except IntegrityError as error:
            raise LockLost(f"another relay already recorded position {last}: {error}") from error


Translate = Callable[[Any], Event]
"""Builds the public contract event from one kind of stored domain event; its return
annotation names the contract event(s) it builds (``Publishing.events``)."""


class Publishing:
    """A service's ``ToEnvelope``: stored domain events whose eventsourcing ``TOPIC`` is in
    ``translations`` are published as the contract event it builds; others stay internal.

    The envelope's event_id is derived from the stored event (originator id and version),
    so a relay that re-sends after a crash re-sends the same event_id, and consumers drop
    it; occurred_at is when the change was recorded. Domain events may carry
    ``correlation_id`` / ``causation_id`` attributes, which the envelope keeps, and the
    actor recorded with them (``actors.ActorMapper``) becomes the envelope's ``actor``.

    ``events``, read from the translations' return annotations, is what the relay
    publishes: its ``wiring.Publication``, and so the AsyncAPI document's."""

    def __init__(self, producer: str, translations: Mapping[str, Translate]) -> None:
        self.producer = producer
        self.translations = dict(translations)
        self.events = frozenset(event for translate in self.translations.values()
                                for event in returned_events(translate))

    def __call__(self, domain_event: Any) -> Envelope[Any] | None:
        translate = self.translations.get(getattr(type(domain_event), "TOPIC", ""))
        if translate is None:
            return None
        return Envelope.wrap(
            translate(domain_event),
            producer=self.producer,
            event_id=derived_event_id(
                domain_event.timestamp, domain_event.originator_id, domain_event.originator_version
            ),
            occurred_at=domain_event.timestamp,
            correlation_id=getattr(domain_event, "correlation_id", None),
            causation_id=getattr(domain_event, "causation_id", None),
            actor=actor_of(domain_event),
        )


def returned_events(translate: Translate) -> tuple[type[Event], ...]:
    """The contract events ``translate`` is annotated to return (``A`` or ``A | B``); the
    bare ``Event`` names none, so it is refused: the relay would publish what no
    declaration shows."""
    try:
        returned = get_type_hints(translate).get("return")
    except NameError as error:  # an annotation naming what its module does not import
        raise TypeError(f"{getattr(translate, '__qualname__', translate)}: {error}") from error
    events = get_args(returned) if get_origin(returned) in (Union, UnionType) else (returned,)
    if not all(isinstance(e, type) and EVENT_TYPES.get(e.__name__) is e for e in events):
        raise TypeError(f"{getattr(translate, '__qualname__', translate)} must be annotated with the "
                        f"contract event(s) it returns, not {returned!r}")
    return events


def publishing(producer: str, translations: Mapping[str, Translate]) -> Publishing:
    """The ``ToEnvelope`` of a service's relay (``Publishing``)."""
    return Publishing(producer, translations)
