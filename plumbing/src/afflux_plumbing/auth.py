"""Who may call an admin route, and for what: principals with scopes.

Every admin route names the *scope* it needs (``needs("payouts.balance.read")`` on the
route, else the reserved ``admin``). A caller presents ``Authorization: Bearer <token>``
and is authenticated as a ``Principal``:

- the admin token (``AFFLUX_ADMIN_TOKEN``): the principal ``admin``, every scope;
- a service token (``AFFLUX_SERVICE_TOKENS``): a named principal limited to the scopes
  listed for it, e.g. the gateway, which may only apply for offers on a partner's behalf
  and read a partner's balance. Only the token's SHA-256 is configured on the services
  that accept it, so a service holds no other service's secret.

A principal lacking the route's scope gets ``403 forbidden_scope``; an unknown token
``401``. The presented token is hashed once and compared with every configured hash in
constant time (``hmac.compare_digest``, all of them, no early exit), so timing says
neither which token nor how much of one matched.

``AFFLUX_SERVICE_TOKENS`` lists ``name:sha256:scope,scope`` entries separated by
whitespace or ``;`` (``sha256``: 64 hex digits of the token's SHA-256). A scope not in
``SCOPES`` or a malformed entry stops the service at start (a typo must not silently
grant nothing, or everything). ``admin`` cannot be given to a service token. A name may
be listed twice while its token rotates: the new token's entry beside the old one, the
old one removed once the service uses the new token.

Extending (issue 20, staff users and roles): a role is a named set of ``SCOPES``; staff
tokens come from another ``TokenSource`` (tokens issued and revoked on the log) added
to ``Credentials`` beside the two here. Routes, scopes and the 401/403 answers stay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ADMIN = "admin"
"""The scope of a route that names none: only a principal with every scope (the admin token)."""

SCOPES: Mapping[str, str] = {
    "partners.apply": "apply for an offer on a partner's behalf "
                      "(POST /v1/offers/{offer_id}/partners/{partner_id}/apply)",
    "payouts.balance.read": "read a partner's balance (GET /v1/partners/{partner_id}/balance)",
    "gateway.reports.read": "read the report across partners (GET /v1/reports)",
    "notifications.read": "read the mail delivery log (GET /v1/notifications)",
    "notifications.send": "send a transactional mail, secrets and all, that must not travel on the log "
                          "(POST /v1/messages: verification links, invitations, password resets)",
    "notifications.preferences": "read and set a partner's mail opt-outs "
                                 "(GET|PUT /v1/partners/{partner_id}/notification-preferences)",
}
"""Every scope a route may name, and what it allows: the vocabulary of service tokens (and
of issue 20's roles). A route names its scope with ``needs``."""

SCOPE_KEY = "x-afflux-scope"
"""Where a route's scope is kept: its OpenAPI extension, so the docs say what each needs."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class InvalidServiceTokens(ValueError):
    """``AFFLUX_SERVICE_TOKENS`` is malformed or names an unknown scope."""


def token_sha256(token: str) -> bytes:
    """The SHA-256 of a presented token (any characters: a header may carry any byte)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Principal:
    """Who called: a name (``admin``, a service's name; a staff user with issue 20) and
    what it may do (``None``: every scope)."""

    name: str
    scopes: frozenset[str] | None

    def may(self, scope: str) -> bool:
        if self.scopes is None:
            return True
        return scope != ADMIN and scope in self.scopes


class TokenSource(Protocol):
    """Somewhere tokens are known by their SHA-256 (configuration today; the log with issue 20)."""

    def principals(self) -> Sequence[tuple[bytes, Principal]]:
        """Every (token SHA-256, principal) this source admits now."""
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

    def principals(self) -> Sequence[tuple[bytes, Principal]]:
        return self.entries


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
    def of(cls, settings: Any) -> Credentials:
        """From a service's settings (``admin_token``, ``service_tokens``)."""
        return cls(settings.admin_token, (ServiceTokens.parse(getattr(settings, "service_tokens", "")),))

    def authenticate(self, token: str) -> Principal | None:
        """The principal ``token`` names, or None. Every known hash is compared, in
        constant time each, whatever matched before."""
        presented = token_sha256(token)
        found: Principal | None = None
        if self.admin_token and hmac.compare_digest(presented, token_sha256(self.admin_token)):
            found = Principal(ADMIN, None)
        for source in self.sources:
            for digest, principal in source.principals():
                if hmac.compare_digest(presented, digest) and found is None:
                    found = principal
        return found


def needs(scope: str) -> dict[str, Any]:
    """A route's ``openapi_extra`` naming the scope it needs:
    ``@router.get(..., openapi_extra=needs("payouts.balance.read"))``."""
    if scope not in SCOPES:
        raise ValueError(f"{scope!r} is not in afflux_plumbing.auth.SCOPES")
    return {SCOPE_KEY: scope}


def route_scope(route: object) -> str:
    """The scope a matched route names (``ADMIN`` when it names none)."""
    extra = getattr(route, "openapi_extra", None)
    scope = extra.get(SCOPE_KEY) if isinstance(extra, dict) else None
    return scope if isinstance(scope, str) else ADMIN
