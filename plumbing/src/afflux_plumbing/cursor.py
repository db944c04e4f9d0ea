"""Opaque pagination cursors for listings ordered by (an instant, an id): URL-safe base64
of a JSON pair ``["<instant>", "<id>"]``, one codec for every service that pages so.

Clients must treat a cursor as opaque; the encoding can change without notice. A cursor
comes from anyone who can call the listing, partners included, so it is parsed without
recursion (a general JSON parser recurses into nested arrays: a cursor of a million
``[`` exhausted the stack and answered 500): its length is bounded, the pair is matched
as exactly two JSON strings, each decoded on its own, and anything else is an
``InvalidCursor`` (the services answer 422).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime

from afflux_plumbing.http import ApiError

MAX_LENGTH = 1024
"""Longer than any cursor a service issues (an instant and an id)."""
_STRING = r'"((?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*)"'
_PAIR = re.compile(rf"\[{_STRING},{_STRING}\]")


class InvalidCursor(ValueError):
    """The cursor was not issued by this service (or was altered)."""


def encode_cursor(at: datetime, key: str) -> str:
    raw = json.dumps([at.astimezone(UTC).isoformat(), key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (instant in UTC, id) a cursor of ``encode_cursor`` names; ``InvalidCursor`` else."""
    invalid = InvalidCursor(f"not a cursor this API gave: {cursor[:100]!r}")
    if len(cursor) > MAX_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid from error
    pair = _PAIR.fullmatch(raw)
    if pair is None:
        raise invalid
    try:
        at, key = (json.loads(f'"{part}"') for part in pair.groups())
        instant = datetime.fromisoformat(at)
        key.encode()  # a lone surrogate is no text PostgreSQL can compare
    except ValueError as error:
        raise invalid from error
    if instant.tzinfo is None or "\x00" in key or not key:
        raise invalid
    return instant.astimezone(UTC), key


def after_param(after: str | None) -> tuple[datetime, str] | None:
    """A listing's ``after=`` query parameter: ``None`` for the first page, else the
    (instant, id) it names; a 422 naming ``after`` for anything this API did not give."""
    if after is None:
        return None
    try:
        return decode_cursor(after)
    except InvalidCursor as error:
        raise ApiError(422, "invalid_request", f"after: {error}", field="after") from error
