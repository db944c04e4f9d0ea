"""Who signs in to the portal besides API keys: partner users, as the partners log tells
them, and the sign-ups waiting for their email to be verified.

``People`` is the projection of the users (``@handles``, like ``Projection``): each
event carries the user's whole state, so a run keeps the last state per user; a reset
password moves the moment before which the user's sessions are void. The gateway
keeps no password and no token: the partners service checks those.

``SignupBook`` is what the sign-up needs: a sign-up is kept (by a random id, which its
signed link names) until its link is opened; its rows also count the sign-ups per
address and per email in the abuse window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from afflux_contracts.partners import (
    PartnerUserActivated,
    PartnerUserInvited,
    PartnerUserPasswordReset,
    PartnerUserRemoved,
)
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, Write

UserState = PartnerUserInvited | PartnerUserActivated | PartnerUserRemoved


@dataclass(frozen=True)
class PortalUser:
    user_id: str
    partner_id: str
    email: str
    name: str | None
    role: str
    status: str


class UserViews(Protocol):
    def save_users(self, users: Sequence[UserState]) -> Write | None: ...

    def void_sessions_before(self, resets: Sequence[PartnerUserPasswordReset]) -> Write | None: ...


class UserReads(Protocol):
    def user_session_live(self, user_id: str, partner_id: str, nonce: str, issued_at: datetime) -> bool:
        """The user is active, the session was not signed out and began after the user's
        last password reset."""
        ...

    def portal_user(self, user_id: str) -> PortalUser | None: ...

    def partner_users(self, partner_id: str) -> list[PortalUser]:
        """The partner's invited and active users, in the order they were invited."""
        ...


@dataclass(frozen=True)
class Signup:
    signup_id: str
    email: str
    data: dict[str, Any]
    created_at: datetime
    partner_id: str | None


class SignupBook(Protocol):
    def recent_signups(self, address: str, email: str, since: datetime) -> tuple[list[datetime],
                                                                                 list[datetime]]:
        """When the sign-ups since ``since`` were made, from this address and for this email."""
        ...

    def record_signup(self, signup: Signup, address: str) -> None: ...

    def signup(self, signup_id: str) -> Signup | None: ...

    def confirmed(self, signup_id: str, partner_id: str) -> None: ...


class People:
    """The users projection (mixed into the gateway's projections, beside ``Projection``)."""

    people: UserViews

    @handles(PartnerUserInvited, PartnerUserActivated, PartnerUserRemoved)
    def on_user(self, run: Run) -> Changes:
        last = {record.payload.user_id: record.payload for record in run}
        write = self.people.save_users(list(last.values()))
        return Changes(writes=[write] if write is not None else [])

    @handles(PartnerUserPasswordReset)
    def on_password_reset(self, run: Run) -> Changes:
        write = self.people.void_sessions_before([record.payload for record in run])
        return Changes(writes=[write] if write is not None else [])
