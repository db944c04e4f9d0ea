"""Every admin route of every service, for every staff role: allowed, or ``403
forbidden_role``; and a disabled user's session or a revoked token is ``401`` on all of them.

The routes come from each app's OpenAPI document (``x-afflux-scope``), so a route added
tomorrow is covered the day it appears, and one that names no scope fails here. The staff
are real: the console (served, in-process) creates them, they sign in, the owner revokes
and disables; every service learns it from the staff log through its own staff view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from security_fixtures import ADMIN, PARTNER_PREFIX, PUBLIC_SERVICES, Operation, ServiceApp, operations

from afflux_plumbing.auth import ROLES, SCOPES

SERVED = {"partners", "attribution", "payouts", "gateway", "postbacks", "notifications", "console"}
"""Every service with admin routes, served: its staff view reads the staff log meanwhile."""
PASSWORD = "security matrix pass phrase"
SELF_ENDING = {("DELETE", "/v1/staff/sessions/current")}
"""Operations that end the credential that calls them: called with a session of their own."""
REFUSALS = {"forbidden_role", "forbidden_scope"}


@dataclass(frozen=True)
class Staff:
    sessions: dict[str, str]
    """A live session token per role."""
    disabled: str
    """The session of a user disabled since."""
    revoked: str
    """An API token revoked since."""


def admin_routes(service_apps: dict[str, ServiceApp]) -> Iterator[tuple[ServiceApp, Operation]]:
    for name, service in service_apps.items():
        if name in PUBLIC_SERVICES:
            continue
        for operation in operations(service.app):
            if not operation.path.startswith(PARTNER_PREFIX) and not operation.public(service.app):
                yield service, operation


async def sign_in(console: httpx.AsyncClient, email: str) -> str:
    response = await console.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def new_staff(console: httpx.AsyncClient, role: str, label: str) -> tuple[str, str]:
    """A user of ``role`` and their session: (user_id, token)."""
    email = f"{label}@matrix.example"
    body = {"email": email, "name": label.title(), "role": role, "password": PASSWORD}
    created = await console.post("/v1/staff/users", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    return created.json()["user_id"], await sign_in(console, email)


async def refused_everywhere(service_apps: dict[str, ServiceApp], token: str) -> None:
    """Until every service refuses ``token`` (its staff view has read the event)."""
    scoped = [(s, op) for s, op in admin_routes(service_apps) if op.scope(s.app) is not None]
    for service, operation in {s.name: (s, op) for s, op in reversed(scoped)}.values():
        async with service.client() as client:
            for _ in range(200):
                response = await client.request(operation.method, operation.concrete_path, json={},
                                                headers={"Authorization": f"Bearer {token}"})
                if response.status_code == 401:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{service.name} still accepts the credential")


@pytest.fixture(scope="module")
async def staff(service_apps: dict[str, ServiceApp]) -> Staff:
    async with service_apps["console"].client() as console:
        sessions = {role: (await new_staff(console, role, f"{role}-1"))[1] for role in ROLES}
        disabled_id, disabled = await new_staff(console, "manager", "leaver")
        issued = await console.post("/v1/staff/tokens", headers=ADMIN,
                                    json={"name": "to revoke", "scopes": ["partners.read", "audit.read"]})
        assert issued.status_code == 201, issued.text
        revoked = issued.json()["token"]
        assert (await console.patch(f"/v1/staff/users/{disabled_id}", headers=ADMIN,
                                    json={"disabled": True})).status_code == 200
        assert (await console.delete(f"/v1/staff/tokens/{issued.json()['token_id']}",
                                     headers=ADMIN)).status_code == 200
    await refused_everywhere(service_apps, disabled)
    await refused_everywhere(service_apps, revoked)
    return Staff(sessions, disabled, revoked)


def test_every_admin_route_names_a_scope_of_the_vocabulary(service_apps: dict[str, ServiceApp]) -> None:
    routes = list(admin_routes(service_apps))
    unnamed = [(service.name, op) for service, op in routes if op.scope(service.app) is None]
    unknown = [(service.name, op, op.scope(service.app)) for service, op in routes
               if op.scope(service.app) not in (None, *SCOPES)]
    assert unnamed == [], "admin routes without openapi_extra=needs(...)"
    assert unknown == []
    assert len(routes) >= 30


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_admin_route_is_allowed_to_a_role_that_has_its_scope_and_403_forbidden_role_else(
    service_apps: dict[str, ServiceApp], staff: Staff, role: str
) -> None:
    wrong: list[str] = []
    checked = 0
    for service, operation in admin_routes(service_apps):
        scope = operation.scope(service.app)
        token = staff.sessions[role]
        if (operation.method, operation.path) in SELF_ENDING:
            async with service_apps["console"].client() as console:
                token = await sign_in(console, f"{role}-1@matrix.example")
        async with service.client() as client:
            response = await client.request(operation.method, operation.concrete_path, json={},
                                            headers={"Authorization": f"Bearer {token}"})
        code = response.json().get("error", {}).get("code") if response.headers.get(
            "content-type", "").startswith("application/json") and response.content else None
        allowed = scope in ROLES[role]
        if allowed and (response.status_code == 401 or code in REFUSALS):
            wrong.append(f"{service.name} {operation.method} {operation.path} ({scope}): "
                         f"{role} refused {response.status_code} {code}")
        if not allowed and (response.status_code, code) != (403, "forbidden_role"):
            wrong.append(f"{service.name} {operation.method} {operation.path} ({scope}): "
                         f"{role} got {response.status_code} {code}, not 403 forbidden_role")
        checked += 1
    assert wrong == [], "\n".join(wrong)
    assert checked >= 30


@pytest.mark.parametrize("credential", ["disabled", "revoked"])
async def test_every_admin_route_refuses_a_disabled_users_session_and_a_revoked_token_with_401(
    service_apps: dict[str, ServiceApp], staff: Staff, credential: str
) -> None:
    token = staff.disabled if credential == "disabled" else staff.revoked
    wrong = []
    for service, operation in admin_routes(service_apps):
        async with service.client() as client:
            response = await client.request(operation.method, operation.concrete_path, json={},
                                            headers={"Authorization": f"Bearer {token}"})
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge.startswith("Bearer"):
            wrong.append(f"{service.name} {operation.method} {operation.path}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)
