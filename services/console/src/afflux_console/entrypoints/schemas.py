"""The console API's request and answer bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from afflux_console.application.audit import Entry
from afflux_console.application.staff import Account, TokenRow

Role = Literal["owner", "manager", "finance", "analyst"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: Role
    password: str = Field(max_length=256, description="12 to 256 characters; kept as its argon2id hash")


class UserPatch(_In):
    name: str | None = Field(None, max_length=200)
    role: Role | None = None
    disabled: bool | None = None


class UserOut(BaseModel):
    user_id: str
    email: str
    name: str
    role: Role
    disabled: bool
    second_factor: bool
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> UserOut:
        return cls(
            user_id=account.user_id,
            email=account.email,
            name=account.name,
            role=account.role,
            disabled=account.disabled,
            second_factor=account.second_factor,
            created_at=account.created_at,
        )


class UsersOut(BaseModel):
    users: list[UserOut]


class MeOut(BaseModel):
    """Who the credential is: a staff user (``user`` set), a token, or the admin token."""

    kind: str
    id: str
    role: str | None
    scopes: list[str]
    user: UserOut | None = None


class SessionIn(_In):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    totp: str | None = Field(None, max_length=16, description="the authenticator's code, once enrolled")


class SessionOut(BaseModel):
    token: str = Field(description="the bearer token: shown once, accepted by every service until expires_at")
    expires_at: datetime
    session_id: str
    user: UserOut


class TotpOut(BaseModel):
    otpauth_uri: str = Field(description="scan it (or type its secret) into an authenticator, then confirm")


class TotpConfirmIn(_In):
    code: str = Field(max_length=16)


class TokenIn(_In):
    name: str = Field(max_length=200)
    scopes: list[str] = Field(max_length=64)
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    token_id: str
    user_id: str
    name: str
    role: str
    scopes: list[str]
    expires_at: datetime | None
    revoked: bool
    issued_at: datetime

    @classmethod
    def of(cls, row: TokenRow) -> TokenOut:
        return cls(
            token_id=row.token_id,
            user_id=row.user_id,
            name=row.name,
            role=row.role,
            scopes=list(row.scopes),
            expires_at=row.expires_at,
            revoked=row.revoked,
            issued_at=row.issued_at,
        )


class TokenIssuedOut(TokenOut):
    token: str = Field(description="the bearer token: shown in this answer only")


class TokensOut(BaseModel):
    tokens: list[TokenOut]


class AuditItem(BaseModel):
    at: datetime
    actor: str
    actor_kind: str
    role: str | None
    person: str | None = Field(description="the staff user behind it: the actor, or a token's owner")
    action: str
    subject: str | None
    subjects: list[str]
    event_id: str
    topic: str

    @classmethod
    def of(cls, entry: Entry) -> AuditItem:
        return cls(
            at=entry.at,
            actor=entry.actor_id,
            actor_kind=entry.actor_kind,
            role=entry.role,
            person=entry.person,
            action=entry.action,
            subject=entry.subject,
            subjects=list(entry.subjects),
            event_id=entry.event_id,
            topic=entry.topic,
        )


class AuditOut(BaseModel):
    items: list[AuditItem]
    next: str | None
