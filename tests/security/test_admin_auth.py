"""Every admin operation of every service refuses a caller without the admin token.

Operations are read from each app's OpenAPI document, not listed here, so a route
added tomorrow is covered the day it appears (and one added without ``admin_auth``
fails here).
"""

from __future__ import annotations

import httpx
import pytest
from security_fixtures import (
    PARTNER_PREFIX,
    PUBLIC_SERVICES,
    Operation,
    ServiceApp,
    assert_error_shape,
    operations,
)

WRONG_TOKENS = {
    "none": {},
    "wrong": {"Authorization": "Bearer security-test-admin-token-7f3b"},
    "non_ascii": {"Authorization": "Bearer s\u00e9curit\u00e9-\u2603".encode()},
    "empty_bearer": {"Authorization": "Bearer "},
    "other_scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
}


def admin_apps(service_apps: dict[str, ServiceApp]) -> list[ServiceApp]:
    return [app for name, app in service_apps.items() if name not in PUBLIC_SERVICES]


def admin_operations(service: ServiceApp) -> list[Operation]:
    """Every operation of an admin API but those it marks public (the staff's sign-in)."""
    return [op for op in operations(service.app)
            if not op.path.startswith(PARTNER_PREFIX) and not op.public(service.app)]


def partner_operations(service: ServiceApp) -> list[Operation]:
    return [op for op in operations(service.app) if op.path.startswith(PARTNER_PREFIX)]


@pytest.mark.parametrize("credentials", WRONG_TOKENS.values(), ids=WRONG_TOKENS.keys())
async def test_every_admin_operation_without_the_admin_token_is_401_with_a_bearer_challenge(
    service_apps: dict[str, ServiceApp], credentials: dict[str, object]
) -> None:
    checked = 0
    for service in admin_apps(service_apps):
        async with service.client() as client:
            for operation in admin_operations(service):
                response = await client.request(operation.method, operation.concrete_path,
                                                headers=credentials, json={})  # type: ignore[arg-type]
                assert response.status_code == 401, (service.name, operation, response.text)
                assert_error_shape(response, 401)
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), operation
                checked += 1
    assert checked >= 10, "the OpenAPI documents list fewer admin operations than the contract has"


def test_every_admin_operation_documents_the_bearer_scheme(service_apps: dict[str, ServiceApp]) -> None:
    """The docs at /docs tell a caller what the server enforces."""
    for service in admin_apps(service_apps):
        document = service.app.openapi()
        for operation in admin_operations(service):
            spec = document["paths"][operation.path][operation.method.lower()]
            assert {"HTTPBearer": []} in spec.get("security", []), (service.name, operation)


WRONG_KEYS = {
    "none": {},
    "wrong": {"X-Api-Key": "afx_live_" + "x" * 43},
    "admin_token_instead": {"Authorization": "Bearer security-test-admin-token-7f3b"},
    "empty": {"X-Api-Key": ""},
}


@pytest.mark.parametrize("credentials", WRONG_KEYS.values(), ids=WRONG_KEYS.keys())
async def test_every_partner_operation_without_a_valid_api_key_is_401_with_no_hint(
    service_apps: dict[str, ServiceApp], credentials: dict[str, str]
) -> None:
    """The gateway's /v1/me routes answer a missing or unknown key alike: nothing says
    whether a partner exists."""
    gateway = service_apps["gateway"]
    checked, bodies = 0, set()
    for number, operation in enumerate(partner_operations(gateway)):
        # Each from an address of its own: repeated failures from one address are slowed
        # down (429), which is tested with the gateway itself.
        transport = httpx.ASGITransport(app=gateway.app, client=(f"198.51.100.{number + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.request(operation.method, operation.concrete_path,
                                            headers=credentials, json={})
        assert_error_shape(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("X-Api-Key"), operation
        bodies.add(response.text)
        checked += 1
    assert checked >= 8, "the gateway documents fewer partner operations than the contract has"
    assert len(bodies) == 1, bodies
