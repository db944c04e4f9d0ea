"""Stored domain events -> the public events of ``afflux.staff.v1``.

No secret is translated: a password's hash and a TOTP secret are not in any event, and
a credential is named by its SHA-256. The envelope's event_id is derived from the stored
event, so a relay that re-sends after a crash sends the same id.
"""

from __future__ import annotations

from typing import Any

from afflux_console.domain.staff import (
    SESSION_ENDED,
    SESSION_STARTED,
    TOKEN_ISSUED,
    TOKEN_REVOKED,
    USER_CREATED,
    USER_UPDATED,
)
from afflux_contracts import (
    StaffSessionEnded,
    StaffSessionStarted,
    StaffTokenIssued,
    StaffTokenRevoked,
    StaffUserCreated,
    StaffUserDisabled,
    StaffUserUpdated,
)
from afflux_plumbing.relay import Translate, publishing

PRODUCER = "console"


def _user_created(e: Any) -> StaffUserCreated:
    return StaffUserCreated(
        user_id=e.originator_id.hex, email=e.email, name=e.name, role=e.role, version=e.originator_version
    )


def _user_updated(e: Any) -> StaffUserDisabled | StaffUserUpdated:
    state = {
        "user_id": e.originator_id.hex,
        "email": e.email,
        "name": e.name,
        "role": e.role,
        "disabled": e.disabled,
        "version": e.originator_version,
    }
    if e.disabled and "disabled" in e.changed:
        return StaffUserDisabled(**state)
    return StaffUserUpdated(**state, changed=tuple(e.changed))


def _session_started(e: Any) -> StaffSessionStarted:
    return StaffSessionStarted(
        user_id=e.user_id,
        session_id=e.originator_id.hex,
        token_sha256=e.token_sha256,
        role=e.role,
        expires_at=e.expires_at,
        second_factor=e.second_factor,
    )


def _session_ended(e: Any) -> StaffSessionEnded:
    return StaffSessionEnded(
        user_id=e.user_id, session_id=e.originator_id.hex, token_sha256=e.token_sha256, reason=e.reason
    )


def _token_issued(e: Any) -> StaffTokenIssued:
    return StaffTokenIssued(
        user_id=e.user_id,
        token_id=e.originator_id.hex,
        name=e.name,
        token_sha256=e.token_sha256,
        role=e.role,
        scopes=tuple(e.scopes),
        expires_at=e.expires_at,
    )


def _token_revoked(e: Any) -> StaffTokenRevoked:
    return StaffTokenRevoked(user_id=e.user_id, token_id=e.originator_id.hex, token_sha256=e.token_sha256)


TRANSLATIONS: dict[str, Translate] = {
    USER_CREATED: _user_created,
    USER_UPDATED: _user_updated,
    SESSION_STARTED: _session_started,
    SESSION_ENDED: _session_ended,
    TOKEN_ISSUED: _token_issued,
    TOKEN_REVOKED: _token_revoked,
}

to_envelope = publishing(PRODUCER, TRANSLATIONS)
