"""Envelope <-> Kafka record bytes. One decode error type for everything a consumer
cannot use, so that it can be dead-lettered with its reason."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES, Event

CONTENT_TYPE = "application/json"


class DecodeError(ValueError):
    """The bytes are not an Afflux envelope of a known event type with a valid payload."""


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    """Kafka headers that let tools route a record without parsing its value."""
    return [
        ("event_type", envelope.event_type.encode()),
        ("event_id", str(envelope.event_id).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def decode(value: bytes | None) -> Envelope[Event]:
    """Parse and validate a record value; raise ``DecodeError`` saying what is wrong.

    Any other failure of parsing (a ``RecursionError`` from deeply nested JSON, say)
    is a ``DecodeError`` too: bytes on a topic are untrusted input, and a consumer
    that let such an error through would crash on the same record at every restart
    instead of dead-lettering it."""
    try:
        return _decode(value)
    except DecodeError:
        raise
    except Exception as error:
        raise DecodeError(f"value cannot be parsed: {type(error).__name__}: {error}") from error


def _decode(value: bytes | None) -> Envelope[Event]:
    if value is None:
        raise DecodeError("record has no value")
    try:
        # A number with a fraction is read as a Decimal: money sent as a JSON number keeps
        # every digit (a float keeps 17), and NaN/Infinity stay floats the money types refuse.
        raw = json.loads(value, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DecodeError(f"value is not JSON: {error}") from error
    if not isinstance(raw, dict):
        raise DecodeError("value is not a JSON object")
    event_type = raw.get("event_type")
    event_class = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if event_class is None:
        raise DecodeError(f"unknown event_type {event_type!r}")
    try:
        return Envelope[event_class].model_validate(raw)  # type: ignore[valid-type]
    except ValidationError as error:
        raise DecodeError(f"{event_type} violates its schema: {error}") from error
