"""Partners who join by themselves, and the people who sign in for them.

- An **application** comes from the gateway's sign-up once the email is verified: the
  partner is created ``pending`` with what it told us (``PartnerApplied``). One per
  address (any case): the register of applications, written with the events, turns a
  second one into the first.
- Staff **decide** it (approve: ``active``; decline: ``rejected``, each with a reason).
  Approval invites the applicant as the partner's first user, its **owner**.
- **Users** sign in to the portal with email and password. An invitation or a reset is
  a link with a single-use token: 32 random bytes, of which this service keeps only the
  SHA-256 and an expiry; the token itself travels only in the mail. Passwords are kept
  as argon2id hashes. Hashes and tokens are in this service's tables, never on the log
  (which carries users, roles and references only): the service that holds them is the
  one that checks them, for the gateway.
- **Mail** that carries a token is asked of the notifications service
  (``POST /v1/messages``), never put on the log. The request is recorded as *owed* in
  the transaction that makes the token, sent right after it commits, and retried until
  notifications takes it (its idempotency key is the owed mail's id: one mail however
  often it is asked). An owed mail holds its link until then, like notifications' own
  queue does.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from afflux_contracts import utc_now
from afflux_partners.application.partners import Page, Partners
from afflux_partners.domain.partner import NoSuchUser, NotAnApplication, Partner
from afflux_partners.domain.people import (
    PartnerUser,
    Role,
    UserStatus,
    check_new_user,
    check_password,
    checked_application,
)
from afflux_partners.domain.rules import Conflict, check_email, check_name
from afflux_plumbing.http import NotFound
from afflux_plumbing.store import Write

INVITATION = "invitation"
RESET = "reset"


class InvalidToken(Exception):
    """Not a token of ours, or used already: the link does nothing."""


class ExpiredToken(Exception):
    """A token of ours whose time is up: ask for a new link."""


@dataclass(frozen=True)
class Login:
    user_id: str
    partner_id: str
    password_hash: str | None
    status: str


@dataclass(frozen=True)
class Token:
    user_id: str
    partner_id: str
    purpose: str
    expires_at: datetime


@dataclass(frozen=True)
class OwedMail:
    mail_id: str
    template: str
    recipient: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Invited:
    """A user invited, and whether the mail is with notifications already (else owed)."""

    user: PartnerUser
    mailed: bool


@dataclass(frozen=True)
class SignedIn:
    partner_id: str
    user: PartnerUser


class PeopleViews(Protocol):
    """The application register and the credentials, beside the events."""

    def application_of(self, email: str) -> str | None:
        """The partner_id of the application from this address (any case)."""
        ...

    def application_rows(self, partner: Partner) -> Sequence[Write]: ...

    def applications(self, status: str | None, after: int | None, limit: int) -> list[dict[str, Any]]:
        """``id`` (partner_id) and ``seq`` of up to ``limit + 1`` applications after ``after``."""
        ...

    def login_of(self, email: str) -> Login | None: ...

    def login_rows(self, partner_id: str, user: PartnerUser,
                   password_hash: str | None = None) -> Sequence[Write]:
        """The user's login as its state now (removed: gone, its tokens with it); a new
        password hash when given."""
        ...

    def token(self, token_sha256: str) -> Token | None: ...

    def token_rows(self, token_sha256: str, token: Token) -> Sequence[Write]:
        """The new token, replacing the user's others of its purpose."""
        ...

    def spend_tokens(self, user_id: str) -> Sequence[Write]:
        """Every token of the user, gone (one is used: the others are void too)."""
        ...

    def owe(self, mail: OwedMail) -> Sequence[Write]: ...

    def owed(self, older_than: datetime) -> list[OwedMail]: ...

    def paid(self, mail_id: str) -> None:
        """The owed mail is with notifications: forget it (and its link)."""
        ...

    def rehash(self, user_id: str, password_hash: str) -> None: ...


class Passwords(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether it matches; a ``None`` hash costs the same time and is never a match."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Mailer(Protocol):
    def send(self, mail: OwedMail) -> bool:
        """Ask notifications for the mail (idempotency key: ``mail_id``); False when it
        could not take it now (the mail stays owed)."""
        ...


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_user_id() -> str:
    return f"usr_{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Links:
    """Where the links in mails point (the portal's public address) and how long they work."""

    portal_url: str
    invitation_hours: int = 72
    reset_minutes: int = 60

    def password_link(self, token: str) -> str:
        return f"{self.portal_url.rstrip('/')}/password?token={token}"


class Onboarding:
    """The use cases of applications and partner users, on the partners application."""

    def __init__(self, partners: Partners, views: PeopleViews, passwords: Passwords, mailer: Mailer,
                 links: Links) -> None:
        self.partners = partners
        self.views = views
        self.passwords = passwords
        self.mailer = mailer
        self.links = links

    # -- applications ------------------------------------------------------------------

    def apply(self, name: str, email: str, fields: Mapping[str, Any], terms_accepted_at: datetime,
              email_verified_at: datetime) -> tuple[Partner, bool]:
        """Record the application (and the pending partner); the one from the same
        address if there is one already (False: not created now)."""
        email, name = check_email(email), check_name(name)
        application = checked_application(fields, terms_accepted_at, email_verified_at)

        def apply() -> tuple[Partner, bool]:
            existing = self.views.application_of(email)
            if existing is not None:
                return self.partners.get_partner(existing), False
            partner = Partner.apply(name, email, application)
            self.partners.save(partner, writes=[*self.partners.views.partner_rows(partner),
                                                *self.views.application_rows(partner)])
            return partner, True

        return self.partners._retrying(apply)

    def applications(self, status: str | None, after: int | None, limit: int) -> Page[Partner]:
        rows = self.views.applications(status, after, limit)
        page = rows[:limit]
        return Page([self.partners.get_partner(row["id"]) for row in page],
                    page[-1]["seq"] if len(rows) > limit else None)

    def decide(self, partner_id: str, approve: bool, reason: str | None) -> tuple[Partner, Invited | None]:
        """Approve (the applicant is invited as the owner) or decline; deciding the same
        again changes nothing and invites nobody again."""
        owed: list[OwedMail] = []

        def decide() -> tuple[Partner, PartnerUser | None]:
            owed.clear()
            partner = self.application(partner_id)
            if not partner.decide(approve, reason):
                return partner, None
            writes = [*self.partners.views.partner_rows(partner), *self.views.application_rows(partner)]
            user = None
            if approve and not any(u.current for u in partner.users.values()):
                user, more = self._invite(partner, partner.email, partner.name, Role.OWNER, None, owed)
                writes += more
            self.partners.save(partner, writes=writes)
            return partner, user

        partner, user = self.partners._retrying(decide)
        return partner, Invited(user, self._send(owed)) if user is not None else None

    def application(self, partner_id: str) -> Partner:
        partner = self.partners.get_partner(partner_id)
        if partner.application is None:
            raise NotFound("application_not_found", f"partner {partner_id!r} did not apply: staff created it")
        return partner

    # -- users -------------------------------------------------------------------------

    def invite(self, partner_id: str, email: str, name: str | None, role: str,
               invited_by: str | None) -> Invited:
        """Invite someone to sign in for the partner (an owner's or staff's call)."""
        email, name, chosen = check_new_user(email, name, role)
        owed: list[OwedMail] = []

        def invite() -> PartnerUser:
            owed.clear()
            partner = self.partners.get_partner(partner_id)
            if invited_by is not None:
                self._owner(partner, invited_by)
            user, writes = self._invite(partner, email, name, chosen, invited_by, owed)
            self.partners.save(partner, writes=writes)
            return user

        user = self.partners._retrying(invite)
        return Invited(user, self._send(owed))

    def _invite(self, partner: Partner, email: str, name: str | None, role: Role, invited_by: str | None,
                owed: list[OwedMail]) -> tuple[PartnerUser, list[Write]]:
        login = self.views.login_of(email)
        expires_at = utc_now() + timedelta(hours=self.links.invitation_hours)
        user = partner.invite_user(new_user_id(), email, name, role, invited_by, expires_at)
        if login is not None and login.user_id != user.user_id:
            raise Conflict("email_taken", f"{email} already signs in for a partner", "email")
        token = secrets.token_urlsafe(32)
        mail = OwedMail(f"invitation:{token_sha256(token)[:32]}", INVITATION, email, {
            "link": self.links.password_link(token), "partner_name": partner.name, "name": name,
            "expires_at": expires_at.isoformat(timespec="minutes"),
            "invited_by": partner.users[invited_by].name or partner.users[invited_by].email
            if invited_by in partner.users else None})
        owed.append(mail)
        return user, [*self.views.login_rows(partner.partner_id, user),
                      *self.views.token_rows(token_sha256(token),
                                             Token(user.user_id, partner.partner_id, INVITATION, expires_at)),
                      *self.views.owe(mail)]

    def remove(self, partner_id: str, user_id: str, removed_by: str | None) -> PartnerUser:
        """The user can sign in no more (their sessions end when the gateway reads it)."""
        def remove() -> PartnerUser:
            partner = self.partners.get_partner(partner_id)
            if removed_by is not None:
                self._owner(partner, removed_by)
            try:
                user = partner.remove_user(user_id, removed_by)
            except NoSuchUser:
                raise NotFound("user_not_found", f"partner {partner_id!r} has no user {user_id!r}") from None
            self.partners.save(partner, writes=self.views.login_rows(partner_id, user))
            return user

        return self.partners._retrying(remove)

    def users(self, partner_id: str) -> list[PartnerUser]:
        """The partner's current users (invited or active), in the order they were invited."""
        return [user for user in self.partners.get_partner(partner_id).users.values() if user.current]

    @staticmethod
    def _owner(partner: Partner, user_id: str) -> None:
        acting = partner.users.get(user_id)
        if acting is None or acting.role is not Role.OWNER or acting.status is not UserStatus.ACTIVE:
            raise Conflict("not_an_owner", "only an owner of the partner invites and removes its users",
                           "user_id")

    # -- credentials ---------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> SignedIn | None:
        """The user whose email and password these are, if active; None otherwise (the
        same time whether the address is known or not)."""
        login = self.views.login_of(email)
        usable = login is not None and login.status == UserStatus.ACTIVE
        if not self.passwords.verify(login.password_hash if usable and login else None, password):
            return None
        assert login is not None and login.password_hash is not None
        if self.passwords.needs_rehash(login.password_hash):
            self.views.rehash(login.user_id, self.passwords.hash(password))
        partner = self.partners.get_partner(login.partner_id)
        return SignedIn(partner.partner_id, partner.user(login.user_id))

    def check_token(self, token: str) -> tuple[Token, Partner]:
        """What a link's token is for (``InvalidToken``, ``ExpiredToken``)."""
        found = self.views.token(token_sha256(token)) if 20 <= len(token) <= 100 else None
        if found is None:
            raise InvalidToken()
        if found.expires_at <= utc_now():
            raise ExpiredToken()
        return found, self.partners.get_partner(found.partner_id)

    def set_password(self, token: str, password: str) -> SignedIn:
        """Set the password with an invitation (the user becomes active) or a reset link;
        the token, and any other of the user's, is spent."""
        check_password(password)
        password_hash = self.passwords.hash(password)

        def set_password() -> SignedIn:
            found, partner = self.check_token(token)
            try:
                user = (partner.activate_user(found.user_id) if found.purpose == INVITATION
                        else partner.reset_password(found.user_id, utc_now()))
            except (NoSuchUser, Conflict):
                raise InvalidToken() from None
            self.partners.save(partner, writes=[
                *self.views.login_rows(partner.partner_id, partner.user(user.user_id), password_hash),
                *self.views.spend_tokens(user.user_id)])
            return SignedIn(partner.partner_id, partner.user(user.user_id))

        return self.partners._retrying(set_password)

    def request_reset(self, email: str) -> bool:
        """Mail a reset link if the address is an active user's (True); nothing otherwise.
        The caller answers the same either way."""
        login = self.views.login_of(email)
        if login is None or login.status != UserStatus.ACTIVE:
            return False
        partner = self.partners.get_partner(login.partner_id)
        user = partner.user(login.user_id)
        token = secrets.token_urlsafe(32)
        expires_at = utc_now() + timedelta(minutes=self.links.reset_minutes)
        mail = OwedMail(f"reset:{token_sha256(token)[:32]}", "password_reset", user.email, {
            "link": self.links.password_link(token), "name": user.name,
            "expires_at": expires_at.isoformat(timespec="minutes")})
        self.views_write([*self.views.token_rows(token_sha256(token),
                                                 Token(user.user_id, partner.partner_id, RESET, expires_at)),
                          *self.views.owe(mail)])
        self._send([mail])
        return True

    def views_write(self, writes: Sequence[Write]) -> None:
        """Writes that go with no event (a reset asked for changes no aggregate)."""
        with self.partners.tracked_recorder.datastore.transaction(commit=True) as curs:
            for write in writes:
                curs.execute(write.statement, write.params)

    # -- owed mail -------------------------------------------------------------------------

    def _send(self, owed: Sequence[OwedMail]) -> bool:
        sent = True
        for mail in owed:
            if self.mailer.send(mail):
                self.views.paid(mail.mail_id)
            else:
                sent = False
        return sent

    def send_owed(self, older_than: timedelta = timedelta(seconds=5)) -> int:
        """Send what is still owed (a crash or an unreachable notifications service left
        it); the number sent."""
        owed = self.views.owed(utc_now() - older_than)
        return sum(1 for mail in owed if self._send([mail]))


__all__ = ["ExpiredToken", "InvalidToken", "Invited", "Links", "NotAnApplication", "Onboarding", "SignedIn"]
