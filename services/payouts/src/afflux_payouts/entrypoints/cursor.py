"""Opaque pagination cursors: a page key, as URL-safe base64 of a JSON pair
``["<converted_at>", "<conversion_id>"]``.

Clients must treat a cursor as opaque; the encoding can change without notice. A
cursor comes from anyone who can call the listing, so it is parsed without
recursion (a general JSON parser recurses into nested arrays: a cursor of a million
``[`` would exhaust the stack and answer 500): the pair is matched as exactly two
JSON strings, each decoded on its own, and anything else is an ``InvalidCursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime

from afflux_payouts.application.reads import PageKey

MAX_LENGTH = 1024
"""Longer than any cursor this service issues (an instant and a conversion_id)."""
_STRING = r'"((?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*)"'
_PAIR = re.compile(rf"\[{_STRING},{_STRING}\]")


class InvalidCursor(ValueError):
    """The cursor was not issued by this service (or was altered)."""


def encode_cursor(key: PageKey) -> str:
    raw = json.dumps([key.converted_at.astimezone(UTC).isoformat(), key.conversion_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    invalid = InvalidCursor(f"not a commissions cursor: {cursor[:100]!r}")
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
        converted_at, conversion_id = (json.loads(f'"{part}"') for part in pair.groups())
        instant = datetime.fromisoformat(converted_at)
        conversion_id.encode()  # a lone surrogate is no text PostgreSQL can compare
    except ValueError as error:
        raise invalid from error
    if instant.tzinfo is None or "\x00" in conversion_id:
        raise invalid
    return PageKey(instant.astimezone(UTC), conversion_id)
