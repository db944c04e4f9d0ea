"""Event identifiers: UUIDv7, minted once when a fact is recorded.

A relay that re-sends an event after a crash must send the *same* event_id, so
ids of events that live in an event store are derived from the stored event's
identity (``derived_event_id``), not drawn at publish time.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import datetime


def _uuid7(unix_ms: int, tail: bytes) -> uuid.UUID:
    """Lay out a RFC 9562 version-7 UUID: 48-bit ms timestamp, then 74 bits of ``tail``."""
    value = (unix_ms & ((1 << 48) - 1)) << 80
    rest = int.from_bytes(tail[:10], "big")
    rand_a = (rest >> 68) & 0xFFF
    rand_b = rest & ((1 << 62) - 1)
    value |= 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_event_id() -> uuid.UUID:
    """A fresh, time-ordered UUIDv7 for a fact recorded right now."""
    return _uuid7(time.time_ns() // 1_000_000, os.urandom(10))


def derived_event_id(occurred_at: datetime, *identity: object) -> uuid.UUID:
    """A UUIDv7 that is a pure function of when and what: same stored event, same id."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in identity).encode()).digest()
    return _uuid7(int(occurred_at.timestamp() * 1000), digest)
