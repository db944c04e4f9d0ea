"""Staff users, their sessions and API tokens, as event-sourced aggregates.

The rules read top to bottom: who a user is (an email, a name, one role), what may
change (name, role, standing) and what may not (an owner may not lock themselves out:
no owner demotes or disables themselves, so the network always keeps one who can act);
a session lasts a fixed time and ends once; a token's scopes are within its owner's role
and it is revoked once. Secrets never enter an aggregate: a password's hash and a TOTP
secret are kept beside them (``application.staff``), a credential as its SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, event

from afflux_console.domain.rules import Refused, RuleViolation

ROLES = ("owner", "manager", "finance", "analyst")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
EDITABLE = ("name", "role", "disabled")

USER_CREATED = "afflux_console:StaffUser.Created"
USER_UPDATED = "afflux_console:StaffUser.Updated"
SESSION_STARTED = "afflux_console:StaffSession.Started"
SESSION_ENDED = "afflux_console:StaffSession.Ended"
TOKEN_ISSUED = "afflux_console:StaffToken.Issued"
TOKEN_REVOKED = "afflux_console:StaffToken.Revoked"


def checked_email(email: str) -> str:
    """An address as it is kept and looked up: trimmed and lowercased."""
    cleaned = email.strip().lower()
    if not EMAIL.match(cleaned):
        raise RuleViolation("email", "is not an email address")
    return cleaned


def checked_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= 200:
        raise RuleViolation("name", "must be 1 to 200 characters")
    return cleaned


def checked_role(role: str) -> str:
    if role not in ROLES:
        raise RuleViolation("role", f"must be one of {', '.join(ROLES)}", "invalid_role")
    return role


def check_password(password: str, email: str) -> None:
    """Long enough to resist guessing, short enough to hash, and not the address itself."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise RuleViolation(
            "password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", "weak_password"
        )
    if password.strip().lower() == email:
        raise RuleViolation("password", "must not be the email address", "weak_password")


class StaffUser(Aggregate):
    """Its id (as 32 hex characters) is the public ``user_id``."""

    TOPIC = "afflux_console:StaffUser"

    @classmethod
    def create(cls, email: str, name: str, role: str) -> StaffUser:
        return cls(email=checked_email(email), name=checked_name(name), role=checked_role(role))

    @event("Created", topic=USER_CREATED)
    def __init__(self, email: str, name: str, role: str) -> None:
        self.email = email
        self.name = name
        self.role = role
        self.disabled = False

    @property
    def user_id(self) -> str:
        return self.id.hex

    def edit(self, changes: Mapping[str, Any], by: str | None) -> tuple[str, ...]:
        """Apply the fields given (``name``, ``role``, ``disabled``) and name those that
        changed; ``by`` is the acting user's id (None: the bootstrap owner)."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise RuleViolation(unknown[0], "cannot be edited", "not_editable")
        wanted: dict[str, Any] = {"name": self.name, "role": self.role, "disabled": self.disabled}
        if changes.get("name") is not None:
            wanted["name"] = checked_name(changes["name"])
        if changes.get("role") is not None:
            wanted["role"] = checked_role(changes["role"])
        if changes.get("disabled") is not None:
            wanted["disabled"] = bool(changes["disabled"])
        changed = tuple(name for name in EDITABLE if wanted[name] != getattr(self, name))
        if not changed:
            return ()
        if by == self.user_id and (wanted["disabled"] or wanted["role"] != "owner") and self.role == "owner":
            raise Refused("self_lockout", "an owner may not disable or demote themselves; ask another owner")
        self._updated(
            email=self.email,
            name=wanted["name"],
            role=wanted["role"],
            disabled=wanted["disabled"],
            changed=changed,
        )
        return changed

    @event("Updated", topic=USER_UPDATED)
    def _updated(self, email: str, name: str, role: str, disabled: bool, changed: tuple[str, ...]) -> None:
        """The whole new state (``email`` too: it is what the published event carries)."""
        self.name, self.role, self.disabled = name, role, disabled


class StaffSession(Aggregate):
    """One sign-in: accepted until ``expires_at`` unless ended before."""

    TOPIC = "afflux_console:StaffSession"

    @classmethod
    def start(
        cls, user: StaffUser, token_sha256: str, now: datetime, lifetime: timedelta, second_factor: bool
    ) -> StaffSession:
        if user.disabled:
            raise Refused("user_disabled", "this user is disabled")
        return cls(
            user_id=user.user_id,
            token_sha256=token_sha256,
            role=user.role,
            expires_at=now + lifetime,
            second_factor=second_factor,
        )

    @event("Created", topic=SESSION_STARTED)
    def __init__(
        self, user_id: str, token_sha256: str, role: str, expires_at: datetime, second_factor: bool
    ) -> None:
        self.user_id = user_id
        self.token_sha256 = token_sha256
        self.role = role
        self.expires_at = expires_at
        self.second_factor = second_factor
        self.ended = False

    @property
    def session_id(self) -> str:
        return self.id.hex

    def end(self, reason: str) -> bool:
        """End it (False, and no event, if it already ended)."""
        if self.ended:
            return False
        self._ended(reason=reason, user_id=self.user_id, token_sha256=self.token_sha256)
        return True

    @event("Ended", topic=SESSION_ENDED)
    def _ended(self, reason: str, user_id: str, token_sha256: str) -> None:
        self.ended = True


class StaffToken(Aggregate):
    """An API token for automation, owned by a user (``admin``: the bootstrap owner)."""

    TOPIC = "afflux_console:StaffToken"

    @classmethod
    def issue(
        cls,
        owner: str,
        role: str,
        allowed: Iterable[str],
        name: str,
        scopes: Iterable[str],
        token_sha256: str,
        expires_at: datetime | None,
        now: datetime,
    ) -> StaffToken:
        """A token with ``scopes``, each within ``allowed`` (the owner's role)."""
        asked = tuple(sorted(set(scopes)))
        if not asked:
            raise RuleViolation("scopes", "name at least one scope")
        beyond = [scope for scope in asked if scope not in set(allowed)]
        if beyond:
            raise RuleViolation(
                "scopes", f"beyond the role {role!r}: {', '.join(beyond)}", "scope_not_allowed"
            )
        if expires_at is not None and expires_at <= now:
            raise RuleViolation("expires_at", "must be in the future")
        return cls(
            user_id=owner,
            name=checked_name(name),
            role=role,
            scopes=asked,
            token_sha256=token_sha256,
            expires_at=expires_at,
        )

    @event("Created", topic=TOKEN_ISSUED)
    def __init__(
        self,
        user_id: str,
        name: str,
        role: str,
        scopes: tuple[str, ...],
        token_sha256: str,
        expires_at: datetime | None,
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.role = role
        self.scopes = tuple(scopes)
        self.token_sha256 = token_sha256
        self.expires_at = expires_at
        self.revoked = False

    @property
    def token_id(self) -> str:
        return self.id.hex

    def revoke(self) -> bool:
        """Revoke it (False, and no event, if it already was)."""
        if self.revoked:
            return False
        self._revoked(user_id=self.user_id, token_sha256=self.token_sha256)
        return True

    @event("Revoked", topic=TOKEN_REVOKED)
    def _revoked(self, user_id: str, token_sha256: str) -> None:
        self.revoked = True
