"""The staff use cases: accounts, sign-in and sign-out, second factor, API tokens.

Every change is an aggregate's event in the console's event store, published to
``afflux.staff.v1`` by the outbox relay, so every service learns of it within a moment
(``afflux_plumbing.staff_credentials``). What must never travel (a password's hash, a
TOTP secret) is kept in the console's own tables, written in the same transaction as the
events (``StaffViews``); a credential is handed out once and kept as its SHA-256.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from afflux_console.domain.rules import Conflict, Refused, RuleViolation
from afflux_console.domain.staff import StaffSession, StaffToken, StaffUser, check_password, checked_email
from afflux_contracts import BOOTSTRAP_OWNER, Actor, utc_now
from afflux_plumbing.actors import acting_as
from afflux_plumbing.auth import SCOPES, Principal
from afflux_plumbing.staff_credentials import SESSION_PREFIX, TOKEN_PREFIX, new_secret, sha256_hex
from afflux_plumbing.store import TrackedApplication, Write

A = TypeVar("A")
R = TypeVar("R")
ATTEMPTS = 3


class NotFound(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SignInRefused(Exception):
    """Wrong email, password or code, or a disabled user: one answer for all (401),
    ``code`` says only whether a second factor is what is missing."""

    def __init__(
        self, code: str = "invalid_credentials", message: str = "the email, password or code is not right"
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Account:
    """A staff user as the console lists them (no secret)."""

    user_id: str
    email: str
    name: str
    role: str
    disabled: bool
    second_factor: bool
    created_at: datetime


@dataclass(frozen=True)
class Secrets:
    password_hash: str
    totp_secret: str | None
    totp_pending: str | None


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    user_id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool
    issued_at: datetime


@dataclass(frozen=True)
class Issued:
    """A credential and what it is, shown this once."""

    credential_id: str
    secret: str
    expires_at: datetime | None


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class OneTimeCodes(Protocol):
    def new_secret(self) -> str: ...

    def uri(self, secret: str, email: str) -> str: ...

    def verify(self, secret: str, code: str) -> bool: ...


class StaffViews(Protocol):
    """What the use cases need of the console's tables."""

    def account_rows(self, user: StaffUser, created_at: datetime | None = None) -> Sequence[Write]: ...

    def secret_rows(self, user_id: str, secrets: Secrets) -> Sequence[Write]: ...

    def session_rows(self, sessions: Iterable[StaffSession]) -> Sequence[Write]: ...

    def token_rows(self, token: StaffToken, issued_at: datetime | None = None) -> Sequence[Write]: ...

    def account_by_email(self, email: str) -> Account | None: ...

    def account(self, user_id: str) -> Account | None: ...

    def accounts(self) -> list[Account]: ...

    def secrets(self, user_id: str) -> Secrets | None: ...

    def session_id_of(self, token_sha256: str) -> str | None: ...

    def live_session_ids(self, user_id: str) -> list[str]: ...

    def tokens(self, user_id: str | None) -> list[TokenRow]: ...

    def token(self, token_id: str) -> TokenRow | None: ...


class Staff(TrackedApplication):
    """The console's event store and its staff use cases."""

    name = "Console"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        hasher: PasswordHasher | None = None,
        codes: OneTimeCodes | None = None,
        session_hours: float = 12.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(env)
        self.views = self.open_views()
        if hasher is None or codes is None:
            raise TypeError("open the store as adapters.store.ConsoleStore")
        self.hasher, self.codes = hasher, codes
        self.session_lifetime = timedelta(hours=session_hours)
        self.clock = clock
        self._dummy_hash = hasher.hash("afflux-no-such-user-" + new_secret(""))

    def open_views(self) -> StaffViews:
        raise NotImplementedError("open the store as adapters.store.ConsoleStore")

    # Users

    def create_user(self, email: str, name: str, role: str, password: str) -> Account:
        user = StaffUser.create(email, name, role)
        check_password(password, user.email)
        if self.views.account_by_email(user.email) is not None:
            raise Conflict("email_taken", f"a staff user with the email {user.email!r} exists")
        password_hash = self.hasher.hash(password)
        try:
            self.save(
                user,
                writes=[
                    *self.views.account_rows(user, self.clock()),
                    *self.views.secret_rows(user.user_id, Secrets(password_hash, None, None)),
                ],
            )
        except IntegrityError as error:
            raise Conflict("email_taken", f"a staff user with the email {user.email!r} exists") from error
        return self.account(user.user_id)

    def account(self, user_id: str) -> Account:
        found = self.views.account(user_id) if _is_id(user_id) else None
        if found is None:
            raise NotFound("user_not_found", f"no staff user {user_id!r}")
        return found

    def accounts(self) -> list[Account]:
        return self.views.accounts()

    def edit_user(self, user_id: str, changes: Mapping[str, Any], by: Principal) -> Account:
        """Change name, role or standing; disabling a user also ends their sessions (so
        enabling them again revives none)."""

        def edit() -> None:
            user = self._get(StaffUser, user_id, NotFound("user_not_found", f"no staff user {user_id!r}"))
            changed = user.edit(changes, by.name if by.kind == "staff" else None)
            if not changed:
                return
            ended = (
                [self._ended(session_id) for session_id in self.views.live_session_ids(user.user_id)]
                if user.disabled
                else []
            )
            self.save(user, *ended, writes=[*self.views.account_rows(user), *self.views.session_rows(ended)])

        _retrying(edit)
        return self.account(user_id)

    # Sessions

    def sign_in(self, email: str, password: str, totp: str | None) -> tuple[Issued, Account]:
        """A new session for the right email, password (and code, once enrolled)."""
        try:
            address = checked_email(email)
        except RuleViolation:
            address = ""
        account = self.views.account_by_email(address) if address else None
        secrets = self.views.secrets(account.user_id) if account is not None else None
        if account is None or secrets is None:
            self.hasher.verify(self._dummy_hash, password)  # the same time as a wrong password
            raise SignInRefused()
        if not self.hasher.verify(secrets.password_hash, password) or account.disabled:
            raise SignInRefused()
        if secrets.totp_secret is not None:
            if not totp:
                raise SignInRefused(
                    "totp_required", "this user signs in with a code from their authenticator"
                )
            if not self.codes.verify(secrets.totp_secret, totp):
                raise SignInRefused()
        token = new_secret(SESSION_PREFIX)
        user = self._get(StaffUser, account.user_id, SignInRefused())
        session = StaffSession.start(
            user, sha256_hex(token), self.clock(), self.session_lifetime, secrets.totp_secret is not None
        )
        writes = [*self.views.session_rows([session])]
        if self.hasher.needs_rehash(secrets.password_hash):
            rehashed = Secrets(self.hasher.hash(password), secrets.totp_secret, secrets.totp_pending)
            writes.extend(self.views.secret_rows(account.user_id, rehashed))
        with acting_as(Actor(kind="staff", id=account.user_id, role=account.role)):
            self.save(session, writes=writes)
        return Issued(session.session_id, token, session.expires_at), account

    def sign_out(self, token: str) -> bool:
        """End the session of ``token`` (False: it is not a session's, or already ended)."""
        session_id = self.views.session_id_of(sha256_hex(token))
        if session_id is None:
            return False

        def end() -> bool:
            session = self._get(StaffSession, session_id, NotFound("session_not_found", "no such session"))
            if not session.end("signed_out"):
                return False
            self.save(session, writes=self.views.session_rows([session]))
            return True

        return _retrying(end)

    def _ended(self, session_id: str) -> StaffSession:
        session = self._get(StaffSession, session_id, NotFound("session_not_found", "no such session"))
        session.end("ended")
        return session

    # Second factor

    def enrol_totp(self, user_id: str) -> str:
        """A new TOTP secret, pending until a code from it is confirmed; its otpauth URI."""
        account, secrets = self._with_secrets(user_id)
        pending = self.codes.new_secret()
        self._save_secrets(user_id, Secrets(secrets.password_hash, secrets.totp_secret, pending))
        return self.codes.uri(pending, account.email)

    def confirm_totp(self, user_id: str, code: str) -> Account:
        """The pending secret becomes the user's second factor once a code from it is right."""
        _, secrets = self._with_secrets(user_id)
        if secrets.totp_pending is None:
            raise Refused("totp_not_enrolling", "start the enrolment first (POST .../totp)")
        if not self.codes.verify(secrets.totp_pending, code):
            raise RuleViolation("code", "is not the current code of the authenticator", "invalid_code")
        self._save_secrets(user_id, Secrets(secrets.password_hash, secrets.totp_pending, None))
        return self.account(user_id)

    def _with_secrets(self, user_id: str) -> tuple[Account, Secrets]:
        account = self.account(user_id)
        secrets = self.views.secrets(user_id)
        if secrets is None:
            raise NotFound("user_not_found", f"no staff user {user_id!r}")
        return account, secrets

    def _save_secrets(self, user_id: str, secrets: Secrets) -> None:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            for write in self.views.secret_rows(user_id, secrets):
                curs.execute(write.statement, write.params)

    # API tokens

    def issue_token(
        self, by: Principal, name: str, scopes: Iterable[str], expires_at: datetime | None
    ) -> tuple[Issued, TokenRow]:
        """A token owned by the caller's person, within what the caller may do now."""
        owner = self.owner_of(by)
        secret = new_secret(TOKEN_PREFIX)
        allowed = by.scopes if by.scopes is not None else _every_scope()
        token = StaffToken.issue(
            owner, by.role or "owner", allowed, name, scopes, sha256_hex(secret), expires_at, self.clock()
        )
        self.save(token, writes=self.views.token_rows(token, self.clock()))
        found = self.views.token(token.token_id)
        assert found is not None
        return Issued(token.token_id, secret, expires_at), found

    def tokens(self, by: Principal, everyone: bool) -> list[TokenRow]:
        return self.views.tokens(None if everyone else self.owner_of(by))

    def revoke_token(self, token_id: str, by: Principal, anyone: bool) -> TokenRow:
        """Revoke a token of the caller's own (anyone's, with ``anyone``)."""
        missing = NotFound("token_not_found", f"no API token {token_id!r}")
        row = self.views.token(token_id) if _is_id(token_id) else None
        if row is None or (not anyone and row.user_id != self.owner_of(by)):
            raise missing

        def revoke() -> None:
            token = self._get(StaffToken, token_id, missing)
            if token.revoke():
                self.save(token, writes=self.views.token_rows(token))

        _retrying(revoke)
        found = self.views.token(token_id)
        assert found is not None
        return found

    def owner_of(self, by: Principal) -> str:
        """The person a principal is: a staff user, the owner of a token, or the bootstrap owner."""
        if by.kind == "staff":
            return by.name
        if by.kind == "token":
            row = self.views.token(by.name)
            if row is not None:
                return row.user_id
        if by.kind == "admin":
            return BOOTSTRAP_OWNER
        raise Refused("not_a_person", "only staff (or the admin token) hold API tokens")

    # Aggregates

    def _get(self, kind: type[A], public_id: str, missing: Exception) -> A:
        if not _is_id(public_id):
            raise missing
        try:
            aggregate: object = self.repository.get(UUID(hex=public_id))
        except AggregateNotFoundError:
            raise missing from None
        if not isinstance(aggregate, kind):
            raise missing
        return aggregate


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _every_scope() -> frozenset[str]:
    return frozenset(SCOPES)


def _retrying(command: Callable[[], R]) -> R:
    """Run ``command``, again on a lost race with another writer of the same aggregate."""
    for _ in range(ATTEMPTS - 1):
        try:
            return command()
        except IntegrityError:
            continue
    try:
        return command()
    except IntegrityError as error:
        raise Refused("concurrent_update", "the resource was changed concurrently; retry") from error
