"""Password hashing (argon2id, argon2-cffi) and one-time codes (TOTP, pyotp).

argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes,
4 lanes): tens of milliseconds a hash, which a sign-in can afford and a guesser cannot.
A hash made with older parameters is rehashed at the next sign-in. TOTP codes are
RFC 6238's (30 s steps, 6 digits); one step either side is accepted, for clocks that
drift.
"""

from __future__ import annotations

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ISSUER = "Afflux"


class Argon2Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


class TotpCodes:
    def new_secret(self) -> str:
        return pyotp.random_base32()

    def uri(self, secret: str, email: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)

    def verify(self, secret: str, code: str) -> bool:
        cleaned = code.replace(" ", "")
        return cleaned.isdigit() and len(cleaned) == 6 and pyotp.TOTP(secret).verify(cleaned, valid_window=1)
