"""Who caused an event: the actor, carried from an HTTP request's principal to the
envelope of every event the request causes, on both ways onto the log.

The request's actor is a context variable, set by the admin-auth dependency
(``http.admin_auth``) once it has authenticated the caller. Nothing between the route
and the log passes it along by hand:

- an event published directly (``Publisher.publish``) while a request runs gets the
  request's actor on its envelope;
- an event recorded in an event store (partners' aggregates, attribution's reviews,
  payouts' statements) is published later by the outbox relay, in another task, from
  the stored event: so the store's mapper (``ActorMapper``) records the actor *with the
  stored event*, as one more attribute of its state, and the relay's ``publishing``
  puts it on the envelope (``actor_of``).

A context variable follows the request: FastAPI runs a plain ``def`` route in its
thread pool with a copy of the request's context, and ``asyncio.to_thread`` copies it
too, so an event store written from either sees the actor. Consumers and relays run in
tasks started with the process, outside any request: what they record or publish
carries no actor (the system did it, caused by an event whose own actor is on the log).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

from afflux_contracts import Actor

ACTOR_ATTRIBUTE = "afflux_actor"
"""The attribute of a stored domain event that holds its actor (a plain mapping, so the
event store's JSON transcoder keeps it; no aggregate method takes a parameter so named,
so rebuilding an aggregate ignores it)."""

_current: ContextVar[Actor | None] = ContextVar("afflux_actor", default=None)


def current_actor() -> Actor | None:
    """The actor of the request being served here, if any."""
    return _current.get()


def act_as(actor: Actor | None) -> None:
    """Make ``actor`` the current context's actor (the admin-auth dependency calls it; the
    context is the request's own, so it ends with the request)."""
    _current.set(actor)


@contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    """``actor`` for the duration of a block (commands run outside a request: the CLI,
    tests), then whatever was before."""
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def actor_of(domain_event: Any) -> Actor | None:
    """The actor recorded with a stored domain event (None: none was acting)."""
    recorded = getattr(domain_event, ACTOR_ATTRIBUTE, None)
    return Actor.model_validate(recorded) if isinstance(recorded, dict) else None


class ActorMapper(Mapper[Any]):
    """eventsourcing's mapper, recording the current actor with each new stored event."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        actor = _current.get()
        if actor is not None and ACTOR_ATTRIBUTE not in vars(domain_event):
            # Domain events are frozen dataclasses: the attribute joins its state, which
            # is what the mapper stores (vars of the event).
            object.__setattr__(domain_event, ACTOR_ATTRIBUTE, actor.model_dump(exclude_none=True))
        return super().to_stored_event(domain_event)
