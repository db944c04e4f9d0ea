"""Envelope <-> Kafka record bytes. One decode error type for everything a consumer
cannot use, so that it can be dead-lettered with its reason.

Decoding is on every consumer's hot path (each click is decoded by every service that
reads the tracking topic, a replay decodes the whole log), so the common record is read
in one pass: its ``event_type`` is found in the bytes, and the bytes are validated as
that type's envelope by pydantic-core directly (``model_validate_json``), about a third
of the cost of ``json.loads`` followed by ``model_validate`` (measured in
docs/decisions/click-path.md). Anything that pass might read differently goes the exact
way: a JSON number with a fraction or an exponent where the type has a field that would
keep it inexactly (pydantic-core reads such a number for a ``Decimal`` through a float,
so money a producer wrote as a number would lose digits and its scale; ``float`` and
``Any`` fields would get a float instead of a ``Decimal``), a type that cannot be found
that way, and every record that fails to validate, so each ``DecodeError`` says what it
always said. For every other field type (integers, booleans, times, strings, enums) a
number reads the same either way, so a type without such fields (``ClickRecorded``) is
not even scanned for one.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES, Event

CONTENT_TYPE = "application/json"

_EVENT_TYPE = re.compile(rb'"event_type"[ \t\n\r]*:[ \t\n\r]*"([A-Za-z0-9_]{1,100})"')
"""The first ``"event_type": "Name"`` member in the bytes: a hint, checked against what
the bytes validate to (a key that merely contains the text cannot mislead the decoder)."""

_SKELETON = bytes.maketrans(b"eE", b"..")
_SKELETON_DROPS = b"0123456789-+ \t\n\r"
"""With digits, signs and whitespace dropped and exponents written as ``.``, a JSON number
with a fraction or an exponent leaves ``.`` right after what precedes every value: a
member's ``":``, a ``,`` or a ``[``."""
_FRACTION_MARKS = (b'":.', b",.", b"[.")


_INEXACT_TYPES = frozenset({"decimal", "float", "any", "complex", "json"})
"""Core-schema types that would read a JSON number with a fraction differently from the
exact way (a ``dict`` or list without an item schema holds ``Any`` too)."""

_ENVELOPES: dict[str, tuple[Any, bool]] = {}
"""Per event_type name: ``Envelope[EventType]`` (pydantic's own generic lookup costs ~2 µs)
and whether it has a field that would keep a number with a fraction inexactly."""


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
    validated = _validated_bytes(value)
    if validated is not None:
        return validated
    try:
        return _decode(value)
    except DecodeError:
        raise
    except Exception as error:
        raise DecodeError(f"value cannot be parsed: {type(error).__name__}: {error}") from error


def _validated_bytes(value: bytes | None) -> Envelope[Event] | None:
    """The envelope, validated from the bytes in one pass; ``None`` whenever the exact way
    must decide (see the module's docstring): the result is then the same either way."""
    found = _EVENT_TYPE.search(value) if value else None
    event_type = found.group(1).decode() if found is not None else ""
    known = _envelope_type(event_type)
    if value is None or known is None:
        return None
    envelope_type, inexact = known
    if inexact and _has_number_with_fraction(value):
        return None
    try:
        envelope: Envelope[Event] = envelope_type.model_validate_json(value)
    except Exception:  # ValidationError, or anything else: the exact way says why
        return None
    return envelope if envelope.event_type == event_type else None


def _has_number_with_fraction(value: bytes) -> bool:
    """Whether ``value`` may hold a JSON number with a fraction or an exponent (one
    ``translate`` and three searches, all in C). A mark inside a string is a false alarm,
    which only sends the record the exact way."""
    skeleton = value.translate(_SKELETON, _SKELETON_DROPS)
    return any(mark in skeleton for mark in _FRACTION_MARKS)


def _envelope_type(event_type: str) -> tuple[Any, bool] | None:
    """``(Envelope[cls], inexact)`` for a known event type name, else ``None``."""
    known = _ENVELOPES.get(event_type)
    if known is None:
        event_class = EVENT_TYPES.get(event_type)
        if event_class is None:
            return None
        typed: Any = Envelope[event_class]  # type: ignore[valid-type]
        known = _ENVELOPES[event_type] = (typed, _inexact(typed.__pydantic_core_schema__))
    return known


def _inexact(schema: object) -> bool:
    """Whether a core schema has a field that would read a JSON number with a fraction
    differently from the exact way (see ``_INEXACT_TYPES``)."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str) and (
            kind in _INEXACT_TYPES
            or (kind == "dict" and "values_schema" not in schema)
            or (kind in ("list", "set", "frozenset") and "items_schema" not in schema)
            or (kind == "tuple" and "items_schema" not in schema and "items_schemas" not in schema)
        ):
            return True
        return schema.get("extra_behavior") == "allow" or any(_inexact(v) for v in schema.values())
    if isinstance(schema, list | tuple):
        return any(_inexact(item) for item in schema)
    return False


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
    known = _envelope_type(event_type) if isinstance(event_type, str) else None
    if known is None:
        raise DecodeError(f"unknown event_type {event_type!r}")
    try:
        return known[0].model_validate(raw)  # type: ignore[no-any-return]
    except ValidationError as error:
        raise DecodeError(f"{event_type} violates its schema: {error}") from error
