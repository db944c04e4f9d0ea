"""The envelope every message on the Afflux log travels in."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.ids import new_event_id
from afflux_contracts.values import UtcDatetime, utc_now

E = TypeVar("E", bound=Event)

ActorKind = Literal["staff", "token", "service", "admin", "partner", "system"]
"""Who caused an event: a staff user (signed in), a staff API token, another service
(with its service token), the bootstrap admin token, a partner, or the system itself."""


class Actor(BaseModel):
    """Who caused an event, for the audit trail: ``kind``, its ``id`` (a staff user's or
    token's id, a service's name, ``admin``) and the ``role`` it acted in (staff)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ActorKind
    id: str = Field(min_length=1, max_length=200)
    role: str | None = None


class Envelope(BaseModel, Generic[E]):
    """A typed event with the metadata that makes delivery effectively-once.

    ``event_id`` (UUIDv7) is the idempotency key: consumers apply an event_id once.
    ``occurred_at`` is when the fact happened, which is not when it was recorded.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    event_type: str
    schema_version: int = Field(ge=1)
    occurred_at: UtcDatetime
    producer: str
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: Actor | None = None
    """Who caused it (a person, a token, a service); None for what the system did on its
    own, and on events written before the field existed."""
    payload: E

    @classmethod
    def wrap(
        cls,
        payload: E,
        *,
        producer: str,
        event_id: UUID | None = None,
        occurred_at: UtcDatetime | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: Actor | None = None,
    ) -> Envelope[E]:
        """Envelope a new fact; ids and times default to "now, freshly minted"."""
        typed: Any = cast(Any, Envelope)[type(payload)]
        return cast(Envelope[E], typed(
            event_id=event_id or new_event_id(),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            occurred_at=occurred_at or utc_now(),
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            actor=actor,
            payload=payload,
        ))

    @property
    def key(self) -> str:
        return self.payload.partition_key()
