"""The conversions list's cursors (``after=``): opaque to callers, parsed without recursion.

A cursor is URL-safe base64 of ``<converted_at ISO 8601>`` and ``<conversion_id>``
joined by a newline: nothing a caller sends is handed to a recursive parser (a JSON
cursor nested ten thousand deep was a ``RecursionError``, a 500), and its length is
bounded before it is decoded. Anything that is not a cursor this API gave is a 422.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from afflux_gateway.application.reads import ConversionKey
from afflux_plumbing.http import ApiError

MAX_CURSOR_CHARS = 512
_SEPARATOR = "\n"


def encode_cursor(key: ConversionKey) -> str:
    raw = f"{key.converted_at.isoformat()}{_SEPARATOR}{key.conversion_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ConversionKey:
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, separator, conversion_id = text.partition(_SEPARATOR)
        instant = datetime.fromisoformat(at)
        if not separator or not conversion_id or instant.tzinfo is None:
            raise ValueError(cursor)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ApiError(422, "invalid_request", "after: not a cursor this API gave", field="after") from error
    return ConversionKey(instant, conversion_id)
