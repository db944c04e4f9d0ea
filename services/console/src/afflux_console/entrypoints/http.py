"""The console's JSON API: staff users, sign-in, second factor, API tokens, the audit trail.

Every route but the sign-in names the scope it needs (``needs``): staff management is
the owner's (``staff.manage``), one's own account every staff member's (``staff.self``),
the audit trail every role's (``audit.read``). A staff user's bearer token is the
session's, accepted by every service; the admin token is the bootstrap owner.

A write is answered once its events are on the log, so every service can know of it
(else ``202`` with ``X-Afflux-Log: pending``). Sign-ins are slowed down per address and
per email: past the limit of failures within the window, every attempt from there is
``429`` with ``Retry-After`` (the password is not even checked: a guesser learns
nothing, whatever it tries).
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from afflux_console.application.audit import Audit, AuditQuery
from afflux_console.application.staff import NotFound, SignInRefused, Staff
from afflux_console.domain.rules import Refused, RuleViolation
from afflux_console.entrypoints.schemas import (
    AuditItem,
    AuditOut,
    MeOut,
    SessionIn,
    SessionOut,
    TokenIn,
    TokenIssuedOut,
    TokenOut,
    TokensOut,
    TotpConfirmIn,
    TotpOut,
    UserIn,
    UserOut,
    UserPatch,
    UsersOut,
)
from afflux_console.settings import ConsoleSettings
from afflux_plumbing.acknowledge import acknowledged
from afflux_plumbing.auth import Credentials, Principal, needs, public
from afflux_plumbing.http import (
    ApiError,
    ReadinessCheck,
    TrustedProxies,
    admin_auth,
    client_address,
    error_body,
    service_app,
)
from afflux_plumbing.throttle import FailureThrottle

PENDING: dict[int | str, dict[str, Any]] = {
    202: {"description": "recorded, not yet on the log (it will be published); header X-Afflux-Log: pending"}
}


async def _rule_violation(_: Request, error: Exception) -> Response:
    assert isinstance(error, RuleViolation)
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=422)


async def _refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return JSONResponse(error_body(error.code, error.message), status_code=409)


async def _not_found(_: Request, error: Exception) -> Response:
    assert isinstance(error, NotFound)
    return JSONResponse(error_body(error.code, error.message), status_code=404)


def console_app(
    staff: Staff, audit: Audit, credentials: Credentials, settings: ConsoleSettings, readiness: ReadinessCheck
) -> FastAPI:
    app = service_app("Afflux console", readiness)
    app.add_exception_handler(RuleViolation, _rule_violation)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(NotFound, _not_found)
    app.include_router(sign_in_routes(staff, settings))
    app.include_router(staff_routes(staff, credentials, settings))
    app.include_router(audit_routes(audit, credentials))
    return app


class SignInThrottle:
    """Failed sign-ins per address and per email (``FailureThrottle``)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.per_email = FailureThrottle(settings.signin_failures, settings.signin_window)
        self.per_address = FailureThrottle(settings.signin_failures * 5, settings.signin_window)
        self.lock = threading.Lock()

    def check(self, address: str, email: str) -> None:
        with self.lock:
            waits = [self.per_address.retry_after(address), self.per_email.retry_after(email)]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            raise ApiError(
                429,
                "too_many_failures",
                f"too many failed sign-ins from this address or for this email; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def failed(self, address: str, email: str) -> None:
        with self.lock:
            self.per_address.failed(address)
            self.per_email.failed(email)


def sign_in_routes(staff: Staff, settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["sessions"])
    throttle = SignInThrottle(settings)
    proxies: TrustedProxies = settings.proxies

    @router.post(
        "/sessions",
        status_code=201,
        response_model=SessionOut,
        openapi_extra=public("sign-in: the credential is what it hands out"),
        responses={
            **PENDING,
            401: {"description": "wrong email, password or code (code totp_required: a code is needed)"},
            429: {"description": "too many failed sign-ins; see Retry-After"},
        },
    )
    def sign_in(body: SessionIn, request: Request) -> Any:
        """A session: a bearer token every service accepts until ``expires_at`` (sign out
        with ``DELETE /v1/staff/sessions/current``)."""
        address = client_address(request.scope, proxies) or "unknown"
        email = body.email.strip().lower()
        throttle.check(address, email)
        try:
            issued, account = staff.sign_in(body.email, body.password, body.totp)
        except SignInRefused as refused:
            throttle.failed(address, email)
            raise ApiError(
                401, refused.code, refused.message, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        assert issued.expires_at is not None
        out = SessionOut(
            token=issued.secret,
            expires_at=issued.expires_at,
            session_id=issued.credential_id,
            user=UserOut.of(account),
        )
        return acknowledged(staff, settings.publish_timeout, out.model_dump(mode="json"), 201)

    return router


def staff_routes(staff: Staff, credentials: Credentials, settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(prefix="/v1/staff", tags=["staff"])
    caller = admin_auth(credentials)

    def ack(body: Any, status_code: int = 200) -> Response:
        return acknowledged(staff, settings.publish_timeout, body.model_dump(mode="json"), status_code)

    @router.post(
        "/users",
        status_code=201,
        response_model=UserOut,
        responses=PENDING,
        openapi_extra=needs("staff.manage"),
    )
    def create_user(body: UserIn, by: Principal = caller) -> Any:
        return ack(UserOut.of(staff.create_user(body.email, body.name, body.role, body.password)), 201)

    @router.get("/users", response_model=UsersOut, openapi_extra=needs("staff.manage"))
    def list_users(by: Principal = caller) -> Any:
        return UsersOut(users=[UserOut.of(account) for account in staff.accounts()])

    @router.get("/users/{user_id}", response_model=UserOut, openapi_extra=needs("staff.manage"))
    def get_user(user_id: str, by: Principal = caller) -> Any:
        return UserOut.of(staff.account(user_id))

    @router.patch(
        "/users/{user_id}", response_model=UserOut, responses=PENDING, openapi_extra=needs("staff.manage")
    )
    def edit_user(user_id: str, body: UserPatch, by: Principal = caller) -> Any:
        """Change name, role or standing: a disabled user's sessions end, their tokens stop
        working (everywhere, as soon as each service reads it), a new role applies at once."""
        return ack(UserOut.of(staff.edit_user(user_id, body.model_dump(exclude_unset=True), by)))

    @router.get("/me", response_model=MeOut, openapi_extra=needs("staff.self"))
    def me(by: Principal = caller) -> Any:
        user = UserOut.of(staff.account(by.name)) if by.kind == "staff" else None
        return MeOut(kind=by.kind, id=by.name, role=by.role, scopes=sorted(by.scopes or []), user=user)

    @router.post("/users/{user_id}/totp", response_model=TotpOut, openapi_extra=needs("staff.self"))
    def enrol_totp(user_id: str, by: Principal = caller) -> Any:
        """Start enrolling one's own second factor: an authenticator's otpauth URI; it is
        required at sign-in once a code from it is confirmed."""
        own(by, user_id)
        return TotpOut(otpauth_uri=staff.enrol_totp(user_id))

    @router.post("/users/{user_id}/totp/confirm", response_model=UserOut, openapi_extra=needs("staff.self"))
    def confirm_totp(user_id: str, body: TotpConfirmIn, by: Principal = caller) -> Any:
        own(by, user_id)
        return UserOut.of(staff.confirm_totp(user_id, body.code))

    @router.delete("/sessions/current", status_code=204, responses=PENDING, openapi_extra=needs("staff.self"))
    def sign_out(request: Request, by: Principal = caller) -> Response:
        """End the session whose token this call presents: refused everywhere from now on."""
        if by.kind != "staff":
            raise ApiError(409, "not_a_session", "this credential is not a sign-in session")
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        staff.sign_out(token)
        answer = acknowledged(staff, settings.publish_timeout, None, 204)
        return Response(
            status_code=answer.status_code, headers={"X-Afflux-Log": answer.headers["X-Afflux-Log"]}
        )

    @router.post(
        "/tokens",
        status_code=201,
        response_model=TokenIssuedOut,
        responses=PENDING,
        openapi_extra=needs("staff.self"),
    )
    def issue_token(body: TokenIn, by: Principal = caller) -> Any:
        """An API token for automation, owned by the caller, with ``scopes`` within the
        caller's role (and never more than the owner's role at each call). Shown once."""
        issued, row = staff.issue_token(by, body.name, body.scopes, body.expires_at)
        return ack(TokenIssuedOut(token=issued.secret, **TokenOut.of(row).model_dump()), 201)

    @router.get("/tokens", response_model=TokensOut, openapi_extra=needs("staff.self"))
    def list_tokens(
        everyone: bool = Query(False, alias="all", description="everyone's tokens (staff.manage)"),
        by: Principal = caller,
    ) -> Any:
        """The caller's own API tokens (with ``all=true`` and ``staff.manage``: everyone's)."""
        if everyone and not by.may("staff.manage"):
            raise ApiError(403, by.refusal("staff.manage"), "listing everyone's tokens needs staff.manage")
        return TokensOut(tokens=[TokenOut.of(row) for row in staff.tokens(by, everyone)])

    @router.delete(
        "/tokens/{token_id}", response_model=TokenOut, responses=PENDING, openapi_extra=needs("staff.self")
    )
    def revoke_token(token_id: str, by: Principal = caller) -> Any:
        """Revoke one's own token (an owner: anyone's); refused everywhere from now on."""
        return ack(TokenOut.of(staff.revoke_token(token_id, by, by.may("staff.manage"))))

    return router


def own(by: Principal, user_id: str) -> None:
    """Only a user may enrol their own second factor (it is their authenticator)."""
    if by.kind != "staff" or by.name != user_id:
        raise ApiError(403, "forbidden_user", "a second factor is enrolled by its user, signed in")


def audit_routes(audit: Audit, credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["audit"], dependencies=[admin_auth(credentials)])

    @router.get("/audit", response_model=AuditOut, openapi_extra=needs("audit.read"))
    def list_audit(
        actor: str | None = Query(
            None, max_length=100, description="a staff user (their tokens too), a token, a service or admin"
        ),
        subject: str | None = Query(
            None, max_length=100, description="a partner, offer, conversion, statement ... id"
        ),
        since: str | None = Query(None, max_length=64, description="at or after this instant (RFC 3339)"),
        limit: int = Query(50, ge=1, le=500),
        after: str | None = Query(None, max_length=100, description="the `next` cursor of the previous page"),
    ) -> Any:
        """Who did what to which object, newest first: every event on the log that a
        person or a token caused."""
        page = audit.page(AuditQuery(actor, subject, _instant(since)), _decode(after), limit)
        return AuditOut(
            items=[AuditItem.of(entry) for entry in page.entries],
            next=_encode(page.next_after) if page.next_after is not None else None,
        )

    return router


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ApiError(422, "invalid_request", "since: an RFC 3339 instant with its offset", "since")
    return instant


def _encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != "audit" or not seq.isdigit():
            raise ValueError(raw)
        return int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ApiError(422, "invalid_request", f"not an audit cursor: {cursor[:100]!r}", "after") from error
