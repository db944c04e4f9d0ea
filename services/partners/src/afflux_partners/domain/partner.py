"""A partner: anyone who promotes offers and earns commissions, from an affiliate site
to the advertiser's own newsletter."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.people import (
    Application,
    PartnerUser,
    Role,
    UserStatus,
    check_reason,
    invitable,
    removable,
    with_status,
)
from afflux_partners.domain.rules import (
    Conflict,
    RuleViolation,
    StatusChangeRefused,
    check_billing,
    check_contacts,
    check_email,
    check_manager,
    check_name,
    check_partner_postback,
    check_partner_type,
    check_tags,
)
from afflux_partners.domain.values import ApiKey, Billing, Contact, PartnerPostback, PartnerStatus

INITIAL_STATUSES = frozenset({PartnerStatus.ACTIVE, PartnerStatus.INACTIVE, PartnerStatus.PENDING})
"""A partner starts active, inactive or pending review; suspension (for fraud) and
rejection (of an application) are decisions taken about an existing partner."""

EDITABLE = ("name", "email", "type", "tags", "billing", "manager", "contacts", "postback")
"""What an edit may change; the status has its own lifecycle (``change_status``)."""

MAX_ACTIVE_API_KEYS = 10


def check_partner_status_change(current: PartnerStatus, requested: PartnerStatus) -> None:
    """Rejection answers an application: only a pending partner can be rejected. Every
    other move (suspend, reactivate, reconsider a rejected applicant) is allowed."""
    if requested is PartnerStatus.REJECTED and current is not PartnerStatus.PENDING:
        raise StatusChangeRefused(
            "partner", current, requested, "only a pending application can be rejected"
        )


def checked_profile(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The editable fields given, each validated and in canonical form."""
    checks: dict[str, Callable[[Any], Any]] = {
        "name": check_name,
        "email": check_email,
        "type": check_partner_type,
        "tags": check_tags,
        "billing": lambda billing: check_billing(billing) if billing is not None else None,
        "manager": check_manager,
        "contacts": check_contacts,
        "postback": lambda postback: check_partner_postback(postback) if postback is not None else None,
    }
    unknown = set(fields) - set(checks)
    if unknown:
        raise RuleViolation(sorted(unknown)[0], "cannot be edited", "not_editable")
    for name in ("name", "email", "tags", "contacts"):
        if name in fields and fields[name] is None:
            raise RuleViolation(name, "must not be null", "invalid_value")
    return {name: checks[name](value) for name, value in fields.items()}


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
PARTNER_CREATED = "afflux_partners:Partner.Created"
PARTNER_STATUS_CHANGED = "afflux_partners:Partner.StatusChanged"
PARTNER_UPDATED = "afflux_partners:Partner.Updated"
PARTNER_API_KEY_ISSUED = "afflux_partners:Partner.ApiKeyIssued"
PARTNER_API_KEY_REVOKED = "afflux_partners:Partner.ApiKeyRevoked"
PARTNER_APPLIED = "afflux_partners:Partner.Applied"
PARTNER_USER_INVITED = "afflux_partners:Partner.UserInvited"
PARTNER_USER_ACTIVATED = "afflux_partners:Partner.UserActivated"
PARTNER_USER_REMOVED = "afflux_partners:Partner.UserRemoved"
PARTNER_USER_PASSWORD_RESET = "afflux_partners:Partner.UserPasswordReset"


class NoSuchUser(LookupError):
    """The partner has no user with this id."""


class NotAnApplication(Exception):
    """The partner did not come from the sign-up (staff created it): nothing to decide."""


class Partner(Aggregate):
    """Its id (as 32 hex characters) is the public ``partner_id``."""

    TOPIC = "afflux_partners:Partner"

    @classmethod
    def create(
        cls,
        name: str,
        email: str,
        type: str | None = None,
        status: PartnerStatus = PartnerStatus.ACTIVE,
        tags: Iterable[str] = (),
        billing: Billing | None = None,
        manager: str | None = None,
        contacts: Iterable[Contact] = (),
        postback: PartnerPostback | None = None,
    ) -> Partner:
        """A new partner, if what it is given passes the rules."""
        if status not in INITIAL_STATUSES:
            raise RuleViolation(
                "status", f"a new partner is active, inactive or pending, not {status}", "invalid_status"
            )
        profile = checked_profile({"name": name, "email": email, "type": type, "tags": tags,
                                   "billing": billing, "manager": manager, "contacts": contacts,
                                   "postback": postback})
        return cls(status=status, **profile)

    @event("Created", topic=PARTNER_CREATED)
    def __init__(
        self,
        name: str,
        email: str,
        type: str | None,
        status: PartnerStatus,
        tags: tuple[str, ...],
        billing: Billing | None,
        manager: str | None = None,
        contacts: tuple[Contact, ...] = (),
        postback: PartnerPostback | None = None,
    ) -> None:
        self.status = PartnerStatus(status)
        self.api_keys: dict[str, ApiKey] = {}
        self.application: Application | None = None
        self.decision_reason: str | None = None
        self.users: dict[str, PartnerUser] = {}
        self._set_profile(name, email, type, tags, billing, manager, contacts, postback)

    @property
    def partner_id(self) -> str:
        return self.id.hex

    @property
    def profile(self) -> dict[str, Any]:
        """The editable state, field by field."""
        return {name: getattr(self, name) for name in EDITABLE}

    def change_status(self, status: PartnerStatus, reason: str | None = None) -> bool:
        """Move to ``status``; False (and no event) if the partner is already there."""
        if status == self.status:
            return False
        check_partner_status_change(self.status, status)
        self._status_changed(status, reason=check_reason(reason), previous=self.status)
        return True

    @event("StatusChanged", topic=PARTNER_STATUS_CHANGED)
    def _status_changed(self, status: PartnerStatus, reason: str | None = None,
                        previous: PartnerStatus | None = None) -> None:
        self.status = PartnerStatus(status)
        if previous == PartnerStatus.PENDING or (previous == PartnerStatus.REJECTED
                                                 and status == PartnerStatus.ACTIVE):
            self.decision_reason = reason

    # The application (the portal's sign-up)

    @classmethod
    def apply(cls, name: str, email: str, application: Application) -> Partner:
        """A partner from the sign-up: pending, with what it told us."""
        partner = cls.create(name=name, email=email, status=PartnerStatus.PENDING)
        partner._applied(
            name=partner.name, email=partner.email, company=application.company, website=application.website,
            traffic_sources=application.traffic_sources, country=application.country,
            terms_accepted_at=application.terms_accepted_at, email_verified_at=application.email_verified_at)
        return partner

    @event("Applied", topic=PARTNER_APPLIED)
    def _applied(self, name: str, email: str, company: str | None, website: str | None,
                 traffic_sources: tuple[str, ...],
                 country: str | None, terms_accepted_at: datetime, email_verified_at: datetime) -> None:
        """Carries the name and email it was made with, so the event alone tells staff."""
        self.application = Application(company, website, tuple(traffic_sources), country, terms_accepted_at,
                                       email_verified_at)

    def decide(self, approve: bool, reason: str | None) -> bool:
        """Staff's verdict on the application: approve (active) or decline (rejected).
        Deciding the same again changes nothing (False); a declined applicant may still
        be approved later, an approved one is not declined (suspend it instead)."""
        if self.application is None:
            raise NotAnApplication(self.partner_id)
        wanted = PartnerStatus.ACTIVE if approve else PartnerStatus.REJECTED
        if not approve and self.status is not PartnerStatus.PENDING and self.status is not wanted:
            raise Conflict("already_approved", "the application was approved: suspend or deactivate "
                           "the partner instead", "partner_id")
        if approve and self.status not in (PartnerStatus.PENDING, PartnerStatus.REJECTED):
            return False
        return self.change_status(wanted, reason)

    # Users: the people who sign in to the portal for the partner

    def invite_user(self, user_id: str, email: str, name: str | None, role: Role, invited_by: str | None,
                    expires_at: datetime) -> PartnerUser:
        """Invite someone to set a password (an invited user is invited again, under the
        same id). The application makes the token; the aggregate records who and until when."""
        if self.status in (PartnerStatus.REJECTED, PartnerStatus.PENDING):
            raise Conflict("partner_not_active", f"partner {self.partner_id} is {self.status}: its users "
                           "are invited once it is approved", "partner_id")
        same = invitable(self.users.values(), email)
        self._user_invited(user_id=same.user_id if same else user_id, email=email, name=name,
                           role=Role(role), invited_by=invited_by, expires_at=expires_at)
        return self.users[same.user_id if same else user_id]

    @event("UserInvited", topic=PARTNER_USER_INVITED)
    def _user_invited(self, user_id: str, email: str, name: str | None, role: Role, invited_by: str | None,
                      expires_at: datetime) -> None:
        self.users[user_id] = PartnerUser(user_id, email, name, Role(role), UserStatus.INVITED, invited_by,
                                          expires_at)

    def user(self, user_id: str) -> PartnerUser:
        found = self.users.get(user_id)
        if found is None:
            raise NoSuchUser(user_id)
        return found

    def activate_user(self, user_id: str) -> PartnerUser:
        """The invited user set a password: they can sign in."""
        user = self.user(user_id)
        if user.status is not UserStatus.INVITED:
            raise Conflict("not_invited", f"user {user_id} is {user.status}, not invited", "token")
        self._user_activated(**_whole(user))
        return self.users[user_id]

    @event("UserActivated", topic=PARTNER_USER_ACTIVATED)
    def _user_activated(self, user_id: str, email: str, name: str | None, role: Role) -> None:
        """Each user event carries the user's whole state (what the log publishes)."""
        self.users[user_id] = with_status(self.users[user_id], UserStatus.ACTIVE)

    def reset_password(self, user_id: str, at: datetime) -> PartnerUser:
        user = self.user(user_id)
        if user.status is not UserStatus.ACTIVE:
            raise Conflict("not_active", f"user {user_id} is {user.status}", "token")
        self._password_reset(user_id=user_id, reset_at=at)
        return user

    @event("UserPasswordReset", topic=PARTNER_USER_PASSWORD_RESET)
    def _password_reset(self, user_id: str, reset_at: datetime) -> None:
        pass

    def remove_user(self, user_id: str, removed_by: str | None) -> PartnerUser:
        """The user can no longer sign in (removing a removed user changes nothing);
        never the last active owner."""
        try:
            user = removable(self.users, user_id)
        except KeyError:
            raise NoSuchUser(user_id) from None
        if user is not None:
            self._user_removed(**_whole(user), removed_by=removed_by)
        return self.users[user_id]

    @event("UserRemoved", topic=PARTNER_USER_REMOVED)
    def _user_removed(self, user_id: str, email: str, name: str | None, role: Role,
                      removed_by: str | None) -> None:
        self.users[user_id] = with_status(self.users[user_id], UserStatus.REMOVED)

    def edit(self, changes: Mapping[str, Any]) -> tuple[str, ...]:
        """Apply an edit (fields not named keep their value); the names of the fields that
        really changed, none (and no event) if the edit changes nothing."""
        checked = checked_profile(changes)
        changed = tuple(name for name in EDITABLE if name in checked and checked[name] != getattr(self, name))
        if changed:
            self._updated(**{**self.profile, **checked}, status=self.status, changed=changed)
        return changed

    @event("Updated", topic=PARTNER_UPDATED)
    def _updated(
        self,
        name: str,
        email: str,
        type: str | None,
        tags: tuple[str, ...],
        billing: Billing | None,
        manager: str | None,
        contacts: tuple[Contact, ...],
        postback: PartnerPostback | None,
        status: PartnerStatus,
        changed: tuple[str, ...],
    ) -> None:
        """The whole new state (with the status it had then) is stored, so the event alone
        says the partner's state."""
        self._set_profile(name, email, type, tags, billing, manager, contacts, postback)

    def _set_profile(self, name: str, email: str, type: str | None, tags: Iterable[str],
                     billing: Billing | None, manager: str | None, contacts: Iterable[Contact],
                     postback: PartnerPostback | None) -> None:
        self.name = name
        self.email = email
        self.type = type
        self.tags = tuple(tags)
        self.billing = billing
        self.manager = manager
        self.contacts = tuple(contacts)
        self.postback = postback

    # API keys

    def issue_api_key(self, key_id: str, key_sha256: str, prefix: str, issued_at: datetime) -> ApiKey:
        """Remember a new key by its hash (the application draws the key: no I/O here)."""
        if self.status is PartnerStatus.REJECTED:
            raise Conflict("partner_rejected", "a rejected partner gets no API key")
        if sum(key.active for key in self.api_keys.values()) >= MAX_ACTIVE_API_KEYS:
            raise Conflict("too_many_api_keys", f"a partner has at most {MAX_ACTIVE_API_KEYS} active "
                                "API keys: revoke one first")
        self._api_key_issued(key_id=key_id, key_sha256=key_sha256, prefix=prefix, issued_at=issued_at)
        return self.api_keys[key_id]

    @event("ApiKeyIssued", topic=PARTNER_API_KEY_ISSUED)
    def _api_key_issued(self, key_id: str, key_sha256: str, prefix: str, issued_at: datetime) -> None:
        self.api_keys[key_id] = ApiKey(key_id, key_sha256, prefix, issued_at)

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> ApiKey | None:
        """Revoke the key; None if the partner has no such key. Revoking a revoked key
        changes nothing (no event)."""
        key = self.api_keys.get(key_id)
        if key is not None and key.active:
            self._api_key_revoked(key_id=key_id, revoked_at=revoked_at)
        return self.api_keys.get(key_id)

    @event("ApiKeyRevoked", topic=PARTNER_API_KEY_REVOKED)
    def _api_key_revoked(self, key_id: str, revoked_at: datetime) -> None:
        key = self.api_keys[key_id]
        self.api_keys[key_id] = ApiKey(key.key_id, key.key_sha256, key.prefix, key.issued_at, revoked_at)


def _whole(user: PartnerUser) -> dict[str, Any]:
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "role": user.role}
