"""The shared HTTP edge (``service_app``) against what any caller may send: admin auth,
bounded metric labels, exact JSON numbers, and bounded bodies, nesting and query strings.

An in-memory app is enough: these rules belong to the plumbing, not to a service.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel

from afflux_plumbing.http import admin_auth, service_app

TOKEN = "edge-test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JSON_ADMIN = {**ADMIN, "Content-Type": "application/json"}


class Amount(BaseModel):
    amount: Decimal
    note: dict[str, object] | None = None


async def _ready() -> bool:
    return True


def edge_app() -> FastAPI:
    """A service as services build theirs: routes on the app and on an included router."""
    app = service_app("edge test", _ready)

    @app.post("/direct", dependencies=[admin_auth(TOKEN)])
    def direct(body: Amount) -> dict[str, str]:
        return {"amount": str(body.amount)}

    router = APIRouter(prefix="/v1/things", dependencies=[admin_auth(TOKEN)])

    @router.post("/{thing_id}")
    def routed(thing_id: str, body: Amount) -> dict[str, str]:
        return {"thing_id": thing_id, "amount": str(body.amount)}

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        yield client


def assert_error_shape(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["code"] == code and error["message"], error


async def test_non_ascii_bearer_token_is_refused_with_401_not_a_500(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer t\u00f6ken-\u00e9\u00e8".encode()}
    response = await client.post("/direct", json={"amount": "1"}, headers=headers)
    assert_error_shape(response, 401, "unauthorized")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-token"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
async def test_admin_route_without_the_right_token_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for path in ("/direct", "/v1/things/t-1"):
        response = await client.post(path, json={"amount": "1"}, headers=headers)
        assert_error_shape(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _requests_counted(**labels: str) -> float:
    return REGISTRY.get_sample_value("afflux_http_requests_total", labels) or 0.0


async def test_metrics_label_unknown_methods_as_other_and_unrouted_paths_as_unmatched(
    client: httpx.AsyncClient,
) -> None:
    before = _requests_counted(method="other", route="unmatched", status="404")
    response = await client.request("FROBNICATE", "/no/such/path/ab12cd")
    assert response.status_code == 404
    assert _requests_counted(method="other", route="unmatched", status="404") == before + 1
    exposition = (await client.get("/metrics")).text
    assert "FROBNICATE" not in exposition and "ab12cd" not in exposition


async def test_metrics_label_a_routed_request_by_its_route_template(client: httpx.AsyncClient) -> None:
    labels = {"method": "POST", "route": "/v1/things/{thing_id}", "status": "200"}
    before = _requests_counted(**labels)
    response = await client.post("/v1/things/t-42", json={"amount": "1"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert _requests_counted(**labels) == before + 1


@pytest.mark.parametrize("path", ["/direct", "/v1/things/t-1"])
async def test_a_json_number_keeps_every_digit_in_a_decimal_field(
    client: httpx.AsyncClient, path: str
) -> None:
    body = b'{"amount": 123456789012.12345678}'
    response = await client.post(path, content=body, headers=JSON_ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["amount"] == "123456789012.12345678"


@pytest.mark.parametrize("body", [b'{"amount": NaN}', b'{"amount": -Infinity}',
                                  b'{"amount": 1' + b"0" * 5000 + b"}"])
async def test_numbers_json_does_not_allow_are_a_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/direct", content=body, headers=JSON_ADMIN)
    assert_error_shape(response, 422, "invalid_request")


@pytest.mark.parametrize("depth", [40, 100_000])
async def test_deeply_nested_json_is_a_422_not_a_500(client: httpx.AsyncClient, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = f'{{"amount": "1", "note": {{"deep": {nested}}}}}'.encode()
    response = await client.post("/direct", content=body, headers=JSON_ADMIN)
    assert_error_shape(response, 422, "invalid_request")
    assert "nest" in response.json()["error"]["message"]


async def test_json_nested_within_the_bound_is_accepted(client: httpx.AsyncClient) -> None:
    body = json.dumps({"amount": "1", "note": {"a": [[[{"b": [1, 2.5]}]]]}}).encode()
    response = await client.post("/direct", content=body, headers=JSON_ADMIN)
    assert response.status_code == 200, response.text


async def test_an_oversized_body_is_a_413_whether_declared_or_streamed(client: httpx.AsyncClient) -> None:
    padding = "x" * (2 * 1024 * 1024)
    body = json.dumps({"amount": "1", "note": {"padding": padding}}).encode()
    declared = await client.post("/direct", content=body, headers=JSON_ADMIN)
    assert_error_shape(declared, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    streamed = await client.post("/direct", content=chunks(),
                                 headers=JSON_ADMIN)
    assert "content-length" not in streamed.request.headers
    assert_error_shape(streamed, 413, "payload_too_large")


async def test_an_overlong_query_string_is_a_414(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", params={"q": "y" * 20_000})
    assert_error_shape(response, 414, "uri_too_long")
    assert (await client.get("/healthz", params={"q": "y" * 1000})).status_code == 200
