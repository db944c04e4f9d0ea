"""Who may call an admin route, and for what: principals with scopes, roles of staff.

Every admin route names the *scope* it needs (``needs("payouts.balance.read")`` on the
route, else the reserved ``admin``). A caller presents ``Authorization: Bearer <token>``
and is authenticated as a ``Principal``:

- the admin token (``AFFLUX_ADMIN_TOKEN``): the principal ``admin``, the bootstrap owner,
  every scope;
- a service token (``AFFLUX_SERVICE_TOKENS``): a named principal limited to the scopes
  listed for it, e.g. the gateway, which may only apply for offers on a partner's behalf
  and read a partner's balance. Only the token's SHA-256 is configured on the services
  that accept it, so a service holds no other service's secret;
- a staff session or staff API token (``staff_credentials``: issued and revoked on
  ``afflux.staff.v1`` by the console): a staff user acting in their role, a named set of
  scopes (``ROLES``); a token is limited to its own scopes as well, never beyond its
  owner's role.

A principal lacking the route's scope gets ``403``: ``forbidden_role`` for staff (their
role does not allow it), ``forbidden_scope`` for a service token or a staff token whose
own scopes leave it out; an unknown, revoked or expired token ``401``. The admin and
service tokens are compared with every configured hash in constant time
(``hmac.compare_digest``, all of them, no early exit), so timing says neither which
token nor how much of one matched; staff credentials are found by their SHA-256 in a
table (what a lookup's timing could tell is about the hash, which reveals nothing of
the token).

``AFFLUX_SERVICE_TOKENS`` lists ``name:sha256:scope,scope`` entries separated by
whitespace or ``;`` (``sha256``: 64 hex digits of the token's SHA-256). A scope not in
``SCOPES`` or a malformed entry stops the service at start (a typo must not silently
grant nothing, or everything). ``admin`` cannot be given to a service token. A name may
be listed twice while its token rotates: the new token's entry beside the old one, the
old one removed once the service uses the new token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from afflux_contracts import Actor, ActorKind

ADMIN = "admin"
"""The scope of a route that names none: only a principal with every scope (the admin token)."""

SCOPES: Mapping[str, str] = {
    # Partners: partners, offers, relationships and applications
    "partners.read": "read partners, their API keys, offers and relationships "
                     "(GET on /v1/partners, /v1/offers)",
    "partners.write": "create and edit partners, change their status, issue and revoke their API keys",
    "offers.write": "create and edit offers, change their status, rotate their postback token",
    "relationships.write": "set a partner's relationship with an offer and its custom terms "
                           "(PUT /v1/offers/{offer_id}/partners/{partner_id})",
    "applications.review": "approve or decline partners' applications (the console's queue)",
    "partners.apply": "apply for an offer on a partner's behalf "
                      "(POST /v1/offers/{offer_id}/partners/{partner_id}/apply)",
    "partners.applications.create": "record a sign-up whose email was verified as a partner's application "
                                    "(POST /v1/applications: the gateway)",
    "partner_users.write": "invite and remove a partner's portal users "
                           "(POST|DELETE /v1/partners/{partner_id}/users)",
    "partners.profiles.write": "record a partner's tax profile and payment method "
                               "(PUT /v1/partners/{partner_id}/tax-profile|payment-method)",
    "partners.profiles.details": "read a partner's tax and payment details in full: bank and tax numbers "
                                 "(GET /v1/partners/{partner_id}/payout-profile/details)",
    "partner_users.credentials": "check a partner user's password, set it with an invitation or reset "
                                 "link, send a reset link (/v1/partner-users/...: the gateway's portal)",
    # Attribution: conversions and their review
    "conversions.read": "read conversions, their decision traces and an offer's judged traffic",
    "conversions.review": "approve, reject, reverse or adjust conversions",
    # Payouts: the money
    "payouts.balance.read": "read a partner's balance (GET /v1/partners/{partner_id}/balance)",
    "statements.read": "read statements, their previews and a partner's commissions",
    "invoices.read": "read self-billed invoices and credit notes "
                     "(GET /v1/statements/{statement_id}/invoice, /v1/invoices/...)",
    "statements.close": "close a period: issue statements (POST /v1/statements/close)",
    "statements.pay": "mark statements paid (POST /v1/statements/{statement_id}/paid)",
    "adjustments.write": "adjust a partner's balance (POST /v1/partners/{partner_id}/adjustments)",
    "fx_rates.write": "record exchange rates, by hand or from the ECB's reference rates file "
                      "(POST /v1/fx-rates, /v1/fx-rates/ecb)",
    # Postbacks, reports, mail
    "postbacks.read": "read the postback delivery log and the paused hosts",
    "postbacks.resume": "resume postbacks to a paused host",
    "gateway.reports.read": "read the report across partners (GET /v1/reports)",
    "notifications.read": "read the mail delivery log (GET /v1/notifications)",
    "notifications.send": "send a transactional mail, secrets and all, that must not travel on the log "
                          "(POST /v1/messages: verification links, invitations, password resets)",
    "notifications.preferences": "read and set a partner's mail opt-outs "
                                 "(GET|PUT /v1/partners/{partner_id}/notification-preferences)",
    "notifications.mail": "read what the embedded mail catcher kept, secrets and all "
                          "(GET /v1/mail; development, without AFFLUX_SMTP_URL): the owner's",
    # The console: staff, audit, operations
    "staff.self": "a staff member's own account: see it, enrol a second factor, sign out, "
                  "hold API tokens (within their role)",
    "staff.manage": "create, edit and disable staff users; list and revoke anyone's API tokens",
    "audit.read": "read the audit trail (GET /v1/audit)",
    "ops.read": "read the operations view: service health, consumer lag, dead letters",
    "dlq.redrive": "send dead-lettered records back to their topic",
}
"""Every scope a route may name, and what it allows: the vocabulary of service tokens,
staff API tokens and roles. A route names its scope with ``needs``."""

READS = frozenset(scope for scope in SCOPES if scope.endswith(".read"))
"""Every scope that only reads."""
EVERY_ROLE = READS | {"staff.self"}
"""What every staff member may do: read, and look after their own account."""

ROLES: Mapping[str, frozenset[str]] = {
    "owner": frozenset(SCOPES),
    "manager": EVERY_ROLE | {"partners.write", "offers.write", "relationships.write", "applications.review",
                             "partner_users.write",
                             "conversions.review", "postbacks.resume", "notifications.preferences"},
    "finance": EVERY_ROLE | {"statements.close", "statements.pay", "adjustments.write", "fx_rates.write",
                             "partners.profiles.write", "partners.profiles.details"},
    "analyst": EVERY_ROLE,
}
"""What each staff role may do: ``owner`` everything (staff included), ``manager`` the
program (partners, offers, relationships, applications, conversion review), ``finance``
the money (statements, payments, adjustments, partners' tax and payment details),
``analyst`` reads only; every role reads (a profile's completeness, not its details),
and looks after its own account (``staff.self``)."""

SCOPE_KEY = "x-afflux-scope"
"""Where a route's scope is kept: its OpenAPI extension, so the docs say what each needs."""
ROLES_KEY = "x-afflux-roles"
"""The staff roles that may call a route (its OpenAPI extension, for the docs)."""
PUBLIC_KEY = "x-afflux-public"
"""Marks a route of an admin API that anyone may call, and why (the staff's sign-in)."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class InvalidServiceTokens(ValueError):
    """``AFFLUX_SERVICE_TOKENS`` is malformed or names an unknown scope."""


def token_sha256(token: str) -> bytes:
    """The SHA-256 of a presented token (any characters: a header may carry any byte)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Principal:
    """Who called: a name (``admin``, a service's name, a staff user's or token's id),
    what it may do (``None``: every scope), what kind of caller it is, and for staff the
    role it acts in."""

    name: str
    scopes: frozenset[str] | None
    kind: ActorKind = "service"
    role: str | None = None

    def may(self, scope: str) -> bool:
        if self.scopes is None:
            return True
        return scope != ADMIN and scope in self.scopes

    def refusal(self, scope: str) -> str:
        """Why ``scope`` is refused: ``forbidden_role`` when the staff role does not allow
        it, else ``forbidden_scope`` (a service token, or a staff token's own scopes)."""
        if self.role is not None and scope not in ROLES.get(self.role, frozenset()):
            return "forbidden_role"
        return "forbidden_scope"

    @property
    def actor(self) -> Actor:
        """The actor the events this principal causes carry (the audit trail)."""
        return Actor(kind=self.kind, id=self.name, role=self.role)


ADMIN_PRINCIPAL = Principal(ADMIN, None, kind="admin", role="owner")
"""The admin token: the bootstrap owner."""


class TokenSource(Protocol):
    """Somewhere tokens are known by their SHA-256 (configuration, or the staff log)."""

    def principal(self, presented: bytes) -> Principal | None:
        """The principal the token with SHA-256 ``presented`` names now, or None."""
        ...


@runtime_checkable
class LaggingSource(Protocol):
    """A source that learns tokens from the log: one issued a moment ago may not have
    reached it yet (``afflux_plumbing.staff_credentials``)."""

    def may_know_later(self, token: str) -> bool:
        """Whether ``token`` is shaped like one this source admits (worth catching up for)."""
        ...

    async def caught_up(self, timeout: float) -> bool:
        """Until it has read every credential issued before this call (False: not within
        ``timeout`` seconds)."""
        ...


@dataclass(frozen=True)
class ServiceTokens:
    """The service tokens of ``AFFLUX_SERVICE_TOKENS``."""

    entries: tuple[tuple[bytes, Principal], ...] = ()

    @classmethod
    def parse(cls, text: str) -> ServiceTokens:
        entries: list[tuple[bytes, Principal]] = []
        for entry in re.split(r"[\s;]+", text.strip()):
            if entry:
                name, digest, scopes = _parse_entry(entry)
                entries.append((bytes.fromhex(digest), Principal(name, scopes)))
        return cls(tuple(entries))

    def principal(self, presented: bytes) -> Principal | None:
        """Every entry compared in constant time, whatever matched before."""
        found: Principal | None = None
        for digest, principal in self.entries:
            if hmac.compare_digest(presented, digest) and found is None:
                found = principal
        return found


def _parse_entry(entry: str) -> tuple[str, str, frozenset[str]]:
    parts = entry.split(":")
    if len(parts) != 3:
        raise InvalidServiceTokens(f"AFFLUX_SERVICE_TOKENS: {entry[:80]!r} is not name:sha256:scope,scope")
    name, digest, listed = parts[0], parts[1].lower(), parts[2]
    if not _NAME.match(name) or name == ADMIN:
        raise InvalidServiceTokens(f"AFFLUX_SERVICE_TOKENS: {name[:80]!r} is not a service token's name")
    if not _HEX64.match(digest):
        raise InvalidServiceTokens(f"AFFLUX_SERVICE_TOKENS: {name}: the SHA-256 must be 64 hex digits")
    scopes = frozenset(scope for scope in listed.split(",") if scope)
    unknown = sorted(scope for scope in scopes if scope not in SCOPES)
    if not scopes or unknown:
        raise InvalidServiceTokens(f"AFFLUX_SERVICE_TOKENS: {name}: unknown scopes {unknown or '(none)'}; "
                                   f"known: {', '.join(sorted(SCOPES))}")
    return name, digest, scopes


def service_token_entry(name: str, token: str, scopes: Iterable[str]) -> str:
    """The ``AFFLUX_SERVICE_TOKENS`` entry that admits ``token`` as ``name`` with ``scopes``
    (what ``make run`` and the tests configure)."""
    return f"{name}:{token_sha256(token).hex()}:{','.join(sorted(scopes))}"


@dataclass(frozen=True)
class Credentials:
    """Every credential an admin route accepts: the admin token and the token sources."""

    admin_token: str = ""
    sources: tuple[TokenSource, ...] = field(default=())

    @classmethod
    def of(cls, settings: Any, *more: TokenSource) -> Credentials:
        """From a service's settings (``admin_token``, ``service_tokens``), and ``more``
        sources (the staff view: ``ServiceRuntime.credentials``)."""
        configured = ServiceTokens.parse(getattr(settings, "service_tokens", ""))
        return cls(settings.admin_token, (configured, *more))

    def authenticate(self, token: str) -> Principal | None:
        """The principal ``token`` names, or None. The admin token and every service
        token are compared, in constant time each, whatever matched before."""
        presented = token_sha256(token)
        found: Principal | None = None
        if self.admin_token and hmac.compare_digest(presented, token_sha256(self.admin_token)):
            found = ADMIN_PRINCIPAL
        for source in self.sources:
            named = source.principal(presented)
            if found is None:
                found = named
        return found

    async def authenticate_eventually(self, token: str, timeout: float = 3.0) -> Principal | None:
        """``authenticate``; a token not known yet but shaped like a staff credential is
        looked up again once the staff view has caught up with its log (a session started
        a moment ago works at once on every service). Callers arriving together share
        one catch-up (``LogCatchUp``)."""
        found = self.authenticate(token)
        if found is not None:
            return found
        lagging = [source for source in self.sources
                   if isinstance(source, LaggingSource) and source.may_know_later(token)]
        for source in lagging:
            await source.caught_up(timeout)
        return self.authenticate(token) if lagging else None


def needs(scope: str) -> dict[str, Any]:
    """A route's ``openapi_extra`` naming the scope it needs:
    ``@router.get(..., openapi_extra=needs("payouts.balance.read"))``. The OpenAPI
    document carries it (``x-afflux-scope``), with the roles that have it
    (``x-afflux-roles``), so the docs say who may call each route."""
    if scope not in SCOPES:
        raise ValueError(f"{scope!r} is not in afflux_plumbing.auth.SCOPES")
    return {SCOPE_KEY: scope, ROLES_KEY: roles_with(scope)}


def public(reason: str) -> dict[str, Any]:
    """A route's ``openapi_extra`` saying it needs no credential, and why: the security
    tests hold every other route of an admin API to its scope."""
    return {PUBLIC_KEY: reason}


def roles_with(scope: str) -> list[str]:
    """The staff roles that may use ``scope``."""
    return [role for role, scopes in ROLES.items() if scope in scopes]


def route_scope(route: object) -> str:
    """The scope a matched route names (``ADMIN`` when it names none)."""
    extra = getattr(route, "openapi_extra", None)
    scope = extra.get(SCOPE_KEY) if isinstance(extra, dict) else None
    return scope if isinstance(scope, str) else ADMIN
