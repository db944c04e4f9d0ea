"""Partner API keys: drawn here, shown once, remembered only by their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "afx_live_"
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 4
"""What a partner sees of a key later to tell its keys apart: ``afx_live_`` and 4 chars."""


@dataclass(frozen=True)
class DrawnKey:
    key_id: str
    api_key: str

    @property
    def sha256(self) -> str:
        return key_sha256(self.api_key)

    @property
    def prefix(self) -> str:
        return self.api_key[:SHOWN_PREFIX_LENGTH]


def key_sha256(api_key: str) -> str:
    """The hex SHA-256 of a whole key: what is stored, published and compared. A key has
    256 random bits, so a fast unsalted hash is enough (no password to brute-force)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def draw_key() -> DrawnKey:
    """``afx_live_`` + 43 URL-safe characters (32 random bytes); its id ``key_`` + 16 hex."""
    return DrawnKey(key_id=f"key_{secrets.token_hex(8)}", api_key=KEY_PREFIX + secrets.token_urlsafe(32))
