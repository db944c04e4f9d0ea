"""Events of ``afflux.staff.v1``: the network's staff, their sessions and API tokens,
keyed by the staff user's id (tokens the bootstrap admin issued: ``admin``).

Every service keeps a view of this topic to accept staff credentials (sign-in
sessions and API tokens), so a disabled user or a revoked token is refused everywhere
as soon as each service has read the event. No secret travels here: no password or
password hash, no TOTP secret, no token; a credential is named by its SHA-256 (hex),
which is what a service compares a presented bearer token's hash with.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from afflux_contracts.event import Event
from afflux_contracts.topics import STAFF
from afflux_contracts.values import UtcDatetime

StaffRole = Literal["owner", "manager", "finance", "analyst"]
"""``owner``: everything, staff included; ``manager``: partners, offers, relationships,
applications, conversion review; ``finance``: statements, payments, adjustments,
exports; ``analyst``: reads only. Each is a named set of scopes (``afflux_plumbing.auth``)."""

BOOTSTRAP_OWNER = "admin"
"""The user id of what the bootstrap admin token (``AFFLUX_ADMIN_TOKEN``) does: it is
the owner of the tokens it issues, and is no user of the console."""

Sha256Hex = Field(pattern=r"^[0-9a-f]{64}$")


class _StaffEvent(Event):
    """Each concrete event names the topic (which registers it with the codec)."""

    user_id: str

    def partition_key(self) -> str:
        return self.user_id


class _StaffUserState(_StaffEvent):
    """A staff user's whole state (consumers replace what they hold, newest ``version``
    wins)."""

    email: str
    name: str
    role: StaffRole
    disabled: bool = False
    version: int = Field(ge=1)


class StaffUserCreated(_StaffUserState):
    """An owner created a staff user."""

    topic: ClassVar = STAFF


class StaffUserUpdated(_StaffUserState):
    """A staff user's name, role or standing changed (``changed`` names which); a role
    change narrows or widens every live session and token of the user at once."""

    topic: ClassVar = STAFF

    changed: tuple[str, ...] = ()


class StaffUserDisabled(_StaffUserState):
    """A staff user may no longer act: every session and token of theirs is refused."""

    topic: ClassVar = STAFF


class StaffSessionStarted(_StaffEvent):
    """A staff user signed in: the session's bearer token (by its hash) is accepted
    until ``expires_at``, in the user's role at the time of each call."""

    topic: ClassVar = STAFF

    session_id: str
    token_sha256: str = Sha256Hex
    role: StaffRole
    """The user's role when the session started (the role in force is the user's newest)."""
    expires_at: UtcDatetime
    second_factor: bool = False
    """Whether the sign-in passed a TOTP check."""


class StaffSessionEnded(_StaffEvent):
    """A session ends before it expires: signed out, or ended by an owner."""

    topic: ClassVar = STAFF

    session_id: str
    token_sha256: str = Sha256Hex
    reason: Literal["signed_out", "ended"] = "signed_out"


class StaffTokenIssued(_StaffEvent):
    """An API token for automation, owned by ``user_id``: accepted with ``scopes``, and
    never more than the owner's role allows at the time of each call."""

    topic: ClassVar = STAFF

    token_id: str
    name: str
    token_sha256: str = Sha256Hex
    role: StaffRole
    """The owner's role when it was issued."""
    scopes: tuple[str, ...]
    expires_at: UtcDatetime | None = None


class StaffTokenRevoked(_StaffEvent):
    """The token is refused from now on, everywhere."""

    topic: ClassVar = STAFF

    token_id: str
    token_sha256: str = Sha256Hex
