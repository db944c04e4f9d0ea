"""Admin routes accept the admin token (every scope) or a service token limited to the
scopes listed for it; a token lacking the route's scope is 403 ``forbidden_scope``.

An in-memory app is enough: these rules belong to the plumbing, not to a service.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from afflux_plumbing.auth import (
    ADMIN,
    ROLES,
    ROLES_KEY,
    SCOPE_KEY,
    SCOPES,
    Credentials,
    InvalidServiceTokens,
    Principal,
    ServiceTokens,
    needs,
    roles_with,
    service_token_entry,
)
from afflux_plumbing.http import admin_auth, service_app
from afflux_plumbing.settings import ServiceSettings

ADMIN_TOKEN = "auth-test-admin-token"
GATEWAY_TOKEN = "auth-test-gateway-token"
OTHER_TOKEN = "auth-test-reporting-token"
CREDENTIALS = Credentials(ADMIN_TOKEN, (ServiceTokens.parse(
    f"{service_token_entry('gateway', GATEWAY_TOKEN, ['partners.apply', 'payouts.balance.read'])}; "
    f"{service_token_entry('reporting', OTHER_TOKEN, ['gateway.reports.read'])}"),))


def bearer(token: str | bytes) -> dict[str, str | bytes]:
    return {"Authorization": b"Bearer " + token if isinstance(token, bytes) else f"Bearer {token}"}


async def _ready() -> bool:
    return True


def scoped_app() -> FastAPI:
    """Routes as services write them: one router guarded once, each route naming its scope
    (or none: admin only), and a route guarded with an explicit scope."""
    app = service_app("auth test", _ready)
    router = APIRouter(prefix="/v1", dependencies=[admin_auth(CREDENTIALS)])

    @router.get("/partners/{partner_id}/balance", openapi_extra=needs("payouts.balance.read"))
    def balance(partner_id: str) -> dict[str, str]:
        return {"partner_id": partner_id}

    @router.post("/statements/close")
    def close() -> dict[str, str]:
        return {"closed": "yes"}

    app.include_router(router)

    @app.post("/v1/apply", dependencies=[admin_auth(CREDENTIALS, "partners.apply")])
    def apply() -> dict[str, str]:
        return {"applied": "yes"}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=scoped_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        yield client


async def test_the_admin_token_has_every_scope(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/partners/p-1/balance", headers=bearer(ADMIN_TOKEN))).status_code == 200
    assert (await client.post("/v1/statements/close", headers=bearer(ADMIN_TOKEN))).status_code == 200
    assert (await client.post("/v1/apply", headers=bearer(ADMIN_TOKEN))).status_code == 200


async def test_a_service_token_may_call_exactly_the_routes_of_its_scopes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/partners/p-1/balance", headers=bearer(GATEWAY_TOKEN))).status_code == 200
    assert (await client.post("/v1/apply", headers=bearer(GATEWAY_TOKEN))).status_code == 200
    refused = await client.post("/v1/statements/close", headers=bearer(GATEWAY_TOKEN))
    assert refused.status_code == 403
    assert refused.json() == {"error": {
        "code": "forbidden_scope", "field": None,
        "message": "the credential 'gateway' does not have the scope 'admin' this operation needs"}}


async def test_a_token_lacking_the_routes_scope_is_403_forbidden_scope(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/v1/partners/p-1/balance"), ("POST", "/v1/apply"),
                         ("POST", "/v1/statements/close")):
        response = await client.request(method, path, headers=bearer(OTHER_TOKEN))
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden_scope"


@pytest.mark.parametrize("token", ["", "nope", GATEWAY_TOKEN + "x", GATEWAY_TOKEN[:-1],
                                   hashlib.sha256(GATEWAY_TOKEN.encode()).hexdigest(),
                                   "s\u00e9curit\u00e9".encode()])
async def test_an_unknown_token_is_401_whatever_it_resembles(client: httpx.AsyncClient, token: str) -> None:
    """The configured SHA-256 itself is not a token either."""
    response = await client.get("/v1/partners/p-1/balance", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_routes_document_the_scope_they_need(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/partners/{partner_id}/balance"]["get"][SCOPE_KEY] == "payouts.balance.read"
    assert SCOPE_KEY not in document["paths"]["/v1/statements/close"]["post"]


def test_authentication_names_the_principal_and_compares_hashes() -> None:
    assert CREDENTIALS.authenticate(ADMIN_TOKEN) == Principal(ADMIN, None, kind="admin", role="owner")
    gateway = CREDENTIALS.authenticate(GATEWAY_TOKEN)
    assert gateway == Principal("gateway", frozenset({"partners.apply", "payouts.balance.read"}))
    assert gateway is not None and not gateway.may(ADMIN) and not gateway.may("gateway.reports.read")
    assert CREDENTIALS.authenticate("") is None
    assert Credentials("").authenticate("") is None, "no admin token configured admits nobody"


def test_no_service_tokens_is_the_admin_token_alone() -> None:
    settings = ServiceSettings.model_construct(admin_token=ADMIN_TOKEN, service_tokens="")
    credentials = Credentials.of(settings)
    assert credentials.authenticate(ADMIN_TOKEN) == Principal(ADMIN, None, kind="admin", role="owner")
    assert credentials.authenticate(GATEWAY_TOKEN) is None


@pytest.mark.parametrize("text", [
    "gateway",
    "gateway:abc:partners.apply",
    f"gateway:{'0' * 64}:",
    f"gateway:{'0' * 64}:partners.aply",
    f"gateway:{'0' * 64}:admin",
    f"admin:{'0' * 64}:partners.apply",
    f"Gateway!:{'0' * 64}:partners.apply",
])
def test_malformed_service_tokens_stop_the_service_at_start(text: str) -> None:
    with pytest.raises(InvalidServiceTokens):
        ServiceTokens.parse(text)


def test_a_route_can_only_name_a_known_scope() -> None:
    with pytest.raises(ValueError, match="SCOPES"):
        needs("payouts.everything")


def test_a_token_rotates_with_both_entries_listed_for_a_while() -> None:
    old, new = "auth-test-old-token", "auth-test-new-token"
    both = Credentials("", (ServiceTokens.parse(
        f"{service_token_entry('gateway', old, ['partners.apply'])} "
        f"{service_token_entry('gateway', new, ['partners.apply'])}"),))
    gateway = Principal("gateway", frozenset({"partners.apply"}))
    assert both.authenticate(old) == both.authenticate(new) == gateway


class OneStaffToken:
    """A token source admitting one staff session (the staff view's shape, in memory)."""

    def __init__(self, token: str, principal: Principal) -> None:
        self.digest, self.found = hashlib.sha256(token.encode()).digest(), principal

    def principal(self, presented: bytes) -> Principal | None:
        return self.found if presented == self.digest else None


async def test_a_staff_role_lacking_the_scope_is_403_forbidden_role_naming_the_roles_having_it() -> None:
    analyst = Principal("u-1", ROLES["analyst"], kind="staff", role="analyst")
    app = service_app("roles test", _ready)

    guard = admin_auth(Credentials("", (OneStaffToken("s", analyst),)))

    @app.post("/v1/statements/close", dependencies=[guard], openapi_extra=needs("statements.close"))
    def close() -> dict[str, str]:
        return {"closed": "yes"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roles") as client:
        refused = await client.post("/v1/statements/close", headers=bearer("s"))
        document = (await client.get("/openapi.json")).json()
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert "owner, finance" in refused.json()["error"]["message"]
    assert document["paths"]["/v1/statements/close"]["post"][ROLES_KEY] == ["owner", "finance"]


def test_every_role_is_a_set_of_known_scopes_and_every_scope_has_a_meaning() -> None:
    assert set(ROLES) == {"owner", "manager", "finance", "analyst"}
    for role, scopes in ROLES.items():
        assert scopes <= set(SCOPES), role
    assert ROLES["owner"] == frozenset(SCOPES)
    assert all(meaning.strip() for meaning in SCOPES.values())
    assert roles_with("partners.read") == ["owner", "manager", "finance", "analyst"]
