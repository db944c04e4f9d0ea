"""Opaque pagination cursors: a page key, as URL-safe base64 of JSON.

Clients must treat a cursor as opaque; the encoding can change without notice.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from afflux_payouts.application.payouts import PageKey


class InvalidCursor(ValueError):
    """The cursor was not issued by this service (or was altered)."""


def encode_cursor(key: PageKey) -> str:
    raw = json.dumps([key.converted_at.astimezone(UTC).isoformat(), key.conversion_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        converted_at, conversion_id = json.loads(raw)
        instant = datetime.fromisoformat(converted_at)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise InvalidCursor(f"not a commissions cursor: {cursor!r}") from error
    if not isinstance(conversion_id, str) or instant.tzinfo is None:
        raise InvalidCursor(f"not a commissions cursor: {cursor!r}")
    return PageKey(instant.astimezone(UTC), conversion_id)
