"""The routes of applications and partner users.

- ``/v1/applications``: the gateway records a verified sign-up
  (``partners.applications.create``); staff list, approve and decline them
  (``applications.review``). Approval invites the applicant as the partner's owner.
- ``/v1/partners/{partner_id}/users``: staff (``partner_users.write``), or the gateway on
  an owner's behalf (naming the owner in ``invited_by`` / ``removed_by``), invite and
  remove a partner's users; listing them is a read (``partners.read``).
- ``/v1/partner-users/...``: the gateway's portal asks this service, which holds the
  hashes, to check a password, what a link's token is for, to set a password with it,
  and to mail a reset link (``partner_users.credentials``).

Writes are answered once their events are on the log (else 202, as every partners
write). A token or password never appears in an answer, a log line or an event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field

from afflux_partners.application.onboarding import ExpiredToken, InvalidToken, Invited, Onboarding, SignedIn
from afflux_partners.application.partners import Partners
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.people import MAX_PASSWORD_LENGTH, MAX_TRAFFIC_SOURCES, PartnerUser
from afflux_partners.entrypoints.http import (
    AFTER,
    PAGE_SIZE,
    PENDING,
    acknowledged,
    decode_cursor,
    encode_cursor,
)
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.background import while_served
from afflux_plumbing.http import ApiError, admin_auth

log = logging.getLogger(__name__)

Verdict = Literal["pending", "approved", "declined"]


class ApplicationIn(BaseModel):
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    company: str | None = Field(None, max_length=200)
    website: str | None = Field(None, max_length=2048)
    traffic_sources: list[str] = Field(default_factory=list, max_length=MAX_TRAFFIC_SOURCES)
    country: str | None = Field(None, max_length=2)
    terms_accepted_at: datetime
    email_verified_at: datetime

    def fields(self) -> dict[str, Any]:
        return {"company": self.company, "website": self.website, "traffic_sources": self.traffic_sources,
                "country": self.country}


class DecisionIn(BaseModel):
    reason: str | None = Field(None, max_length=500)


class UserOut(BaseModel):
    user_id: str
    email: str
    name: str | None
    role: str
    status: str
    invited_by: str | None
    invitation_expires_at: datetime | None

    @classmethod
    def of(cls, user: PartnerUser) -> UserOut:
        return cls(user_id=user.user_id, email=user.email, name=user.name, role=user.role.value,
                   status=user.status.value, invited_by=user.invited_by,
                   invitation_expires_at=user.invitation_expires_at)


class InvitationOut(BaseModel):
    user: UserOut
    mail: Literal["sent", "owed"]
    """``sent``: notifications took the mail; ``owed``: it will be asked again until it does."""

    @classmethod
    def of(cls, invited: Invited) -> InvitationOut:
        return cls(user=UserOut.of(invited.user), mail="sent" if invited.mailed else "owed")


class ApplicationOut(BaseModel):
    partner_id: str
    name: str
    email: str
    status: Verdict
    partner_status: str
    reason: str | None
    company: str | None
    website: str | None
    traffic_sources: list[str]
    country: str | None
    terms_accepted_at: datetime
    email_verified_at: datetime
    invitation: InvitationOut | None = None

    @classmethod
    def of(cls, partner: Partner, invited: Invited | None = None) -> ApplicationOut:
        application = partner.application
        assert application is not None
        verdict: Verdict = {"pending": "pending", "rejected": "declined"}.get(  # type: ignore[assignment]
            partner.status.value, "approved")
        return cls(partner_id=partner.partner_id, name=partner.name, email=partner.email, status=verdict,
                   partner_status=partner.status.value, reason=partner.decision_reason,
                   company=application.company, website=application.website,
                   traffic_sources=list(application.traffic_sources), country=application.country,
                   terms_accepted_at=application.terms_accepted_at,
                   email_verified_at=application.email_verified_at,
                   invitation=InvitationOut.of(invited) if invited is not None else None)


class ApplicationsPage(BaseModel):
    applications: list[ApplicationOut]
    next: str | None


class UserIn(BaseModel):
    email: str = Field(max_length=254)
    name: str | None = Field(None, max_length=200)
    role: str = Field("member", description="owner or member")
    invited_by: str | None = Field(None, max_length=40,
                                   description="the inviting owner's user_id (the gateway)")


class UsersOut(BaseModel):
    users: list[UserOut]


class SignInIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class SignedInOut(BaseModel):
    partner_id: str
    user: UserOut

    @classmethod
    def of(cls, signed_in: SignedIn) -> SignedInOut:
        return cls(partner_id=signed_in.partner_id, user=UserOut.of(signed_in.user))


class TokenIn(BaseModel):
    token: str = Field(max_length=200)


class TokenOut(BaseModel):
    purpose: Literal["invitation", "reset"]
    partner_id: str
    partner_name: str
    user: UserOut
    expires_at: datetime


class PasswordIn(BaseModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class ResetIn(BaseModel):
    email: str = Field(max_length=254)


def _token_refused(error: Exception) -> ApiError:
    if isinstance(error, ExpiredToken):
        return ApiError(410, "expired_token", "the link has expired: ask for a new one", "token")
    return ApiError(400, "invalid_token", "the link is not valid or was used already", "token")


def application_routes(onboarding: Onboarding, store: Partners, settings: PartnersSettings,
                       credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/applications", tags=["applications"],
                       dependencies=[admin_auth(credentials)])

    @router.post("", status_code=201, response_model=ApplicationOut,
                 openapi_extra=needs("partners.applications.create"),
                 responses={**PENDING,
                            200: {"description": "the application from this address, recorded before"}})
    def apply(body: ApplicationIn) -> Any:
        """Record a sign-up whose email the gateway verified: a new partner, ``pending``
        (PartnerCreated, then PartnerApplied). One application per address: the same
        address again answers 200 with the first."""
        partner, created = onboarding.apply(body.name, body.email, body.fields(), body.terms_accepted_at,
                                            body.email_verified_at)
        return acknowledged(store, settings, ApplicationOut.of(partner), 201 if created else 200)

    @router.get("", response_model=ApplicationsPage, openapi_extra=needs("applications.review"))
    def applications(status: Verdict | None = Query(None), limit: int = PAGE_SIZE,  # noqa: B008
                     after: str | None = AFTER) -> Any:
        """Applications in the order they came (``pending``: waiting for a decision)."""
        page = onboarding.applications(status, decode_cursor("applications", after), limit)
        return ApplicationsPage(applications=[ApplicationOut.of(p) for p in page.items],
                                next=encode_cursor("applications",
                                                   page.next_after) if page.next_after else None)

    @router.get("/{partner_id}", response_model=ApplicationOut, openapi_extra=needs("applications.review"))
    def application(partner_id: str) -> Any:
        return ApplicationOut.of(onboarding.application(partner_id))

    @router.post("/{partner_id}/approve", response_model=ApplicationOut, responses=PENDING,
                 openapi_extra=needs("applications.review"))
    def approve(partner_id: str, body: DecisionIn | None = None) -> Any:
        """Approve: the partner becomes ``active`` (PartnerStatusChanged with the reason)
        and its applicant is invited by mail to set a password, as the partner's owner
        (``invitation``). Approving again changes nothing and invites nobody again."""
        partner, invited = onboarding.decide(partner_id, True, (body or DecisionIn()).reason)
        return acknowledged(store, settings, ApplicationOut.of(partner, invited))

    @router.post("/{partner_id}/decline", response_model=ApplicationOut, responses=PENDING,
                 openapi_extra=needs("applications.review"))
    def decline(partner_id: str, body: DecisionIn | None = None) -> Any:
        """Decline: the partner becomes ``rejected`` (PartnerStatusChanged with the reason;
        notifications tells the applicant). An approved one is 409 ``already_approved``."""
        partner, _ = onboarding.decide(partner_id, False, (body or DecisionIn()).reason)
        return acknowledged(store, settings, ApplicationOut.of(partner))

    return router


def user_routes(onboarding: Onboarding, store: Partners, settings: PartnersSettings,
                credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/partners/{partner_id}/users", tags=["partner users"],
                       dependencies=[admin_auth(credentials)])

    @router.get("", response_model=UsersOut, openapi_extra=needs("partners.read"))
    def users(partner_id: str) -> Any:
        """The partner's current users (invited or active)."""
        return UsersOut(users=[UserOut.of(user) for user in onboarding.users(partner_id)])

    @router.post("", status_code=201, response_model=InvitationOut, responses=PENDING,
                 openapi_extra=needs("partner_users.write"))
    def invite(partner_id: str, body: UserIn) -> Any:
        """Invite someone to sign in for the partner: a mail with a link to set a password
        (single use, expiring). Someone invited and not signed up yet is invited again
        (the new link replaces the old); one who can sign in already is 409 ``user_exists``.
        With ``invited_by`` (the gateway, for an owner), that user must be an active owner."""
        invited = onboarding.invite(partner_id, body.email, body.name, body.role, body.invited_by)
        return acknowledged(store, settings, InvitationOut.of(invited), 201)

    @router.delete("/{user_id}", response_model=UserOut, responses=PENDING,
                   openapi_extra=needs("partner_users.write"))
    def remove(partner_id: str, user_id: str,
               removed_by: str | None = Query(None, max_length=40,
                                              description="the removing owner (gateway)")) -> Any:
        """The user can no longer sign in; their portal sessions end as the gateway reads
        PartnerUserRemoved. Removing again changes nothing; the last owner is 409."""
        return acknowledged(store, settings, UserOut.of(onboarding.remove(partner_id, user_id, removed_by)))

    return router


def credential_routes(onboarding: Onboarding, store: Partners, settings: PartnersSettings,
                      credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/partner-users", tags=["partner users"],
                       dependencies=[admin_auth(credentials, "partner_users.credentials")])
    scope = needs("partner_users.credentials")

    @router.post("/sign-in", response_model=SignedInOut, openapi_extra=scope)
    def sign_in(body: SignInIn) -> Any:
        """The user with this email and password (argon2id), if active; else 401 (the
        same answer, in the same time, for an unknown address). The gateway throttles."""
        found = onboarding.sign_in(body.email, body.password)
        if found is None:
            raise ApiError(401, "invalid_credentials", "the email or the password is not right")
        return SignedInOut.of(found)

    @router.post("/tokens/check", response_model=TokenOut, openapi_extra=scope)
    def check_token(body: TokenIn) -> Any:
        """What a link's token is for, before the page asks for a password (400 not valid
        or used, 410 expired)."""
        try:
            token, partner = onboarding.check_token(body.token)
        except (InvalidToken, ExpiredToken) as error:
            raise _token_refused(error) from None
        return TokenOut(purpose=token.purpose, partner_id=partner.partner_id,
                        partner_name=partner.name, user=UserOut.of(partner.user(token.user_id)),
                        expires_at=token.expires_at)

    @router.post("/password", response_model=SignedInOut, responses=PENDING, openapi_extra=scope)
    def set_password(body: PasswordIn) -> Any:
        """Set the password with the link's token: an invitation activates the user
        (PartnerUserActivated), a reset replaces it (PartnerUserPasswordReset: the user's
        older sessions end). The token is spent either way. A weak password is 422
        ``weak_password`` (at least 10 characters)."""
        try:
            signed_in = onboarding.set_password(body.token, body.password)
        except (InvalidToken, ExpiredToken) as error:
            raise _token_refused(error) from None
        return acknowledged(store, settings, SignedInOut.of(signed_in))

    @router.post("/password-reset", status_code=202, openapi_extra=scope)
    def request_reset(body: ResetIn) -> dict[str, str]:
        """Mail a reset link if the address is an active user's; the same answer otherwise
        (whether an address has an account is not told)."""
        onboarding.request_reset(body.email)
        return {"status": "accepted"}

    return router


def mount_onboarding(app: FastAPI, onboarding: Onboarding, store: Partners, settings: PartnersSettings,
                     credentials: Credentials) -> None:
    """The routes, and a task that sends owed mail while the app is served."""
    for routes in (application_routes, user_routes, credential_routes):
        app.include_router(routes(onboarding, store, settings, credentials))

    async def send_owed() -> None:
        while True:
            await asyncio.sleep(settings.owed_mail_interval)
            try:
                await asyncio.to_thread(onboarding.send_owed)
            except Exception as error:  # the database may be away: try again next round
                log.warning("owed mail not sent: %s", error)

    while_served(app, send_owed, "owed-mail")
