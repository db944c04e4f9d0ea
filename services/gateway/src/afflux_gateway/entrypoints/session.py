"""Portal sessions: a signed cookie naming the partner, the key it signed in with and
the session's nonce.

The cookie is ``<payload>.<signature>``: URL-safe base64 of JSON (partner_id, key_id,
expiry, a random nonce) and its HMAC-SHA256 under the portal's session key. It holds
no key and no data; every request still checks that the key is not revoked and the
session not signed out (``Keys.session_live``: sign-out ends it on the server, so a
copied cookie dies with it). The CSRF token of a session is the HMAC of its nonce
under a separate label: forms carry it, a cross-site page cannot read it.

Keys rotate: ``SessionKeys`` signs with the current key and accepts the previous one
too, so sessions and forms signed before a rotation keep working until the previous
key is dropped (after at most ``SESSION_SECONDS``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

SESSION_SECONDS = 8 * 3600
MAX_COOKIE_CHARS = 1024
"""Ours are about 150 characters; anything much longer is not worth parsing."""


@dataclass(frozen=True)
class Session:
    partner_id: str
    key_id: str
    expires: int
    nonce: str


@dataclass(frozen=True)
class SessionKeys:
    """The key that signs (``current``) and the keys that verify (it, then the previous)."""

    current: bytes
    previous: bytes | None = None

    @classmethod
    def of(cls, current: str, previous: str = "") -> SessionKeys:
        """From the secrets as configured (any length: each is hashed to a 32-byte key)."""
        return cls(_key(current), _key(previous) if previous else None)

    @property
    def verifying(self) -> Sequence[bytes]:
        return (self.current,) if self.previous is None else (self.current, self.previous)


def _key(secret: str) -> bytes:
    return hashlib.sha256(f"afflux-gateway-session:{secret}".encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: str, text: str) -> str:
    return _b64(hmac.new(key, f"{label}:{text}".encode(), hashlib.sha256).digest())


def _signed_by_one(given: str, label: str, text: str, keys: SessionKeys) -> bool:
    """``given`` is the MAC of ``text`` under one of the verifying keys (each compared in
    constant time)."""
    found = False
    for key in keys.verifying:
        found |= hmac.compare_digest(given.encode(), _mac(key, label, text).encode())
    return found


def new_session(partner_id: str, key_id: str, now: float) -> Session:
    """Its start (``expires - SESSION_SECONDS``) rounded up to the second: a session begun
    just after a password reset is never taken for one from before it."""
    return Session(partner_id, key_id, math.ceil(now) + SESSION_SECONDS, secrets.token_urlsafe(16))


def seal(session: Session, keys: SessionKeys) -> str:
    payload = _b64(
        json.dumps(
            [session.partner_id, session.key_id, session.expires, session.nonce], separators=(",", ":")
        ).encode()
    )
    return f"{payload}.{_mac(keys.current, 'session', payload)}"


def unseal(cookie: str, keys: SessionKeys, now: float) -> Session | None:
    """The session a cookie holds, if it is ours (signed by a verifying key), untampered
    and not expired. Only a payload we signed is parsed."""
    payload, _, signature = cookie.partition(".")
    if (
        len(cookie) > MAX_COOKIE_CHARS
        or not signature
        or not _signed_by_one(signature, "session", payload, keys)
    ):
        return None
    try:
        partner_id, key_id, expires, nonce = json.loads(_unb64(payload))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        return None
    fields_ok = (
        isinstance(partner_id, str)
        and isinstance(key_id, str)
        and isinstance(expires, int)
        and isinstance(nonce, str)
    )
    if not fields_ok or expires <= now:
        return None
    return Session(partner_id, key_id, expires, nonce)


def csrf_token(session_nonce: str, keys: SessionKeys) -> str:
    return _mac(keys.current, "csrf", session_nonce)


def csrf_ok(given: str | None, session_nonce: str, keys: SessionKeys) -> bool:
    return given is not None and _signed_by_one(given, "csrf", session_nonce, keys)


class LinkRefused(Exception):
    """A link's token that is not ours (forged, altered, truncated): refused (400)."""


class LinkExpired(Exception):
    """A link's token of ours whose time is up (410): ask for a new one."""


def sign_link(label: str, value: str, expires: int, keys: SessionKeys) -> str:
    """A token for a link (an email verification): ``value`` and its expiry, signed under
    ``label`` with the current key (so a token of one purpose is refused for another)."""
    payload = _b64(json.dumps([value, expires], separators=(",", ":")).encode())
    return f"{payload}.{_mac(keys.current, label, payload)}"


def open_link(token: str, label: str, keys: SessionKeys, now: float) -> str:
    """The value a link's token carries; ``LinkRefused`` unless signed by a verifying key
    under ``label``, ``LinkExpired`` once past its expiry."""
    payload, _, signature = token.partition(".")
    if len(token) > MAX_COOKIE_CHARS or not signature or not _signed_by_one(signature, label, payload, keys):
        raise LinkRefused()
    try:
        value, expires = json.loads(_unb64(payload))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise LinkRefused() from None
    if not isinstance(value, str) or not isinstance(expires, int):
        raise LinkRefused()
    if expires <= now:
        raise LinkExpired()
    return value
