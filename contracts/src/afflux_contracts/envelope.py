"""The envelope every message on the Afflux log travels in."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from afflux_contracts.event import Event
from afflux_contracts.ids import new_event_id
from afflux_contracts.values import UtcDatetime, utc_now

E = TypeVar("E", bound=Event)


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
            payload=payload,
        ))

    @property
    def key(self) -> str:
        return self.payload.partition_key()
