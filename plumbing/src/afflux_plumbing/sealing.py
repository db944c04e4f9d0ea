"""Sealing partners' tax and payment details: Fernet (``cryptography``) with keys from
settings. Written once for the services that hold the keys: partners seals what it records
and opens it for finance; payouts opens it to write payment files.

``AFFLUX_PROFILE_KEYS`` lists urlsafe-base64 Fernet keys (``Fernet.generate_key()``),
separated by commas or whitespace. The first seals; every one of them unseals
(``MultiFernet``), so a key rotates without downtime: put the new key first, keep the
old one listed until every profile was set again (or re-sealed), then drop it. Fernet
is AES-128-CBC with an HMAC-SHA256 over the token, so a token altered on the log fails
to open instead of yielding other details.

The keys live in the environment of the services that read the details (partners:
finance's reads; payouts: payment files), like every other secret of the deployment;
they are never on the log, in the database or in a log line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealingUnavailable(RuntimeError):
    """No key is configured (``AFFLUX_PROFILE_KEYS``): profiles can be neither set nor read."""


class UnreadableSeal(ValueError):
    """A sealed value none of the configured keys opens."""


class FernetSealer:
    def __init__(self, keys: str) -> None:
        listed = [key for key in re.split(r"[\s,]+", keys.strip()) if key]
        try:
            self._fernet = MultiFernet([Fernet(key) for key in listed]) if listed else None
        except ValueError as error:
            raise ValueError("AFFLUX_PROFILE_KEYS: each key is 32 url-safe base64-encoded bytes "
                             "(Fernet.generate_key())") from error

    def _keys(self) -> MultiFernet:
        if self._fernet is None:
            raise SealingUnavailable("no AFFLUX_PROFILE_KEYS: payout profiles cannot be sealed or read")
        return self._fernet

    def seal(self, details: dict[str, Any]) -> str:
        text = json.dumps(details, sort_keys=True, separators=(",", ":"))
        return self._keys().encrypt(text.encode()).decode()

    def unseal(self, sealed: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads(self._keys().decrypt(sealed.encode()))
        except InvalidToken as error:
            raise UnreadableSeal("no configured key opens this profile's details") from error
        return found
