"""What a service subscribes to and publishes, declared once, without connecting.

Each service's wiring (``afflux_<service>.entrypoints.main.WIRING``) names its consumers
(a ``Subscription``: consumer group, topics, and the payload types its handlers take)
and its publishers (a ``Publication``: the outbox relay, or a producer such as
tracking's intake, and the events it puts on the log). The same objects serve twice:

- the ``ServiceRuntime`` consumes and publishes only what its wiring declares
  (``consume`` takes a ``Subscription``, ``relay`` and ``producer`` a ``Publication``)
  and refuses, at build and at serve, a consumer whose handlers take other events, a
  publisher that sends an undeclared one, or a declaration nothing runs;
- ``make schemas`` writes the AsyncAPI document from every service's wiring
  (``afflux_infra.asyncapi``), so the document shows what runs, not a list kept apart.

Why declarations rather than reading a built service: building one opens its stores
and Kafka clients; a declaration is made from classes (a handler class's ``@handles``
marks, a relay's translations) and is importable anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from afflux_contracts import ALL_TOPICS, Envelope, Event, Topic
from afflux_plumbing.runs import Handlers, handled_types

Events = frozenset[type[Event]]


class Undeclared(RuntimeError):
    """A service runs a consumer or a publisher its wiring does not declare (or declares
    one it does not run): the published AsyncAPI document would not show what runs."""


def _names(events: Iterable[type[Event]]) -> str:
    return ", ".join(sorted(event.__name__ for event in events)) or "nothing"


@dataclass(frozen=True)
class Subscription:
    """One consumer of a service: its group (the suffix of its consumer group id), the
    topics it reads, and the payload types its handlers take from them."""

    group: str
    topics: tuple[Topic, ...]
    events: Events
    every_partition: bool = False
    """A replica reading every partition outside any consumer group (``TrackedConsumer``)."""

    @classmethod
    def of(cls, handler: type | Iterable[type[Event]], group: str, topics: Iterable[Topic], *,
           every_partition: bool = False) -> Subscription:
        """``handler``: the class whose ``@handles`` methods apply the records (or the
        payload types a hand-made ``Handlers`` takes); only the types on ``topics`` count."""
        read = tuple(topics)
        taken = handled_types(handler) if isinstance(handler, type) else frozenset(handler)
        events = _on(taken, read)
        idle = [topic.name for topic in read if not _on(events, [topic])]
        if idle or not read:
            topic_names = ", ".join(idle) or "a topic"
            raise Undeclared(f"consumer {group!r}: no handler takes an event of {topic_names}")
        return cls(group, read, events, every_partition)

    @classmethod
    def per_topic(cls, handler: type) -> tuple[Subscription, ...]:
        """One consumer per topic whose events ``handler``'s ``@handles`` methods take, each
        in a group named after its topic (``afflux.partners.v1``: ``partners``), so a
        record parked on one topic never holds up another; a topic joins when a handler
        of one of its events is written."""
        read = {event.topic.name for event in _on(handled_types(handler), ALL_TOPICS)}
        return tuple(cls.of(handler, topic.name.removeprefix("afflux.").split(".")[0], [topic])
                     for topic in ALL_TOPICS if topic.name in read)

    @property
    def label(self) -> str:
        return f"consumer {self.group!r}"

    @property
    def topic_names(self) -> list[str]:
        return [topic.name for topic in self.topics]

    def check(self, handlers: Handlers) -> None:
        """The handlers a consumer runs take exactly the declared events of its topics."""
        taken = _on(handlers.types, self.topics)
        if taken != self.events:
            raise Undeclared(f"consumer {self.group!r} handles {_names(taken)}; its wiring declares "
                             f"{_names(self.events)}")


def _on(events: Iterable[type[Event]], topics: Iterable[Topic]) -> Events:
    names = {topic.name for topic in topics}
    return frozenset(event for event in events if getattr(event, "topic", None) is not None
                     and event.topic.name in names)


@dataclass(frozen=True)
class Publication:
    """One publisher of a service (``relay``: its outbox relay; else a producer of its
    own, such as tracking's ``intake``) and the events it puts on the log."""

    name: str
    events: Events

    @classmethod
    def of(cls, name: str, events: Iterable[type[Event]]) -> Publication:
        return cls(name, frozenset(events))

    @property
    def label(self) -> str:
        return f"publisher {self.name!r}"

    @property
    def topics(self) -> list[Topic]:
        return sorted({event.topic for event in self.events}, key=lambda topic: topic.name)

    def check(self, envelope: Envelope[Any]) -> None:
        if type(envelope.payload) not in self.events:
            raise Undeclared(f"publisher {self.name!r} sends {envelope.event_type}; its wiring declares "
                             f"{_names(self.events)}")


class Sends(Protocol):
    """The plumbing ``Publisher``'s one-record send (acks=all)."""

    async def publish(self, envelope: Envelope[Any]) -> Any: ...


class DeclaredProducer:
    """A service's own producer (``ServiceRuntime.producer``): the plumbing publisher,
    sending only the events its publication declares."""

    def __init__(self, publisher: Sends, publication: Publication) -> None:
        self.publisher, self.publication = publisher, publication

    async def publish(self, envelope: Envelope[Any]) -> Any:
        self.publication.check(envelope)
        return await self.publisher.publish(envelope)


@dataclass(frozen=True)
class Wiring:
    """A service's declared subscriptions and publications (its name is its settings'
    ``service_name``)."""

    service: str
    subscriptions: tuple[Subscription, ...] = ()
    publications: tuple[Publication, ...] = ()

    def __post_init__(self) -> None:
        """A group or a publisher's name is declared once (two consumers in one group would
        share its partitions)."""
        for names in ([s.group for s in self.subscriptions], [p.name for p in self.publications]):
            if twice := sorted({name for name in names if names.count(name) > 1}):
                raise Undeclared(f"{self.service} declares {', '.join(twice)} twice")

    def publication(self, name: str) -> Publication:
        found = [p for p in self.publications if p.name == name]
        if not found:
            raise Undeclared(f"{self.service} publishes with {name!r}, which its wiring does not declare")
        return found[0]

    def declares(self, subscription: Subscription) -> None:
        if subscription not in self.subscriptions:
            raise Undeclared(f"{self.service} consumes {subscription.group!r}, which its wiring "
                             f"does not declare")

