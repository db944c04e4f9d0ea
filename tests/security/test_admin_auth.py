"""Every admin operation of every service refuses a caller without the admin token.

Operations are read from each app's OpenAPI document, not listed here, so a route
added tomorrow is covered the day it appears (and one added without ``admin_auth``
fails here).
"""

from __future__ import annotations

import pytest
from security_fixtures import PUBLIC_SERVICES, ServiceApp, assert_error_shape, operations

WRONG_TOKENS = {
    "none": {},
    "wrong": {"Authorization": "Bearer security-test-admin-token-7f3b"},
    "non_ascii": {"Authorization": "Bearer s\u00e9curit\u00e9-\u2603".encode()},
    "empty_bearer": {"Authorization": "Bearer "},
    "other_scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
}


def admin_apps(service_apps: dict[str, ServiceApp]) -> list[ServiceApp]:
    return [app for name, app in service_apps.items() if name not in PUBLIC_SERVICES]


@pytest.mark.parametrize("credentials", WRONG_TOKENS.values(), ids=WRONG_TOKENS.keys())
async def test_every_admin_operation_without_the_admin_token_is_401_with_a_bearer_challenge(
    service_apps: dict[str, ServiceApp], credentials: dict[str, object]
) -> None:
    checked = 0
    for service in admin_apps(service_apps):
        async with service.client() as client:
            for operation in operations(service.app):
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
        for operation in operations(service.app):
            spec = document["paths"][operation.path][operation.method.lower()]
            assert {"HTTPBearer": []} in spec.get("security", []), (service.name, operation)
