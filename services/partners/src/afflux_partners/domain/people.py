"""A partner's people and its application: who may sign in to the portal for it, in
which role, and what someone told us when they signed up.

Plain values and the rules that check them; the ``Partner`` aggregate holds them.
Credentials are not here: a password's hash and the tokens of invitations and resets
are the application's business (kept beside the events, never in them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from afflux_partners.domain.rules import Conflict, RuleViolation, check_email, check_http_url, check_name

MAX_USERS = 50
"""Users a partner may have at once (removed ones do not count)."""
MAX_REASON_LENGTH = 500
MAX_TRAFFIC_SOURCES = 10
MAX_SOURCE_LENGTH = 60
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
"""Long enough for a passphrase, short enough that hashing it costs nothing unusual."""
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Role(StrEnum):
    OWNER = "owner"
    """Invites and removes the partner's users."""
    MEMBER = "member"


class UserStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REMOVED = "removed"


@dataclass(frozen=True)
class PartnerUser:
    user_id: str
    email: str
    name: str | None
    role: Role
    status: UserStatus
    invited_by: str | None = None
    invitation_expires_at: datetime | None = None

    @property
    def current(self) -> bool:
        """Invited or active: holds the address and counts toward the limit."""
        return self.status is not UserStatus.REMOVED


@dataclass(frozen=True)
class Application:
    """What someone told us when they signed up (the email verified, the terms accepted)."""

    company: str | None
    website: str | None
    traffic_sources: tuple[str, ...]
    country: str | None
    terms_accepted_at: datetime
    email_verified_at: datetime


def email_key(email: str) -> str:
    """An address as compared: one application, one user per address, whatever its case."""
    return email.strip().lower()


def check_reason(reason: str | None, field: str = "reason") -> str | None:
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON_LENGTH or _CONTROL.search(reason.replace("\n", " ")):
        raise RuleViolation(field, f"at most {MAX_REASON_LENGTH} characters, no control characters")
    return reason.strip()


def check_user_name(name: str | None, field: str = "name") -> str | None:
    return check_name(name, field) if name is not None and name.strip() else None


def checked_application(fields: Mapping[str, object], terms_accepted_at: datetime,
                        email_verified_at: datetime) -> Application:
    """The optional fields of a sign-up, each checked (``field`` names what to fix)."""
    company = fields.get("company")
    website = fields.get("website")
    country = fields.get("country")
    sources = fields.get("traffic_sources") or ()
    if company is not None and not isinstance(company, str):
        raise RuleViolation("company", "must be text")
    if not isinstance(sources, list | tuple) or len(sources) > MAX_TRAFFIC_SOURCES:
        raise RuleViolation("traffic_sources", f"a list of at most {MAX_TRAFFIC_SOURCES} sources")
    cleaned: list[str] = []
    for index, source in enumerate(sources):
        if (not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_LENGTH
                or _CONTROL.search(source)):
            raise RuleViolation(f"traffic_sources.{index}", f"1 to {MAX_SOURCE_LENGTH} characters")
        if source.strip() not in cleaned:
            cleaned.append(source.strip())
    if country is not None and (not isinstance(country, str) or not _COUNTRY.match(country.upper())):
        raise RuleViolation("country", "an ISO 3166-1 alpha-2 code, e.g. DE")
    return Application(
        company=check_name(company, "company") if company and company.strip() else None,
        website=check_http_url(website, "website") if isinstance(website, str) and website.strip() else None,
        traffic_sources=tuple(cleaned),
        country=country.upper() if isinstance(country, str) else None,
        terms_accepted_at=terms_accepted_at,
        email_verified_at=email_verified_at,
    )


def check_password(password: str, field: str = "password") -> str:
    """Long enough to resist guessing; no other composition rule (NIST SP 800-63B)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise RuleViolation(field, f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
                            "weak_password")
    if password.strip() == "" or len(set(password)) < 4:
        raise RuleViolation(field, "too easy to guess: use more different characters", "weak_password")
    return password


def invitable(users: Iterable[PartnerUser], email: str) -> PartnerUser | None:
    """The current user with ``email`` (an invited one is invited again), or None; an
    active one cannot be invited again (409), nor a user past the limit."""
    current = [user for user in users if user.current]
    same = next((user for user in current if email_key(user.email) == email_key(email)), None)
    if same is not None and same.status is UserStatus.ACTIVE:
        raise Conflict("user_exists", f"{email} can already sign in for this partner", "email")
    if same is None and len(current) >= MAX_USERS:
        raise Conflict("too_many_users", f"a partner has at most {MAX_USERS} users: remove one first")
    return same


def removable(users: Mapping[str, PartnerUser], user_id: str) -> PartnerUser | None:
    """The user to remove (None: already removed); never the last active owner."""
    user = users.get(user_id)
    if user is None:
        raise KeyError(user_id)
    if not user.current:
        return None
    owners = [u for u in users.values() if u.role is Role.OWNER and u.status is UserStatus.ACTIVE]
    if user.role is Role.OWNER and user.status is UserStatus.ACTIVE and len(owners) == 1:
        raise Conflict("last_owner", "the partner's last owner cannot be removed: make someone else "
                       "owner first", "user_id")
    return user


def with_status(user: PartnerUser, status: UserStatus) -> PartnerUser:
    return replace(user, status=status)


def check_new_user(email: str, name: str | None, role: str) -> tuple[str, str | None, Role]:
    try:
        chosen = Role(role)
    except ValueError:
        raise RuleViolation("role", "owner or member", "invalid_role") from None
    return check_email(email), check_user_name(name), chosen
