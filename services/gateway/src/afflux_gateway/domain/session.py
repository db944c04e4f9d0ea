"""Portal sessions: a signed cookie naming the partner and the key it signed in with.

The cookie is ``<payload>.<signature>``: URL-safe base64 of JSON (partner_id,
key_id, expiry, a random nonce) and its HMAC-SHA256 with the gateway's secret. It
holds no key and no data; every request still checks that the key is not revoked,
so revoking a key ends its sessions too. The CSRF token of a session is the HMAC
of its nonce under a separate label: forms carry it, a cross-site page cannot read
it. Pure: the caller gives the clock and the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    partner_id: str
    key_id: str
    expires: int
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, label: str, text: str) -> str:
    return _b64(hmac.new(secret, f"{label}:{text}".encode(), hashlib.sha256).digest())


def new_session(partner_id: str, key_id: str, now: float) -> Session:
    return Session(partner_id, key_id, int(now) + SESSION_SECONDS, secrets.token_urlsafe(16))


def seal(session: Session, secret: bytes) -> str:
    payload = _b64(
        json.dumps(
            [session.partner_id, session.key_id, session.expires, session.nonce], separators=(",", ":")
        ).encode()
    )
    return f"{payload}.{_mac(secret, 'session', payload)}"


def unseal(cookie: str, secret: bytes, now: float) -> Session | None:
    """The session a cookie holds, if it is ours, untampered and not expired."""
    payload, _, signature = cookie.partition(".")
    if not signature or not hmac.compare_digest(
        signature.encode(), _mac(secret, "session", payload).encode()
    ):
        return None
    try:
        partner_id, key_id, expires, nonce = json.loads(_unb64(payload))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        return None
    if (
        not (
            isinstance(partner_id, str)
            and isinstance(key_id, str)
            and isinstance(expires, int)
            and isinstance(nonce, str)
        )
        or expires <= now
    ):
        return None
    return Session(partner_id, key_id, expires, nonce)


def csrf_token(session_nonce: str, secret: bytes) -> str:
    return _mac(secret, "csrf", session_nonce)


def csrf_ok(given: str | None, session_nonce: str, secret: bytes) -> bool:
    return given is not None and hmac.compare_digest(
        given.encode(), csrf_token(session_nonce, secret).encode()
    )
