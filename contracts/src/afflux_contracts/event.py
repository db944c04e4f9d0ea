"""The base of every contract event and the registry the codec decodes by.

A contract event is a frozen pydantic model named in the past tense. It knows
its ``event_type``, its ``schema_version``, the topic it lives on and the key
that places it on a partition. Fields are only ever added, with defaults;
readers ignore fields they do not know.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from afflux_contracts.topics import Topic

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """A fact on the Afflux log."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "topic" in cls.__dict__:
            cls.event_type = cls.__name__
            if cls.event_type in EVENT_TYPES:
                raise TypeError(f"event type {cls.event_type} is declared twice")
            EVENT_TYPES[cls.event_type] = cls

    @abstractmethod
    def partition_key(self) -> str:
        """The Kafka key: events with the same key keep their order."""
